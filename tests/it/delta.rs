//! Delta bundles end to end (`bundle build --since OLD`): a stack of three images is built,
//! one of them is rebuilt with a new top layer under the same tag, and the next release is
//! built both in full and as a delta against the first bundle. The delta carries only the new
//! layer, config and the manifests; loaded over the first bundle it leaves the registry as a
//! full load of the new bundle does (checked with skopeo); into an empty registry it is refused
//! before any manifest, naming the bundle it builds on.

use std::collections::BTreeMap;

use serde_json::Value;
use test_support::images;
use test_support::registry::TestRegistry;

use crate::build::{done, images_toml, installer_load, tools, Work};

const BASE_LAYER: (u64, usize) = (7_001, 400_000);
const OLD_TOP: (u64, usize) = (7_002, 100_000);
const NEW_TOP: (u64, usize) = (7_003, 150_000);

/// sha256 of what the registry serves for `reference` (its manifest or index, raw).
fn served_digest(host: &str, name: &str) -> String {
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
        ])
        .arg(format!("docker://{host}/{name}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {host}/{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    oci::Digest::of(&out.stdout).to_string()
}

/// Copies every platform of `name` out of the registry: fails unless every blob is there.
fn copy_out(host: &str, name: &str, dir: &std::path::Path) {
    let out = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--all",
            "-q",
            "--src-tls-verify=false",
        ])
        .arg(format!("docker://{host}/{name}"))
        .arg(format!("oci:{}:x", dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy {host}/{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The repositories a registry lists.
fn catalog(registry: &TestRegistry) -> Vec<String> {
    let (status, body) = test_support::net::http_get(registry.port(), "/v2/_catalog")
        .expect("the registry answers /v2/_catalog");
    assert_eq!(status, 200, "{body}");
    let value: Value = serde_json::from_str(&body).unwrap();
    value["repositories"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_delta_carries_the_new_layer_only_and_loads_like_the_full_bundle() {
    tools();
    let source = TestRegistry::plain();
    let work = Work::new();
    let host = source.host();
    let app = images::layered(&work.path("layouts/app1"), "v1", &[BASE_LAYER, OLD_TOP]);
    images::push(&app, &source, "team/app");
    let db = images::single(&work.path("layouts/db"), "v1", 7_010, 300_000);
    images::push(&db, &source, "team/db");
    let web = images::multi_arch(&work.path("layouts/web"), "v1", 7_020);
    images::push(&web, &source, "team/web");
    let refs = ["team/app:v1", "team/db:v1", "team/web:v1"];
    let full_refs: Vec<String> = refs.iter().map(|r| format!("{host}/{r}")).collect();
    let amd64: &[&str] = &["linux/amd64"];
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&full_refs[0], Some(amd64)),
                (&full_refs[1], Some(amd64)),
                (&full_refs[2], None),
            ],
        ),
    );
    work.lock(&[]).ok();
    work.build("v1.tar.zst", "cache", &["--bundle-version", "1.0"])
        .ok();

    // The app is rebuilt: the same base layer, a new top layer, under the same tag.
    let app2 = images::layered(
        &work.path("layouts/app2"),
        "v1",
        &[BASE_LAYER, OLD_TOP, NEW_TOP],
    );
    images::push(&app2, &source, "team/app");
    work.lock(&[]).ok();
    let full = work
        .build("v2.tar.zst", "cache", &["--bundle-version", "1.1"])
        .ok();
    let delta = work
        .build(
            "delta.tar.zst",
            "cache",
            &["--bundle-version", "1.1", "--since", "v1.tar.zst"],
        )
        .ok();
    let full_bytes = done(&full)["bytes"].as_u64().unwrap();
    let delta_bytes = done(&delta)["bytes"].as_u64().unwrap();
    eprintln!(
        "full bundle {full_bytes} bytes, delta {delta_bytes} bytes ({:.1}%)",
        100.0 * delta_bytes as f64 / full_bytes as f64
    );
    assert!(
        delta_bytes * 3 < full_bytes,
        "{delta_bytes} vs {full_bytes}"
    );

    // What the delta carries: the new top layer and config, every manifest; the rest is left
    // to the site, and base.json names the first bundle.
    let dir = work.extract_unchecked("delta.tar.zst", "delta");
    let new_image = &app2.images[0];
    let carried = |digest: &str| {
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
            .exists()
    };
    assert!(carried(&new_image.layers[2].digest), "the new top layer");
    assert!(carried(&new_image.config.digest), "the new config");
    assert!(carried(&new_image.manifest.digest), "the new manifest");
    assert!(
        carried(&web.index.as_ref().unwrap().digest),
        "an unchanged index"
    );
    assert!(
        carried(&db.images[0].manifest.digest),
        "an unchanged manifest"
    );
    let external: Vec<Value> =
        serde_json::from_slice(&work.read("delta/external-blobs.json")).unwrap();
    let left: BTreeMap<String, String> = external
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap().to_string(),
                e["image"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for unchanged in [
        &new_image.layers[0],
        &new_image.layers[1],
        &db.images[0].layers[0],
    ] {
        assert!(
            left.contains_key(&unchanged.digest),
            "{} is left to the site",
            unchanged.digest
        );
        assert!(
            !carried(&unchanged.digest),
            "{} is not carried",
            unchanged.digest
        );
    }
    assert!(!left.contains_key(&new_image.layers[2].digest));
    let base: Value = serde_json::from_slice(&work.read("delta/base.json")).unwrap();
    assert_eq!(base["name"], "messenger");
    assert_eq!(base["version"], "1.0");

    // The delta is a bundle like any other to inspect.
    let inspected = work.bundle(&["inspect", "delta.tar.zst", "--json"]).ok();
    assert!(
        inspected.stdout.contains("base.json"),
        "{}",
        inspected.stdout
    );

    // Into an empty registry: refused before any manifest, naming the base.
    let empty = TestRegistry::plain();
    let refused = installer_load(&work, "delta.tar.zst", &empty.host()).failed();
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        said.contains("builds on messenger 1.0") && said.contains("load and deploy"),
        "{said}"
    );
    assert!(catalog(&empty).is_empty(), "pushed: {:?}", catalog(&empty));

    // Over the first bundle, the delta leaves the registry as the full new bundle does.
    let over = TestRegistry::plain();
    installer_load(&work, "v1.tar.zst", &over.host()).ok();
    let loaded = installer_load(&work, "delta.tar.zst", &over.host()).ok();
    let summary: Value = serde_json::from_str(loaded.stdout.trim()).unwrap();
    assert_eq!(
        summary["blobs_pushed"], 2,
        "the new layer and config: {summary}"
    );
    let fresh = TestRegistry::plain();
    installer_load(&work, "v2.tar.zst", &fresh.host()).ok();
    for name in refs {
        assert_eq!(
            served_digest(&over.host(), name),
            served_digest(&fresh.host(), name),
            "{name}"
        );
        let out = work.path(&format!("out-{}", name.replace(['/', ':'], "-")));
        copy_out(&over.host(), name, &out);
    }
    assert_eq!(catalog(&over), catalog(&fresh));
}

#[test]
fn since_refuses_what_is_not_a_bundle_naming_it() {
    let work = Work::new();
    work.write("images.toml", &images_toml(None, &[]));
    work.write("old.tar.zst", "not a bundle\n");
    let refused = work
        .build("new.tar.zst", "cache", &["--since", "old.tar.zst"])
        .failed();
    assert!(
        refused.stderr.contains("old.tar.zst") && refused.stderr.contains("--since"),
        "{}",
        refused.stderr
    );
    assert!(!work.path("new.tar.zst").exists());
}
