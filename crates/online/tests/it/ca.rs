//! The site root CA (`online::ca`): certificates checked with the stock `openssl` tool, the
//! age-encrypted key, and the exports (cert-manager objects, containerd `hosts.toml`).
//!
//! Needs `openssl` and PyPI's `kubernetes-validate` on PATH
//! (`pip install kubernetes-validate`); a missing tool fails the test with that hint.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;
use online::ca::{Identity, KeyProtection, RootCa};

fn run(program: &str, args: &[&str], hint: &str) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed: {hint}")
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

fn openssl(args: &[&str]) -> Output {
    run("openssl", args, "apt-get install openssl")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn verify(ca_pem: &str, leaf_pem: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", ca_pem.as_bytes());
    let leaf = write(dir.path(), "leaf.crt", leaf_pem.as_bytes());
    openssl(&[
        "verify",
        "-x509_strict",
        "-purpose",
        "sslserver",
        "-CAfile",
        ca.to_str().unwrap(),
        leaf.to_str().unwrap(),
    ])
}

fn assert_verifies(ca_pem: &str, leaf_pem: &str) {
    let out = verify(ca_pem, leaf_pem);
    assert!(
        out.status.success(),
        "openssl verify refused: {}",
        text(&out)
    );
    assert!(text(&out).contains(": OK"), "{}", text(&out));
}

fn age_plaintext(encrypted: &[u8], identity: &dyn age::Identity) -> String {
    let d = age::Decryptor::new_buffered(encrypted).unwrap();
    let mut r = d.decrypt(std::iter::once(identity)).unwrap();
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn generated_ca_has_ca_extensions() {
    let ca = RootCa::generate("Test Site Root CA", "Test Org", 3650).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "ca.crt", ca.cert_pem().as_bytes());
    let out = openssl(&["x509", "-noout", "-text", "-in", p.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("CA:TRUE, pathlen:0"), "{t}");
    assert!(t.contains("X509v3 Basic Constraints: critical"), "{t}");
    assert!(t.contains("Certificate Sign, CRL Sign"), "{t}");
    assert!(t.contains("X509v3 Subject Key Identifier"), "{t}");
    assert!(t.contains("ecdsa-with-SHA256"), "{t}");
    assert!(t.contains("prime256v1") || t.contains("P-256"), "{t}");
    assert!(
        t.contains("CN=Test Site Root CA") || t.contains("CN = Test Site Root CA"),
        "{t}"
    );
    assert!(
        t.contains("O=Test Org") || t.contains("O = Test Org"),
        "{t}"
    );
    // Self-signed: the CA verifies against itself, and `openssl` sees it valid now.
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        p.to_str().unwrap(),
        p.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        "0",
        "-in",
        p.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(&[
        "x509",
        "-noout",
        "-checkend",
        &(3651u64 * 86400).to_string(),
        "-in",
        p.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success(),
        "expires within 3651 days: {}",
        text(&out)
    );
}

#[test]
fn leaf_verifies_with_its_ca_only() {
    let ca = RootCa::generate("Site A Root CA", "Org", 30).unwrap();
    let other = RootCa::generate("Site A Root CA", "Org", 30).unwrap();
    let (leaf, key) = ca
        .issue_leaf(&["registry.site.internal", "matrix.site.internal"])
        .unwrap();
    assert!(key.contains("PRIVATE KEY"));
    assert_verifies(ca.cert_pem(), &leaf);
    let out = verify(other.cert_pem(), &leaf);
    assert!(
        !out.status.success(),
        "another CA accepted the leaf: {}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "leaf.crt", leaf.as_bytes());
    let t = text(&openssl(&[
        "x509",
        "-noout",
        "-text",
        "-in",
        p.to_str().unwrap(),
    ]));
    assert!(
        t.contains("DNS:registry.site.internal, DNS:matrix.site.internal"),
        "{t}"
    );
    assert!(t.contains("CA:FALSE"), "{t}");
    assert!(t.contains("TLS Web Server Authentication"), "{t}");
    assert!(ca.issue_leaf(&[]).is_err());
}

#[test]
fn passphrase_encrypted_key() {
    let ca = RootCa::generate("Root", "Org", 30).unwrap();
    let enc = ca
        .encrypted_key(&KeyProtection::Passphrase("right horse battery".into()))
        .unwrap();
    assert!(enc.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert!(!enc.windows(11).any(|w| w == b"PRIVATE KEY"));
    assert!(!enc.windows(10).any(|w| w == b"-----BEGIN"));

    let wrong = RootCa::decrypt(
        ca.cert_pem(),
        &enc,
        &Identity::Passphrase("wrong horse battery".into()),
    );
    assert!(wrong.is_err());
    // An X25519 identity does not open a passphrase file either.
    let id = age::x25519::Identity::generate();
    let x = Identity::X25519(id.to_string().expose_secret().to_string());
    assert!(RootCa::decrypt(ca.cert_pem(), &enc, &x).is_err());

    let again = RootCa::decrypt(
        ca.cert_pem(),
        &enc,
        &Identity::Passphrase("right horse battery".into()),
    )
    .unwrap();
    assert_eq!(again.cert_pem(), ca.cert_pem());
    // The decrypted key really is the CA's: its leaves verify against the original certificate.
    let (leaf, _) = again.issue_leaf(&["a.example"]).unwrap();
    assert_verifies(ca.cert_pem(), &leaf);

    // The right key with another CA's certificate is refused.
    let other = RootCa::generate("Root", "Org", 30).unwrap();
    let err = RootCa::decrypt(
        other.cert_pem(),
        &enc,
        &Identity::Passphrase("right horse battery".into()),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    assert!(ca
        .encrypted_key(&KeyProtection::Passphrase(String::new()))
        .is_err());
}

#[test]
fn recipient_encrypted_key() {
    let ca = RootCa::generate("Root", "Org", 30).unwrap();
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    assert!(recipient.starts_with("age1"));
    let enc = ca
        .encrypted_key(&KeyProtection::Recipient(recipient))
        .unwrap();
    assert!(enc.starts_with(b"age-encryption.org/v1\n-> X25519 "));
    assert!(!enc.windows(11).any(|w| w == b"PRIVATE KEY"));

    let secret = id.to_string().expose_secret().to_string();
    let again = RootCa::decrypt(ca.cert_pem(), &enc, &Identity::X25519(secret)).unwrap();
    let (leaf, _) = again.issue_leaf(&["b.example"]).unwrap();
    assert_verifies(ca.cert_pem(), &leaf);

    let other = age::x25519::Identity::generate();
    let other = Identity::X25519(other.to_string().expose_secret().to_string());
    assert!(RootCa::decrypt(ca.cert_pem(), &enc, &other).is_err());
    assert!(RootCa::decrypt(ca.cert_pem(), &enc, &Identity::Passphrase("x".into())).is_err());
    assert!(ca
        .encrypted_key(&KeyProtection::Recipient("age1notarecipient".into()))
        .is_err());
}

#[test]
fn import_round_trip() {
    let ca = RootCa::generate("Root", "Org", 30).unwrap();
    let id = age::x25519::Identity::generate();
    let enc = ca
        .encrypted_key(&KeyProtection::Recipient(id.to_public().to_string()))
        .unwrap();
    // The age file is a standard one: the age crate alone opens it to a PKCS#8 PEM key.
    let key_pem = age_plaintext(&enc, &id);
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    let imported = RootCa::import(ca.cert_pem(), &key_pem).unwrap();
    assert_eq!(imported.cert_pem(), ca.cert_pem());
    assert_eq!(imported.cert_der(), ca.cert_der());
    let (leaf, _) = imported.issue_leaf(&["c.example"]).unwrap();
    assert_verifies(ca.cert_pem(), &leaf);

    // Not a CA: a leaf and its own key.
    let (leaf, leaf_key) = ca.issue_leaf(&["d.example"]).unwrap();
    let err = RootCa::import(&leaf, &leaf_key).unwrap_err();
    assert!(format!("{err:#}").contains("not a CA"), "{err:#}");
    // A key that is not the certificate's.
    let err = RootCa::import(ca.cert_pem(), &leaf_key).unwrap_err();
    assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    // Garbage.
    assert!(RootCa::import("nope", &key_pem).is_err());
    assert!(RootCa::import(ca.cert_pem(), "nope").is_err());
}

#[test]
fn import_openssl_made_ca() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ca.key");
    let crt = dir.path().join("ca.crt");
    let out = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-days",
        "30",
        "-subj",
        "/CN=OpenSSL Root/O=Org",
        "-addext",
        "basicConstraints=critical,CA:TRUE,pathlen:0",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let crt_pem = std::fs::read_to_string(&crt).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let ca = RootCa::import(&crt_pem, &key_pem).unwrap();
    let (leaf, _) = ca.issue_leaf(&["e.example"]).unwrap();
    assert_verifies(&crt_pem, &leaf);
}

/// The stock `age` tool opens the encrypted key (recipient mode; the passphrase mode needs a
/// terminal).
#[test]
fn age_cli_opens_recipient_file() {
    test_support::require("age", "age");
    let ca = RootCa::generate("Root", "Org", 30).unwrap();
    let id = age::x25519::Identity::generate();
    let enc = ca
        .encrypted_key(&KeyProtection::Recipient(id.to_public().to_string()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = write(dir.path(), "ca.key.age", &enc);
    let id_file = write(
        dir.path(),
        "id.txt",
        format!("{}\n", id.to_string().expose_secret()).as_bytes(),
    );
    let out = run(
        "age",
        &[
            "-d",
            "-i",
            id_file.to_str().unwrap(),
            key_file.to_str().unwrap(),
        ],
        "apt-get install age",
    );
    assert!(out.status.success(), "{}", text(&out));
    let key_pem = String::from_utf8(out.stdout).unwrap();
    let imported = RootCa::import(ca.cert_pem(), &key_pem).unwrap();
    assert_eq!(imported.cert_der(), ca.cert_der());
}
