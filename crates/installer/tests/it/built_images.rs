//! The images the build made for the site, on the deploy side. For a bundle carrying
//! `files.json` and the files image built from it (`<web image tag>-files.<first 12 hex of
//! files.json's SHA-256>`), `installer deploy --dry-run` renders Element Web from the files
//! image, pinned to its digest in the bundle, and lists the values file that sets it; the
//! chart serves `/downloads/` with its own headers (served for real by nginx in the
//! workspace's `downloads` test). For a bundle carrying the signature-database image
//! (`<clamav tag>-db.<databases>`), clamd runs from it unless the site file names another.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize as _;
use serde_json::Value;

use crate::deploy::{dry_run_of, listed_images, pack_with, site, PREFIX, REGISTRY};

const WEB: &str = "docker.io/vectorim/element-web:v1.12.36";
const CLAMAV: &str = "docker.io/clamav/clamav:1.4_base";

/// A dry run: how it ended, its work directory (the output is its `out`), and the bundle's
/// digests by reference.
struct DryRun {
    run: test_support::Run,
    work: tempfile::TempDir,
    digests: BTreeMap<String, String>,
}

/// A bundle of images.toml's images plus `built` (made from `base`, which images.toml must
/// pin) and `members`, signed with test key `key`, given to `installer deploy --dry-run
/// --only=messenger` with `site_extra` added to the site file.
fn dry_run(
    key: &str,
    base: &str,
    built: &str,
    members: &[(&str, &[u8])],
    site_extra: &str,
) -> DryRun {
    test_support::require("helm", "scripts/install-helm.sh");
    let work = tempfile::tempdir().unwrap();
    let (public, secret) = test_support::test_key(key);
    let mut images = listed_images();
    assert!(
        images.iter().any(|i| i == base),
        "images.toml pins another {base}"
    );
    images.push(built.to_string());
    let digests = pack_with(work.path(), "bundle.tar.zst", &images, &secret, members);
    let site = site(work.path(), "1k", site_extra);
    let run = dry_run_of(
        work.path(),
        &work.path().join("bundle.tar.zst"),
        &public,
        &site,
        &work.path().join("out"),
        &["--only=messenger"],
    );
    DryRun { run, work, digests }
}

impl DryRun {
    /// Fails the test, with what the installer said, unless the run succeeded.
    fn ok(self) -> DryRun {
        DryRun {
            run: self.run.ok(),
            ..self
        }
    }

    fn out(&self) -> PathBuf {
        self.work.path().join("out")
    }

    /// The image of container `container` of the messenger release's Deployment `name`.
    fn image(&self, name: &str, container: &str) -> String {
        let manifests = std::fs::read_to_string(self.out().join("03-messenger.yaml")).unwrap();
        let deployment = serde_norway::Deserializer::from_str(&manifests)
            .map(|d| Value::deserialize(d).unwrap())
            .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("the Deployment {name}"));
        deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == container)
            .unwrap_or_else(|| panic!("container {container} of {name}"))["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The values files of the stack step's site release.
    fn values_files(&self) -> Value {
        let plan = crate::deploy::plan_json(&self.out());
        crate::deploy::planned_step(&plan, "stack")["releases"][0]["values"].clone()
    }
}

#[test]
fn deploy_runs_element_web_from_the_files_image() {
    let files =
        br#"[{"name":"app.apk","path":"files/app.apk","sha256":"00","size":1,"description":""}]
"#;
    let hex = oci::Digest::of(files).hex().to_string();
    let files_ref = format!("{WEB}-files.{}", &hex[..12]);
    let d = dry_run("downloads", WEB, &files_ref, &[("files.json", files)], "").ok();
    assert_eq!(
        d.image("messenger-element", "element"),
        format!(
            "{REGISTRY}/{PREFIX}/vectorim/element-web@{}",
            d.digests[&files_ref]
        )
    );
    assert_ne!(d.digests[&files_ref], d.digests[WEB]);
    assert_eq!(
        d.values_files(),
        serde_json::json!(["site-1k.yaml", "profile-1k.yaml", "built-images.yaml"])
    );
}

const SIGNATURES: &str = "docker.io/clamav/clamav:1.4_base-db.main-62.daily-27500.bytecode-339";

#[test]
fn deploy_runs_clamd_from_the_bundles_signature_image() {
    let d = dry_run("signature-image", CLAMAV, SIGNATURES, &[], "").ok();
    assert_eq!(
        d.image("messenger-clamd", "clamd"),
        format!(
            "{REGISTRY}/{PREFIX}/clamav/clamav@{}",
            d.digests[SIGNATURES]
        ),
        "clamd runs from the signature-database image the bundle carries"
    );
    assert_eq!(
        d.values_files(),
        serde_json::json!(["site-1k.yaml", "profile-1k.yaml", "built-images.yaml"])
    );
}

#[test]
fn a_signature_image_the_bundle_does_not_carry_is_refused() {
    // The site file names the image of a later signature update: the deploy runs only what
    // its bundle carries, and says which tags it has (docs/antivirus.md).
    let d = dry_run(
        "signature-refused",
        CLAMAV,
        SIGNATURES,
        &[],
        "antivirus:\n  databaseImage: docker.io/clamav/clamav:1.4_base-db.main-62.daily-27600\n",
    );
    let stderr = d.run.failed().stderr;
    for expected in [
        "Deployment/messenger-clamd",
        "1.4_base-db.main-62.daily-27600",
        &format!(
            "tag 1.4_base-db.main-62.daily-27500.bytecode-339 ({})",
            d.digests[SIGNATURES]
        ),
    ] {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
}
