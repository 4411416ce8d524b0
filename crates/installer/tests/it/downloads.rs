//! The download page on the deploy side: for a bundle carrying `files.json` and the files
//! image built from it (`<web image tag>-files.<first 12 hex of files.json's SHA-256>`),
//! `installer deploy --dry-run` renders Element Web from the files image, pinned to its digest
//! in the bundle, and lists the values file that sets it; the chart serves `/downloads/` with
//! its own headers (served for real by nginx in the workspace's `downloads` test).

use serde::Deserialize as _;
use serde_json::Value;
use test_support::p;

use crate::deploy::{listed_images, pack_with, site, PREFIX, REGISTRY};

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
    test_support::installer(
        &[
            "deploy",
            "bundle.tar.zst",
            "--key",
            p(&public),
            "--config",
            p(&site),
            "--registry",
            REGISTRY,
            "--prefix",
            PREFIX,
            "--dry-run",
            p(&out),
            "--only=messenger",
        ],
        work.path(),
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
        serde_json::json!(["site-1k.yaml", "profile-1k.yaml", "downloads.yaml"])
    );
}
