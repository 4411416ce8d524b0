//! The `bundle` command line as a release engineer uses it: keys, pack, countersign, verify,
//! inspect, extract, and the refusals that protect a bundle.

use serde_json::Value;
use test_support::{bundle, file_offset_of, flip_byte, key_id, p, pack_signed, stage, test_key};

#[test]
fn keygen_writes_a_minisign_public_key_and_an_encrypted_secret_key() {
    let (public, secret) = test_key("alice");
    let pub_text = std::fs::read_to_string(&public).unwrap();
    assert!(pub_text.starts_with("untrusted comment: minisign public key "));
    let key_text = std::fs::read_to_string(&secret).unwrap();
    assert!(key_text.starts_with("untrusted comment: minisign encrypted secret key\n"));
    // The base64 payload starts with "EdScB2": Ed25519, scrypt, BLAKE2b checksum.
    assert!(key_text.lines().nth(1).unwrap().starts_with("RWRTY0Iy"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "secret key readable by others");
}

#[test]
fn keygen_refuses_to_overwrite_and_takes_the_passphrase_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pass"), "from a file\n").unwrap();
    std::fs::write(dir.path().join("k.pub"), "existing").unwrap();
    let run = bundle(
        &["keygen", "-o", "k", "--passphrase-file", "pass"],
        dir.path(),
    )
    .failed();
    assert!(run.stderr.contains("k.pub exists"), "{}", run.stderr);
    std::fs::remove_file(dir.path().join("k.pub")).unwrap();
    bundle(
        &["keygen", "-o", "k", "--passphrase-file", "pass"],
        dir.path(),
    )
    .ok();
    // The key opens with the file's passphrase, not with the environment's.
    stage(&dir.path().join("stage"));
    let args = ["pack", "stage", "-o", "b.tar.zst", "--sign-key", "k.key"];
    let run = bundle(&args, dir.path()).failed();
    assert!(run.stderr.contains("wrong passphrase"), "{}", run.stderr);
    let mut with_file = args.to_vec();
    with_file.extend(["--passphrase-file", "pass"]);
    bundle(&with_file, dir.path()).ok();
}

#[test]
fn a_lighter_kdf_key_stays_a_minisign_key() {
    test_support::require("minisign", "minisign");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pass"), "light passphrase\n").unwrap();
    let keygen = |extra: &[&str]| {
        let mut args = vec!["keygen", "-o", "k", "--passphrase-file", "pass", "--force"];
        args.extend(extra);
        bundle(&args, dir.path())
    };
    let run = keygen(&["--kdf-memory", "100"]).failed();
    assert!(run.stderr.contains("--kdf-memory"), "{}", run.stderr);
    let run = keygen(&["--json", "--kdf-memory", "32"]).ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["kdf_memory_mib"], 32);
    // Debian's minisign decrypts it with the passphrase (from the parameters the file
    // records) and signs; its signature verifies with the public key.
    std::fs::write(dir.path().join("data"), b"signed by minisign").unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("minisign -S -s k.key -m data < pass && minisign -V -p k.pub -m data")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A wrong passphrase is still refused.
    std::fs::write(dir.path().join("wrong"), "other\n").unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("minisign -S -s k.key -m data -x other.sig < wrong")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "minisign signed with a wrong passphrase"
    );
}

#[test]
fn pack_then_verify_reports_the_signer() {
    let (public, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(
        dir.path(),
        "b.tar.zst",
        &secret,
        &["--bundle-version", "2.0.0"],
    );
    assert!(dir.path().join("b.tar.zst.minisig").is_file());
    let run = bundle(
        &["--json", "verify", "b.tar.zst", "--key", p(&public)],
        dir.path(),
    )
    .ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["version"], "2.0.0");
    assert_eq!(doc["signers"][0].as_str().unwrap(), key_id(&public));
    // bundle.json, SHA256SUMS, six staged files and the signature.
    assert_eq!(doc["members"], 9);
    assert_eq!(doc["checked"], "stored");
    let by_content = bundle(
        &[
            "--json",
            "verify",
            "b.tar.zst",
            "--key",
            p(&public),
            "--content",
        ],
        dir.path(),
    )
    .ok();
    let content: Value = serde_json::from_str(&by_content.stdout).unwrap();
    assert_eq!(content["checked"], "content");
    assert_eq!(
        (&content["members"], &content["bytes"]),
        (&doc["members"], &doc["bytes"])
    );
    let human = bundle(&["verify", "b.tar.zst", "--key", p(&public)], dir.path()).ok();
    assert!(
        human.stdout.contains("(frames as stored)"),
        "{}",
        human.stdout
    );
}

#[test]
fn packing_twice_gives_byte_identical_bundles() {
    let (_, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    for out in ["one.tar.zst", "two.tar.zst"] {
        pack_signed(dir.path(), out, &secret, &["--timestamp", "1700000000"]);
    }
    let one = std::fs::read(dir.path().join("one.tar.zst")).unwrap();
    let two = std::fs::read(dir.path().join("two.tar.zst")).unwrap();
    assert!(one == two, "bundles differ");
    let sig_one = std::fs::read(dir.path().join("one.tar.zst.minisig")).unwrap();
    let sig_two = std::fs::read(dir.path().join("two.tar.zst.minisig")).unwrap();
    assert_eq!(sig_one, sig_two);
    // Touching the inputs does not change the bundle when the timestamp is given.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let f = std::fs::File::options()
        .write(true)
        .open(dir.path().join("stage/docs/quickstart.md"))
        .unwrap();
    f.set_modified(later).unwrap();
    pack_signed(
        dir.path(),
        "three.tar.zst",
        &secret,
        &["--timestamp", "1700000000"],
    );
    assert!(one == std::fs::read(dir.path().join("three.tar.zst")).unwrap());
}

#[test]
fn a_failed_pack_leaves_the_previous_bundle_untouched() {
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).ok();
    let before = std::fs::read(dir.path().join("b.tar.zst")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("stage/docs/link")).unwrap();
    let run = bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).failed();
    assert!(run.stderr.contains("stage/docs/link"), "{}", run.stderr);
    assert!(run.stderr.contains("symlinks"), "{}", run.stderr);
    assert_eq!(std::fs::read(dir.path().join("b.tar.zst")).unwrap(), before);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".bundle-partial")
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}

#[test]
fn reserved_names_in_the_staged_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    std::fs::write(dir.path().join("stage/bundle.json"), "{}").unwrap();
    let run = bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).failed();
    assert!(run.stderr.contains("reserved name"), "{}", run.stderr);
    assert!(!dir.path().join("b.tar.zst").exists());
}

#[test]
fn a_second_signer_countersigns_and_a_threshold_of_two_holds() {
    let (alice_pub, alice_key) = test_key("alice");
    let (bob_pub, bob_key) = test_key("bob");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(dir.path(), "b.tar.zst", &alice_key, &[]);
    let two_keys = [
        "verify",
        "b.tar.zst",
        "--key",
        p(&alice_pub),
        "--key",
        p(&bob_pub),
    ];
    let mut threshold_two = two_keys.to_vec();
    threshold_two.extend(["--threshold", "2"]);
    let run = bundle(&threshold_two, dir.path()).failed();
    assert!(
        run.stderr.contains("1 valid trusted signature(s)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("2 required"), "{}", run.stderr);

    bundle(&["sign", "b.tar.zst", "--key", p(&bob_key)], dir.path()).ok();
    bundle(&threshold_two, dir.path()).ok();
    // The sidecar holds both signatures, the first signer's first.
    let sidecar = std::fs::read_to_string(dir.path().join("b.tar.zst.minisig")).unwrap();
    assert_eq!(sidecar.matches("untrusted comment:").count(), 2);
    // Signing twice with the same key is refused.
    let run = bundle(&["sign", "b.tar.zst", "--key", p(&bob_key)], dir.path()).failed();
    assert!(
        run.stderr.contains("already signed by key"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unsigned_bundle_can_be_signed_later() {
    let (alice_pub, alice_key) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    let run = bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).ok();
    assert!(run.stderr.contains("unsigned"), "{}", run.stderr);
    let run = bundle(&["verify", "b.tar.zst", "--key", p(&alice_pub)], dir.path()).failed();
    assert!(
        run.stderr.contains("the bundle is not signed"),
        "{}",
        run.stderr
    );
    bundle(&["sign", "b.tar.zst", "--key", p(&alice_key)], dir.path()).ok();
    bundle(&["verify", "b.tar.zst", "--key", p(&alice_pub)], dir.path()).ok();
}

#[test]
fn verify_names_the_member_with_a_flipped_byte() {
    let (public, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(dir.path(), "b.tar.zst", &secret, &[]);
    // Find the blob's frames with inspect, then flip a byte in the middle of them.
    let before = file_offset_of(dir.path(), "b.tar.zst", "blobs/sha256/1111");
    flip_byte(&dir.path().join("b.tar.zst"), before + 1_000_000);
    let run = bundle(&["verify", "b.tar.zst", "--key", p(&public)], dir.path()).failed();
    assert!(run.stderr.contains("blobs/sha256/1111"), "{}", run.stderr);
}

#[test]
fn inspect_lists_members_kinds_and_signers_without_a_key() {
    let (_, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(
        dir.path(),
        "b.tar.zst",
        &secret,
        &["--platform", "linux/amd64"],
    );
    let run = bundle(&["--json", "inspect", "b.tar.zst"], dir.path()).ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let paths: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        &paths[..5],
        [
            "bundle.json",
            "SHA256SUMS",
            "oci-layout",
            "index.json",
            "blobs/sha256/1111"
        ]
    );
    let kinds: Vec<&str> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"chart") && kinds.contains(&"blob") && kinds.contains(&"doc"));
    assert_eq!(doc["platforms"][0], "linux/amd64");
    assert_eq!(doc["signatures"][0]["member"], "bundle.json.minisig");
    let text = bundle(&["inspect", "b.tar.zst"], dir.path()).ok().stdout;
    assert!(text.contains("signers  (not verified"), "{text}");
}

#[test]
fn extract_writes_exactly_the_staged_files() {
    let (public, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(dir.path(), "b.tar.zst", &secret, &[]);
    let run = bundle(&["extract", "b.tar.zst", "out"], dir.path()).failed();
    assert!(run.stderr.contains("--key"), "{}", run.stderr);
    bundle(
        &["extract", "b.tar.zst", "out", "--key", p(&public)],
        dir.path(),
    )
    .ok();
    let run = bundle(
        &["extract", "b.tar.zst", "out", "--key", p(&public)],
        dir.path(),
    )
    .failed();
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    for rel in [
        "blobs/sha256/1111",
        "charts/messenger-1.0.0.tgz",
        "docs/quickstart.md",
    ] {
        assert_eq!(
            std::fs::read(dir.path().join("out").join(rel)).unwrap(),
            std::fs::read(dir.path().join("stage").join(rel)).unwrap(),
            "{rel}"
        );
    }
    for generated in ["bundle.json", "SHA256SUMS", "bundle.json.minisig"] {
        assert!(
            dir.path().join("out").join(generated).is_file(),
            "{generated}"
        );
    }
}

/// A failed extraction leaves nothing that looks like a bundle's content: no target
/// directory (or the empty one it was given), no temporary sibling.
#[test]
fn extract_of_a_corrupted_bundle_leaves_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).ok();
    let before = file_offset_of(dir.path(), "b.tar.zst", "blobs/sha256/1111");
    flip_byte(&dir.path().join("b.tar.zst"), before + 2_000_000);
    let run = bundle(
        &["extract", "b.tar.zst", "out", "--insecure-skip-verify"],
        dir.path(),
    )
    .failed();
    assert!(
        run.stderr.contains("SIGNATURES NOT CHECKED"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("blobs/sha256/1111"), "{}", run.stderr);
    assert!(!dir.path().join("out").exists());
    // Into an empty directory given beforehand: it stays empty.
    std::fs::create_dir(dir.path().join("given")).unwrap();
    bundle(
        &["extract", "b.tar.zst", "given", "--insecure-skip-verify"],
        dir.path(),
    )
    .failed();
    assert_eq!(
        std::fs::read_dir(dir.path().join("given")).unwrap().count(),
        0
    );
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(
        left.is_empty(),
        "temporary directories left behind: {left:?}"
    );
}

#[test]
fn verify_without_a_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    bundle(&["pack", "stage", "-o", "b.tar.zst"], dir.path()).ok();
    let run = bundle(&["verify", "b.tar.zst"], dir.path()).failed();
    assert!(run.stderr.contains("no trusted key"), "{}", run.stderr);
}

#[test]
fn a_bundle_split_into_volumes_verifies_inspects_and_extracts_from_its_parts() {
    let (public, secret) = test_key("alice");
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    pack_signed(dir.path(), "b.tar.zst", &secret, &[]);
    let whole = std::fs::read(dir.path().join("b.tar.zst")).unwrap();
    bundle(&["split", "b.tar.zst", "--size", "1M"], dir.path()).ok();
    let parts: Vec<_> = (1..)
        .map(|n| dir.path().join(format!("b.tar.zst.{n:03}")))
        .take_while(|p| p.exists())
        .collect();
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for part in &parts {
        assert!(std::fs::metadata(part).unwrap().len() <= 1 << 20);
    }
    // Every medium checks on its own; the parts join back to the bundle.
    test_support::sh("sha256sum --check --strict b.tar.zst.sha256", dir.path()).ok();
    let joined: Vec<u8> = parts
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(joined == whole, "parts do not join to the bundle");
    // Readers take the parts without joining them on disk.
    std::fs::remove_file(dir.path().join("b.tar.zst")).unwrap();
    for name in ["b.tar.zst", "b.tar.zst.001"] {
        bundle(&["verify", name, "--key", p(&public)], dir.path()).ok();
    }
    bundle(&["inspect", "b.tar.zst.001"], dir.path()).ok();
    bundle(
        &["extract", "b.tar.zst", "out", "--key", p(&public)],
        dir.path(),
    )
    .ok();
    assert_eq!(
        std::fs::read(dir.path().join("out/blobs/sha256/1111")).unwrap(),
        std::fs::read(dir.path().join("stage/blobs/sha256/1111")).unwrap()
    );
    // A damaged part is caught, naming the member it holds.
    let middle = &parts[parts.len() / 2];
    let len = std::fs::metadata(middle).unwrap().len();
    flip_byte(middle, len / 2);
    let run = bundle(&["verify", "b.tar.zst", "--key", p(&public)], dir.path()).failed();
    assert!(run.stderr.contains("member "), "{}", run.stderr);
}

/// An input read whole into memory has a cap: a wrong path such as `/dev/zero` fails at once,
/// naming the file and the limit, for every kind of input. Each command runs under a 2 GiB
/// address-space limit and a timeout, so a missing cap fails the test instead of the machine.
#[test]
fn endless_input_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    stage(&dir.path().join("stage"));
    std::fs::write(
        dir.path().join("images.toml"),
        "platforms = [\"linux/amd64\"]\n",
    )
    .unwrap();
    let (public, secret) = test_key("capped");
    let bundle_bin = test_support::bin("bundle");
    let installer_bin = test_support::bin("installer");
    let chart = test_support::workspace_root().join("charts/messenger");
    let (bundle_bin, installer_bin) = (p(&bundle_bin), p(&installer_bin));
    let cases: [(&str, Vec<&str>); 7] = [
        (
            "images.toml",
            vec![bundle_bin, "lock", "--images", "/dev/zero"],
        ),
        (
            "manifests.lock",
            vec![
                bundle_bin,
                "build",
                "--locked",
                "--lock",
                "/dev/zero",
                "-o",
                "b",
            ],
        ),
        (
            "tools.toml",
            vec![
                bundle_bin,
                "lock",
                "--tools",
                "/dev/zero",
                "--lock",
                "new.lock",
            ],
        ),
        (
            "a secret key",
            vec![
                bundle_bin,
                "pack",
                "stage",
                "-o",
                "b",
                "--sign-key",
                "/dev/zero",
            ],
        ),
        (
            "a passphrase file",
            vec![
                bundle_bin,
                "pack",
                "stage",
                "-o",
                "b",
                "--sign-key",
                p(&secret),
                "--passphrase-file",
                "/dev/zero",
            ],
        ),
        (
            "a public key",
            vec![bundle_bin, "verify", "b", "--key", "/dev/zero"],
        ),
        (
            "a site file",
            vec![
                installer_bin,
                "capacity",
                "--values",
                "/dev/zero",
                "--chart",
                p(&chart),
            ],
        ),
    ];
    let _ = public;
    for (what, command) in cases {
        let script = format!("ulimit -v 2097152; exec timeout 60 {}", command.join(" "));
        let run = test_support::sh(&script, dir.path());
        assert_ne!(run.code, 0, "{what}: {run:?}");
        assert_ne!(
            run.code, 124,
            "{what}: still reading after a minute: {run:?}"
        );
        assert!(
            run.stderr.contains("/dev/zero"),
            "{what}: the error names no file: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("larger than") || run.stderr.contains("too large"),
            "{what}: the error gives no limit: {}",
            run.stderr
        );
    }
}
