//! `bundle ca init`: the CA directory the build carries (`ca.crt`, `ca.key.age` or no key),
//! checked with the stock `openssl` and `age` tools, and `online::ca::bundle_files`, which the
//! build uses to take that directory in.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use online::ca::{bundle_files, Identity, RootCa};
use test_support::{bundle, p, require, run, PASSPHRASE};

fn openssl(args: &[&str], cwd: &Path) -> test_support::Run {
    require("openssl", "openssl");
    run("openssl", args, cwd)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `openssl verify` of a fresh leaf issued by `ca` against the certificate file `ca_file`.
fn assert_leaf_verifies(ca: &RootCa, ca_file: &Path, dir: &Path) {
    let (leaf, _) = ca.issue_leaf(&["matrix.site.internal"]).unwrap();
    std::fs::write(dir.join("leaf.crt"), leaf).unwrap();
    let out = openssl(
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            p(ca_file),
            "leaf.crt",
        ],
        dir,
    );
    assert!(
        out.code == 0 && out.stdout.contains("leaf.crt: OK"),
        "{out:?}"
    );
}

/// An openssl-made CA (`org.crt`, `org.key`) in `dir`.
fn openssl_ca(dir: &Path) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "org.key",
            "-out",
            "org.crt",
            "-days",
            "30",
            "-subj",
            "/CN=Org Root CA/O=Org",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    )
    .ok();
}

#[test]
fn init_generates_a_ca_whose_key_is_only_stored_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = bundle(
        &[
            "--json",
            "ca",
            "init",
            "--out",
            "ca",
            "--name",
            "Test Site Root CA",
            "--org",
            "Test Org",
            "--days",
            "30",
        ],
        d,
    )
    .ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], true);

    let text = openssl(&["x509", "-noout", "-text", "-in", "ca/ca.crt"], d).ok();
    assert!(text.stdout.contains("CA:TRUE"), "{}", text.stdout);
    assert!(
        text.stdout.contains("CN=Test Site Root CA") || text.stdout.contains("CN = Test Site"),
        "{}",
        text.stdout
    );
    // The fingerprint printed is the certificate's, as openssl computes it.
    let fp = openssl(
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            "ca/ca.crt",
        ],
        d,
    )
    .ok();
    let printed = doc["certificate"]["sha256"].as_str().unwrap();
    assert!(fp.stdout.trim().ends_with(printed), "{fp:?} vs {printed}");

    let key = read(&d.join("ca/ca.key.age"));
    assert!(key.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!key.windows(11).any(|w| w == b"PRIVATE KEY"));
    let mode = std::fs::metadata(d.join("ca/ca.key.age"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let cert = String::from_utf8(read(&d.join("ca/ca.crt"))).unwrap();
    let wrong = RootCa::decrypt(&cert, &key, &Identity::Passphrase("wrong".into()));
    assert!(wrong.is_err(), "a wrong passphrase opened the key");
    let ca = RootCa::decrypt(&cert, &key, &Identity::Passphrase(PASSPHRASE.into())).unwrap();
    assert_leaf_verifies(&ca, &d.join("ca/ca.crt"), d);

    let files = bundle_files(&d.join("ca")).unwrap();
    assert_eq!(
        files,
        [
            ("ca/ca.crt".to_string(), d.join("ca/ca.crt")),
            ("ca/ca.key.age".to_string(), d.join("ca/ca.key.age")),
        ]
    );
}

#[test]
fn init_refuses_to_replace_a_ca_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    bundle(&["ca", "init", "--out", "ca"], d).ok();
    let cert = read(&d.join("ca/ca.crt"));
    let key = read(&d.join("ca/ca.key.age"));
    let again = bundle(&["ca", "init", "--out", "ca"], d).failed();
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert_eq!(read(&d.join("ca/ca.crt")), cert);
    assert_eq!(read(&d.join("ca/ca.key.age")), key);

    bundle(&["ca", "init", "--out", "ca", "--force"], d).ok();
    assert_ne!(read(&d.join("ca/ca.crt")), cert);
    assert_ne!(read(&d.join("ca/ca.key.age")), key);

    // A directory holding anything else is refused, even with --force: the build carries it.
    std::fs::write(d.join("ca/notes.txt"), "x").unwrap();
    let out = bundle(&["ca", "init", "--out", "ca", "--force"], d).failed();
    assert!(out.stderr.contains("notes.txt"), "{}", out.stderr);
}

#[test]
fn init_imports_the_organisations_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ca(d);
    let run = bundle(
        &[
            "ca",
            "init",
            "--out",
            "ca",
            "--import-cert",
            "org.crt",
            "--import-key",
            "org.key",
        ],
        d,
    )
    .ok();
    assert!(run.stderr.contains("org.key is still in clear"), "{run:?}");
    // The same certificate (as DER: the PEM is re-encoded), and a key that signs for it.
    let der = |file: &str| {
        openssl(
            &["x509", "-outform", "DER", "-in", file, "-out", "x.der"],
            d,
        )
        .ok();
        read(&d.join("x.der"))
    };
    assert_eq!(der("ca/ca.crt"), der("org.crt"));
    let cert = String::from_utf8(read(&d.join("ca/ca.crt"))).unwrap();
    let key = read(&d.join("ca/ca.key.age"));
    let ca = RootCa::decrypt(&cert, &key, &Identity::Passphrase(PASSPHRASE.into())).unwrap();
    assert_leaf_verifies(&ca, &d.join("org.crt"), d);

    // A certificate that is not a CA, or a key that is not its own, is refused.
    let (leaf, leaf_key) = ca.issue_leaf(&["leaf.example"]).unwrap();
    std::fs::write(d.join("leaf.crt"), leaf).unwrap();
    std::fs::write(d.join("leaf.key"), leaf_key).unwrap();
    let out = bundle(
        &[
            "ca",
            "init",
            "--out",
            "bad",
            "--import-cert",
            "leaf.crt",
            "--import-key",
            "leaf.key",
        ],
        d,
    )
    .failed();
    assert!(out.stderr.contains("not a CA"), "{}", out.stderr);
    let out = bundle(
        &[
            "ca",
            "init",
            "--out",
            "bad",
            "--import-cert",
            "org.crt",
            "--import-key",
            "leaf.key",
        ],
        d,
    )
    .failed();
    assert!(out.stderr.contains("does not match"), "{}", out.stderr);
    assert!(!d.join("bad").exists());
}

#[test]
fn no_key_leaves_the_key_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ca(d);
    bundle(
        &[
            "ca",
            "init",
            "--out",
            "ca",
            "--import-cert",
            "org.crt",
            "--no-key",
        ],
        d,
    )
    .ok();
    let names: Vec<_> = std::fs::read_dir(d.join("ca"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ca.crt"]);
    assert_eq!(
        bundle_files(&d.join("ca")).unwrap(),
        [("ca/ca.crt".to_string(), d.join("ca/ca.crt"))]
    );

    // Replacing a CA that had a key with one that has none removes the old key.
    bundle(&["ca", "init", "--out", "ca2"], d).ok();
    bundle(
        &[
            "ca",
            "init",
            "--out",
            "ca2",
            "--import-cert",
            "org.crt",
            "--no-key",
            "--force",
        ],
        d,
    )
    .ok();
    assert!(!d.join("ca2/ca.key.age").exists());

    // A generated CA without its key could never sign: refused.
    let out = bundle(&["ca", "init", "--out", "gen", "--no-key"], d).failed();
    assert!(out.stderr.contains("--no-key"), "{}", out.stderr);
    assert!(!d.join("gen").exists());
}

#[test]
fn recipient_key_opens_with_the_age_tool() {
    require("age", "age");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run("age-keygen", &["-o", "id.txt"], d).ok();
    let recipient = run("age-keygen", &["-y", "id.txt"], d).ok().stdout;
    bundle(
        &["ca", "init", "--out", "ca", "--recipient", recipient.trim()],
        d,
    )
    .ok();
    let key = read(&d.join("ca/ca.key.age"));
    assert!(key.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    let clear = run("age", &["-d", "-i", "id.txt", "ca/ca.key.age"], d).ok();
    assert!(clear.stdout.starts_with("-----BEGIN PRIVATE KEY-----"));
    let cert = String::from_utf8(read(&d.join("ca/ca.crt"))).unwrap();
    let ca = RootCa::import(&cert, &clear.stdout).unwrap();
    assert_leaf_verifies(&ca, &d.join("ca/ca.crt"), d);
}

#[test]
fn init_takes_no_passphrase_from_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(test_support::bin("bundle"))
        .args(["ca", "init", "--out", "ca"])
        .current_dir(dir.path())
        .env_remove("BUNDLE_KEY_PASSPHRASE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--passphrase-file"), "{stderr}");
    assert!(!dir.path().join("ca").exists());
}

#[test]
fn bundle_files_refuses_what_the_build_must_not_carry() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    bundle(&["ca", "init", "--out", "ca"], d).ok();
    let ca = d.join("ca");
    let err = |dir: &Path| format!("{}", bundle_files(dir).unwrap_err());

    std::fs::write(ca.join("ca.key"), "x").unwrap();
    assert!(err(&ca).contains("ca.key"), "{}", err(&ca));
    std::fs::remove_file(ca.join("ca.key")).unwrap();

    // A clear key where the encrypted one belongs.
    let cert = String::from_utf8(read(&ca.join("ca.crt"))).unwrap();
    let key = read(&ca.join("ca.key.age"));
    let open = RootCa::decrypt(&cert, &key, &Identity::Passphrase(PASSPHRASE.into())).unwrap();
    std::fs::write(ca.join("ca.key.age"), open.key_pem().as_bytes()).unwrap();
    assert!(err(&ca).contains("clear PEM private key"), "{}", err(&ca));
    std::fs::write(ca.join("ca.key.age"), b"not age").unwrap();
    assert!(err(&ca).contains("not a binary age file"), "{}", err(&ca));
    std::fs::write(ca.join("ca.key.age"), &key).unwrap();

    // A certificate that is not a CA.
    let (leaf, _) = open.issue_leaf(&["leaf.example"]).unwrap();
    std::fs::write(ca.join("ca.crt"), &leaf).unwrap();
    assert!(err(&ca).contains("not a CA"), "{}", err(&ca));
    // Two certificates where one belongs.
    std::fs::write(ca.join("ca.crt"), format!("{cert}{leaf}")).unwrap();
    assert!(err(&ca).contains("more than one PEM block"), "{}", err(&ca));

    std::fs::remove_file(ca.join("ca.crt")).unwrap();
    assert!(err(&ca).contains("has no ca.crt"), "{}", err(&ca));
}
