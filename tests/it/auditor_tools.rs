//! The auditor's path without our binaries: Debian's `zstd`, `tar`, `minisign` and
//! `sha256sum` on our output, following `docs/auditing.md` to the letter.

use std::path::Path;
use test_support::{bundle, key_id, p, pack_signed, require, sh, stage, test_key};

/// The shell block after the `audit-script` marker in docs/auditing.md.
fn audit_script() -> String {
    doc_block("audit-script")
}

/// The shell block after the `<!-- marker -->` line in docs/auditing.md.
fn doc_block(marker: &str) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/auditing.md"))
            .unwrap();
    let after = doc
        .split(&format!("<!-- {marker} -->"))
        .nth(1)
        .expect("marker in docs/auditing.md");
    let block = after
        .split("```sh\n")
        .nth(1)
        .expect("sh block after the marker");
    block.split("\n```").next().unwrap().to_string()
}

fn require_tools() {
    require("zstd", "zstd");
    require("tar", "tar");
    require("minisign", "minisign");
    require("sha256sum", "coreutils");
}

fn packed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (public, secret) = test_key("auditor-test");
    stage(&dir.join("stage"));
    pack_signed(dir, "b.tar.zst", &secret, &[]);
    (dir.join("b.tar.zst"), public)
}

fn run_audit(dir: &Path, bundle_file: &Path, key: &Path) -> test_support::Run {
    let script = format!(
        "BUNDLE='{}' KEY='{}'\n{}",
        p(bundle_file),
        p(key),
        audit_script()
    );
    sh(&script, dir)
}

#[test]
fn the_documented_audit_passes_on_a_signed_bundle() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = packed(dir.path());
    let run = run_audit(dir.path(), &file, &key).ok();
    assert!(
        run.stdout
            .contains("Signature and comment signature verified"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("bundle audited"), "{}", run.stdout);
}

/// The documented check of the stored runs, with `bundle` on PATH only for the map: passes on
/// the signed bundle (two runs), and fails, naming the run, once a byte of a compressed frame
/// is changed.
#[test]
fn the_documented_stored_run_check_passes_and_catches_a_changed_frame() {
    require_tools();
    require("jq", "jq");
    let dir = tempfile::tempdir().unwrap();
    let (public, secret) = test_key("auditor-test");
    stage(&dir.path().join("stage"));
    let big: Vec<u8> = (0..17u32 << 20)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect();
    std::fs::write(dir.path().join("stage/docs/big.bin"), big).unwrap();
    pack_signed(dir.path(), "b.tar.zst", &secret, &[]);
    let file = dir.path().join("b.tar.zst");
    run_audit(dir.path(), &file, &public).ok();
    let bin_dir = test_support::bin("bundle");
    let runs = |bundle_file: &Path| {
        let script = format!(
            "PATH='{}':\"$PATH\" BUNDLE='{}'\n{}",
            p(bin_dir.parent().unwrap()),
            p(bundle_file),
            doc_block("stored-runs")
        );
        sh(&script, dir.path())
    };
    let run = runs(&file).ok();
    assert!(
        run.stdout.contains("stored runs: 2 runs match"),
        "{}",
        run.stdout
    );

    // A byte in the middle of the first run.
    let offset = {
        let listing = bundle(&["inspect", p(&file), "--json"], dir.path())
            .ok()
            .stdout;
        let summary: serde_json::Value = serde_json::from_str(&listing).unwrap();
        let first = &summary["stored_runs"][0];
        first["offset"].as_u64().unwrap() + first["length"].as_u64().unwrap() / 2
    };
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[offset as usize] ^= 0x40;
    let tampered = dir.path().join("tampered.tar.zst");
    std::fs::write(&tampered, bytes).unwrap();
    let run = runs(&tampered).failed();
    assert!(
        run.stdout.contains("stored run at byte") && !run.stdout.contains("match"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn the_documented_audit_fails_on_a_file_added_to_the_tar_stream() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = packed(dir.path());
    // Re-pack the stream with stock tools and one extra file: every signed check still passes,
    // only the file-set comparison catches it.
    let run = sh(
        &format!(
            "mkdir x && zstd -dc '{}' | tar -xf - -C x && echo evil > x/docs/evil.sh \
             && tar -cf - -C x . | zstd -q > tampered.tar.zst",
            p(&file)
        ),
        dir.path(),
    )
    .ok();
    drop(run);
    let run = run_audit(dir.path(), &dir.path().join("tampered.tar.zst"), &key).failed();
    assert!(
        run.stdout.contains("docs/evil.sh"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn the_documented_audit_fails_on_a_changed_member() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (file, key) = packed(dir.path());
    sh(
        &format!(
            "mkdir x && zstd -dc '{}' | tar -xf - -C x && echo changed >> x/docs/quickstart.md \
             && tar -cf - -C x . | zstd -q > tampered.tar.zst",
            p(&file)
        ),
        dir.path(),
    )
    .ok();
    let run = run_audit(dir.path(), &dir.path().join("tampered.tar.zst"), &key).failed();
    assert!(
        run.stdout.contains("docs/quickstart.md: FAILED"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn stock_zstd_reads_the_frames_and_tar_sees_only_regular_root_files() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = packed(dir.path());
    sh(&format!("zstd -tq '{}'", p(&file)), dir.path()).ok();
    let listing = sh(
        &format!("zstd -dc '{}' | tar -tvf - --numeric-owner", p(&file)),
        dir.path(),
    )
    .ok()
    .stdout;
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].ends_with(" bundle.json"), "{listing}");
    assert!(lines[1].ends_with(" SHA256SUMS"), "{listing}");
    assert!(
        lines.last().unwrap().ends_with(" bundle.json.minisig"),
        "{listing}"
    );
    for line in &lines {
        assert!(line.starts_with("-rw-r--r-- 0/0 "), "{line}");
    }
}

#[test]
fn minisign_verifies_a_countersignature_and_the_sidecar() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let (file, alice) = packed(dir.path());
    let (bob, bob_key) = test_key("auditor-test-2");
    bundle(&["sign", p(&file), "--key", p(&bob_key)], dir.path()).ok();
    sh(
        &format!("mkdir x && zstd -dc '{}' | tar -xf - -C x", p(&file)),
        dir.path(),
    )
    .ok();
    let countersig = format!("bundle.json.{}.minisig", key_id(&bob));
    let x = dir.path().join("x");
    sh(&format!("minisign -Vm bundle.json -p '{}'", p(&alice)), &x).ok();
    sh(
        &format!("minisign -Vm bundle.json -x {countersig} -p '{}'", p(&bob)),
        &x,
    )
    .ok();
    sh(
        &format!(
            "minisign -Vm bundle.json -x {countersig} -p '{}'",
            p(&alice)
        ),
        &x,
    )
    .failed();
    sh(
        &format!(
            "minisign -Vm bundle.json -x '{}.minisig' -p '{}'",
            p(&file),
            p(&alice)
        ),
        &x,
    )
    .ok();
}
