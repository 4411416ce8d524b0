//! `installer ca`: the CA made inside the enclave, cert-manager's ClusterIssuer and Secret from a
//! CA directory or a verified bundle, the exports for nodes and phones, and `--apply` through
//! kubectl. Checked with `openssl`, `kubernetes-validate`, `python3` (TOML), `age-keygen` and
//! `kubectl`; a missing tool fails the test with an install hint.

use std::path::{Path, PathBuf};
use std::process::Command;

use bundle_file::pack::{pack, PackOptions};
use bundle_file::sign::{KeyId, SecretKey};
use bundle_file::NoProgress;
use test_support::{require, Run};

const PASSPHRASE: &str = "enclave horse battery staple";

/// Runs `program` in `cwd` without a passphrase in the environment (the CA commands read
/// theirs from files).
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str], cwd: &Path) -> Run {
    let program = program.as_ref();
    Run::from(
        Command::new(program)
            .args(args)
            .current_dir(cwd)
            .env_remove("BUNDLE_KEY_PASSPHRASE")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}")),
    )
}

fn installer(args: &[&str], cwd: &Path) -> Run {
    run(test_support::bin("installer"), args, cwd)
}

fn openssl(args: &[&str], cwd: &Path) -> Run {
    require("openssl", "openssl");
    run("openssl", args, cwd)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A directory with the passphrase file `pw` and a CA made by `installer ca init` in `ca/`.
fn with_ca() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), format!("{PASSPHRASE}\n")).unwrap();
    installer(
        &[
            "ca",
            "init",
            "--out",
            "ca",
            "--name",
            "Enclave Root CA",
            "--passphrase-file",
            "pw",
        ],
        dir.path(),
    )
    .ok();
    dir
}

/// Decodes the Secret's `data.<field>` into `dir/<field>` with openssl; returns the path.
fn secret_field(secret: &serde_json::Value, field: &str, dir: &Path) -> PathBuf {
    let b64 = dir.join(format!("{field}.b64"));
    std::fs::write(&b64, secret["data"][field].as_str().unwrap()).unwrap();
    let out = dir.join(field);
    openssl(
        &[
            "base64",
            "-d",
            "-A",
            "-in",
            b64.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ],
        dir,
    )
    .ok();
    out
}

/// Checks the issuer and Secret written into `out` against the CA certificate `ca_crt`.
fn assert_issuer_files(dir: &Path, out: &str, ca_crt: &Path, issuer: &str, secret_name: &str) {
    let out = dir.join(out);
    let doc: serde_json::Value =
        serde_json::from_str(&read(&out.join("cluster-issuer.yaml"))).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "apiVersion": "cert-manager.io/v1",
            "kind": "ClusterIssuer",
            "metadata": { "name": issuer },
            "spec": { "ca": { "secretName": secret_name } },
        })
    );

    let secret_file = out.join("ca-secret.yaml");
    require("kubernetes-validate", "scripts/setup.sh");
    let valid = run(
        "kubernetes-validate",
        &["--strict", secret_file.to_str().unwrap()],
        dir,
    );
    assert!(
        valid.code == 0 && valid.stdout.contains("passed"),
        "{valid:?}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret_file).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "the Secret file holds the key in clear"
    );

    let secret: serde_json::Value = serde_json::from_str(&read(&secret_file)).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["name"], secret_name);
    assert_eq!(secret["metadata"]["namespace"], "cert-manager");
    let crt = secret_field(&secret, "tls.crt", &out);
    let key = secret_field(&secret, "tls.key", &out);
    assert_eq!(
        read(&crt),
        read(ca_crt),
        "tls.crt is not the CA certificate"
    );
    // tls.key is the CA's key: its public half is the certificate's.
    let cert_pub = openssl(&["x509", "-noout", "-pubkey", "-in", "tls.crt"], &out).ok();
    let key_pub = openssl(&["pkey", "-pubout", "-in", key.to_str().unwrap()], &out).ok();
    assert!(cert_pub.stdout.contains("BEGIN PUBLIC KEY"));
    assert_eq!(cert_pub.stdout, key_pub.stdout);
}

#[test]
fn issuer_from_a_ca_directory() {
    let dir = with_ca();
    let d = dir.path();
    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--passphrase-file",
            "pw",
            "--issuer-name",
            "site-ca",
            "--secret-name",
            "site-root-ca",
            "--out",
            "issuer",
        ],
        d,
    )
    .ok();
    assert!(run.stderr.contains("holds the CA key in clear"), "{run:?}");
    assert_issuer_files(d, "issuer", &d.join("ca/ca.crt"), "site-ca", "site-root-ca");
}

#[test]
fn issuer_with_a_wrong_passphrase_names_the_key_file() {
    let dir = with_ca();
    let d = dir.path();
    std::fs::write(d.join("wrong"), "not the passphrase\n").unwrap();
    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--passphrase-file",
            "wrong",
            "--out",
            "issuer",
        ],
        d,
    )
    .failed();
    assert!(run.stderr.contains("ca/ca.key.age"), "{}", run.stderr);
    assert!(!d.join("issuer").exists());

    // Names Kubernetes would refuse are refused before anything is decrypted.
    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--passphrase-file",
            "pw",
            "--issuer-name",
            "Site_CA",
            "--out",
            "issuer",
        ],
        d,
    )
    .failed();
    assert!(run.stderr.contains("--issuer-name"), "{}", run.stderr);
}

#[test]
fn issuer_opens_a_recipient_key_with_an_identity_file() {
    require("age-keygen", "age");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run("age-keygen", &["-o", "id.txt"], d).ok();
    let recipient = run("age-keygen", &["-y", "id.txt"], d).ok().stdout;
    installer(
        &["ca", "init", "--out", "ca", "--recipient", recipient.trim()],
        d,
    )
    .ok();
    installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--identity",
            "id.txt",
            "--out",
            "issuer",
        ],
        d,
    )
    .ok();
    assert_issuer_files(d, "issuer", &d.join("ca/ca.crt"), "site-ca", "site-ca");
}

#[test]
fn issuer_needs_the_key() {
    let dir = with_ca();
    let d = dir.path();
    installer(
        &[
            "ca",
            "init",
            "--out",
            "certonly",
            "--import-cert",
            "ca/ca.crt",
            "--no-key",
        ],
        d,
    )
    .ok();
    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "certonly",
            "--passphrase-file",
            "pw",
            "--out",
            "issuer",
        ],
        d,
    )
    .failed();
    assert!(run.stderr.contains("certonly/ca.key.age"), "{}", run.stderr);
    assert!(run.stderr.contains("--no-key"), "{}", run.stderr);
}

#[test]
fn export_writes_node_and_phone_files() {
    let dir = with_ca();
    let d = dir.path();
    installer(
        &[
            "ca",
            "export",
            "--ca-dir",
            "ca",
            "--registry",
            "registry.site.internal:5000",
            "--out",
            "export",
        ],
        d,
    )
    .ok();
    let e = d.join("export");
    let ca_crt = read(&d.join("ca/ca.crt"));
    assert_eq!(read(&e.join("ca.crt")), ca_crt);
    let host = e.join("containerd/certs.d/registry.site.internal:5000");
    assert_eq!(read(&host.join("ca.crt")), ca_crt);

    // ca.der is the same certificate, as openssl reads DER.
    let subject = openssl(
        &[
            "x509", "-inform", "DER", "-in", "ca.der", "-noout", "-subject",
        ],
        &e,
    )
    .ok();
    assert!(subject.stdout.contains("Enclave Root CA"), "{subject:?}");
    openssl(
        &[
            "x509",
            "-outform",
            "DER",
            "-in",
            "ca.crt",
            "-out",
            "from-pem.der",
        ],
        &e,
    )
    .ok();
    assert_eq!(
        std::fs::read(e.join("from-pem.der")).unwrap(),
        std::fs::read(e.join("ca.der")).unwrap()
    );

    // hosts.toml is TOML naming the registry and the CA's path on the node.
    require("python3", "python3");
    let parsed = run(
        "python3",
        &[
            "-c",
            "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
            host.join("hosts.toml").to_str().unwrap(),
        ],
        d,
    )
    .ok();
    let toml: serde_json::Value = serde_json::from_str(&parsed.stdout).unwrap();
    assert_eq!(
        toml,
        serde_json::json!({
            "server": "https://registry.site.internal:5000",
            // The server, tried when the host fails, trusts the same CA: no fallback
            // anywhere else.
            "capabilities": ["pull", "resolve"],
            "ca": "/etc/containerd/certs.d/registry.site.internal:5000/ca.crt",
            "host": { "https://registry.site.internal:5000": {
                "capabilities": ["pull", "resolve"],
                "ca": "/etc/containerd/certs.d/registry.site.internal:5000/ca.crt",
            }},
        })
    );

    let readme = read(&e.join("README.txt"));
    for needle in [
        "/usr/local/share/ca-certificates/",
        "update-ca-certificates",
        "/etc/containerd/certs.d/registry.site.internal:5000/",
        "Android",
    ] {
        assert!(
            readme.contains(needle),
            "README.txt lacks {needle}:\n{readme}"
        );
    }

    let bad = installer(
        &[
            "ca",
            "export",
            "--ca-dir",
            "ca",
            "--registry",
            "https://registry/x",
            "--out",
            "bad",
        ],
        d,
    )
    .failed();
    assert!(bad.stderr.contains("--registry"), "{}", bad.stderr);
}

#[test]
fn apply_to_an_unreachable_cluster_names_the_server() {
    require("kubectl", "scripts/install-helm.sh");
    let dir = with_ca();
    let d = dir.path();
    std::fs::write(
        d.join("kubeconfig"),
        "apiVersion: v1
kind: Config
clusters:
- name: enclave
  cluster:
    server: https://127.0.0.1:1
users:
- name: admin
  user:
    token: not-a-real-token
contexts:
- name: enclave
  context: {cluster: enclave, user: admin}
current-context: enclave
",
    )
    .unwrap();
    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--passphrase-file",
            "pw",
            "--apply",
            "--kubeconfig",
            "kubeconfig",
            "--context",
            "enclave",
        ],
        d,
    )
    .failed();
    assert!(
        run.stderr.contains("applying the CA Secret"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("https://127.0.0.1:1"), "{}", run.stderr);
    // The Secret went to kubectl on stdin, never on its command line or in the error.
    assert!(!run.stderr.contains("tls.key"), "{}", run.stderr);

    let run = installer(
        &[
            "ca",
            "issuer",
            "--ca-dir",
            "ca",
            "--passphrase-file",
            "pw",
            "--apply",
            "--kubectl",
            "/nonexistent/kubectl",
        ],
        d,
    )
    .failed();
    assert!(run.stderr.contains("--kubectl PATH"), "{}", run.stderr);
}

/// Packs `dir/stage` into `dir/<name>`, signed by `key` if given.
fn packed(dir: &Path, name: &str, key: Option<&SecretKey>) -> PathBuf {
    let out = dir.join(name);
    let options = PackOptions {
        name: "messenger".into(),
        version: "1.0.0".into(),
        platforms: vec!["linux/amd64".into()],
        timestamp: Some(1_700_000_000),
        threads: 2,
        level: 3,
    };
    pack(&dir.join("stage"), &out, &options, key, &NoProgress).unwrap();
    out
}

#[test]
fn issuer_and_export_from_a_verified_bundle() {
    let dir = with_ca();
    let d = dir.path();
    std::fs::create_dir_all(d.join("stage/ca")).unwrap();
    std::fs::write(
        d.join("stage/oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    for file in ["ca.crt", "ca.key.age"] {
        std::fs::copy(d.join("ca").join(file), d.join("stage/ca").join(file)).unwrap();
    }
    let signer = SecretKey::from_seed(KeyId([7; 8]), &[7; 32]);
    std::fs::write(d.join("k.pub"), signer.public_key().to_file_string()).unwrap();
    packed(d, "b.tar.zst", Some(&signer));

    installer(
        &[
            "ca",
            "issuer",
            "--bundle",
            "b.tar.zst",
            "--key",
            "k.pub",
            "--passphrase-file",
            "pw",
            "--out",
            "issuer",
        ],
        d,
    )
    .ok();
    assert_issuer_files(d, "issuer", &d.join("ca/ca.crt"), "site-ca", "site-ca");
    installer(
        &[
            "ca",
            "export",
            "--bundle",
            "b.tar.zst",
            "--key",
            "k.pub",
            "--registry",
            "10.0.0.5:5000",
            "--out",
            "export",
        ],
        d,
    )
    .ok();
    assert_eq!(
        read(&d.join("export/containerd/certs.d/10.0.0.5:5000/ca.crt")),
        read(&d.join("ca/ca.crt"))
    );

    // A wrong passphrase names the key inside the bundle.
    std::fs::write(d.join("wrong"), "nope\n").unwrap();
    let run = installer(
        &[
            "ca",
            "issuer",
            "--bundle",
            "b.tar.zst",
            "--key",
            "k.pub",
            "--passphrase-file",
            "wrong",
            "--out",
            "x",
        ],
        d,
    )
    .failed();
    assert!(
        run.stderr.contains("ca/ca.key.age in b.tar.zst"),
        "{}",
        run.stderr
    );

    // Signed by a key that is not trusted, or not signed at all: refused before use.
    let other = SecretKey::from_seed(KeyId([8; 8]), &[8; 32]);
    std::fs::write(d.join("other.pub"), other.public_key().to_file_string()).unwrap();
    packed(d, "unsigned.tar.zst", None);
    for (bundle, key) in [("b.tar.zst", "other.pub"), ("unsigned.tar.zst", "k.pub")] {
        let run = installer(
            &[
                "ca",
                "export",
                "--bundle",
                bundle,
                "--key",
                key,
                "--registry",
                "10.0.0.5:5000",
                "--out",
                "refused",
            ],
            d,
        )
        .failed();
        assert!(run.stderr.contains("failed verification"), "{}", run.stderr);
        assert!(!d.join("refused").exists());
    }

    // A trusted bundle that carries no CA says so.
    std::fs::remove_dir_all(d.join("stage/ca")).unwrap();
    packed(d, "noca.tar.zst", Some(&signer));
    let run = installer(
        &[
            "ca",
            "export",
            "--bundle",
            "noca.tar.zst",
            "--key",
            "k.pub",
            "--registry",
            "10.0.0.5:5000",
            "--out",
            "x",
        ],
        d,
    )
    .failed();
    assert!(run.stderr.contains("carries no CA"), "{}", run.stderr);
}
