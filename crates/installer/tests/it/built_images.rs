//! The images the build made for the site, on the deploy side. For a bundle carrying
//! `files.json` and the files image built from it (`<web image tag>-files.<first 12 hex of
//! files.json's SHA-256>`), `installer deploy --dry-run` renders Element Web from the files
//! image, pinned to its digest in the bundle, and lists the values file that sets it; the
//! chart serves `/downloads/` with its own headers (served for real by nginx in the
//! workspace's `downloads` test). For a bundle carrying the signature-database image
//! (`<clamav tag>-db.<databases>`), clamd runs from it unless the site file names another.

use serde::Deserialize as _;
use serde_json::Value;

use crate::deploy::{dry_run_of, listed_images, pack_with, site, PREFIX, REGISTRY};

const WEB: &str = "docker.io/vectorim/element-web:v1.12.36";

#[test]
fn deploy_runs_element_web_from_the_files_image() {
    test_support::require("helm", "scripts/install-helm.sh");
    let work = tempfile::tempdir().unwrap();
    let (public, secret) = test_support::test_key("downloads");
    let files =
        br#"[{"name":"app.apk","path":"files/app.apk","sha256":"00","size":1,"description":""}]
"#;
    let hex = oci::Digest::of(files).hex().to_string();
    let files_ref = format!("{WEB}-files.{}", &hex[..12]);
    let mut images = listed_images();
    assert!(
        images.iter().any(|i| i == WEB),
        "images.toml pins another {WEB}"
    );
    images.push(files_ref.clone());
    let digests = pack_with(
        work.path(),
        "bundle.tar.zst",
        &images,
        &secret,
        &[("files.json", files)],
    );
    let out = work.path().join("out");
    let site = site(work.path(), "1k", "");
    let bundle = work.path().join("bundle.tar.zst");
    dry_run_of(
        work.path(),
        &bundle,
        &public,
        &site,
        &out,
        &["--only=messenger"],
    )
    .ok();
    let manifests = std::fs::read_to_string(out.join("03-messenger.yaml")).unwrap();
    let deployment = serde_norway::Deserializer::from_str(&manifests)
        .map(|d| Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "messenger-element")
        .expect("the Element Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!(
            "{REGISTRY}/{PREFIX}/vectorim/element-web@{}",
            digests[&files_ref]
        )
    );
    assert_ne!(digests[&files_ref], digests[WEB]);
    let plan = crate::deploy::plan_json(&out);
    let stack = crate::deploy::planned_step(&plan, "stack");
    assert_eq!(
        stack["releases"][0]["values"],
        serde_json::json!(["site-1k.yaml", "profile-1k.yaml", "built-images.yaml"])
    );
}

const CLAMAV: &str = "docker.io/clamav/clamav:1.4_base";

/// `installer deploy --dry-run --only=messenger` of a bundle carrying the listed images and
/// a signature-database image, signed with test key `key`, with `site_extra` added to the site file: the run, the output
/// directory's holder, and the signature image's digest in the bundle.
fn deploy_with_signatures(
    key: &str,
    site_extra: &str,
) -> (test_support::Run, tempfile::TempDir, String) {
    test_support::require("helm", "scripts/install-helm.sh");
    let work = tempfile::tempdir().unwrap();
    let (public, secret) = test_support::test_key(key);
    let signatures = format!("{CLAMAV}-db.main-62.daily-27500.bytecode-339");
    let mut images = listed_images();
    assert!(
        images.iter().any(|i| i == CLAMAV),
        "images.toml pins another {CLAMAV}"
    );
    images.push(signatures.clone());
    let digests = pack_with(work.path(), "bundle.tar.zst", &images, &secret, &[]);
    let out = work.path().join("out");
    let site = site(work.path(), "1k", site_extra);
    let bundle = work.path().join("bundle.tar.zst");
    let run = dry_run_of(
        work.path(),
        &bundle,
        &public,
        &site,
        &out,
        &["--only=messenger"],
    );
    (run, work, digests[&signatures].clone())
}

#[test]
fn deploy_runs_clamd_from_the_bundles_signature_image() {
    let (run, work, digest) = deploy_with_signatures("signature-image", "");
    run.ok();
    let out = work.path().join("out");
    let manifests = std::fs::read_to_string(out.join("03-messenger.yaml")).unwrap();
    let deployment = serde_norway::Deserializer::from_str(&manifests)
        .map(|d| Value::deserialize(d).unwrap())
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "messenger-clamd")
        .expect("the clamd Deployment");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    let clamd = containers
        .iter()
        .find(|c| c["name"] == "clamd")
        .expect("the clamd container");
    assert_eq!(
        clamd["image"],
        format!("{REGISTRY}/{PREFIX}/clamav/clamav@{digest}"),
        "clamd runs from the signature-database image the bundle carries"
    );
    let plan = crate::deploy::plan_json(&out);
    let stack = crate::deploy::planned_step(&plan, "stack");
    assert_eq!(
        stack["releases"][0]["values"],
        serde_json::json!(["site-1k.yaml", "profile-1k.yaml", "built-images.yaml"])
    );
}

#[test]
fn a_signature_image_the_bundle_does_not_carry_is_refused() {
    // The site file names the image of a later signature update: the deploy runs only what
    // its bundle carries, and says which tags it has (docs/antivirus.md).
    let (run, _work, digest) = deploy_with_signatures(
        "signature-refused",
        "antivirus:\n  databaseImage: docker.io/clamav/clamav:1.4_base-db.main-62.daily-27600\n",
    );
    let run = run.failed();
    for expected in [
        "Deployment/messenger-clamd",
        "1.4_base-db.main-62.daily-27600",
        &format!("tag 1.4_base-db.main-62.daily-27500.bytecode-339 ({digest})"),
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected} in {}",
            run.stderr
        );
    }
}
