//! `installer verify`, the field engineer's first command: the same checks as `bundle verify`,
//! refusing anything not signed by a trusted key.

use bundle_file::pack::{pack, PackOptions};
use bundle_file::sign::{KeyId, SecretKey};
use bundle_file::NoProgress;
use std::path::Path;
use std::process::Command;

fn packed(dir: &Path, key: &SecretKey) -> std::path::PathBuf {
    let stage = dir.join("stage");
    std::fs::create_dir_all(stage.join("docs")).unwrap();
    std::fs::write(stage.join("docs/runbook.md"), "# Runbook\n").unwrap();
    std::fs::write(
        stage.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let out = dir.join("b.tar.zst");
    let options = PackOptions {
        name: "messenger".into(),
        version: "1.0.0".into(),
        platforms: vec!["linux/amd64".into()],
        timestamp: Some(1_700_000_000),
        threads: 2,
        level: 3,
    };
    pack(&stage, &out, &options, Some(key), &NoProgress).unwrap();
    out
}

fn installer(args: &[&str]) -> std::process::Output {
    Command::new(test_support::bin("installer"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn installer_verify_accepts_a_bundle_signed_by_the_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(KeyId([5; 8]), &[5; 32]);
    let bundle = packed(dir.path(), &key);
    let public = dir.path().join("k.pub");
    std::fs::write(&public, key.public_key().to_file_string()).unwrap();
    let out = installer(&[
        "--json",
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["name"], "messenger");
    assert_eq!(doc["signers"][0], key.id().to_string());
}

#[test]
fn installer_verify_refuses_a_bundle_signed_by_another_key() {
    let dir = tempfile::tempdir().unwrap();
    let signer = SecretKey::from_seed(KeyId([5; 8]), &[5; 32]);
    let trusted = SecretKey::from_seed(KeyId([6; 8]), &[6; 32]);
    let bundle = packed(dir.path(), &signer);
    let public = dir.path().join("trusted.pub");
    std::fs::write(&public, trusted.public_key().to_file_string()).unwrap();
    let out = installer(&[
        "verify",
        bundle.to_str().unwrap(),
        "--key",
        public.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("signed only by unknown key(s) 0505050505050505"),
        "{stderr}"
    );
}
