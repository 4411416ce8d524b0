//! Interoperability of `bundle_file::sign` with the real `minisign` tool.
//!
//! These tests run the Debian `minisign` binary (0.11) on files written by
//! our code and read back what it writes. They fail, rather than skip, when
//! the binary is missing: install it with `apt-get install -y minisign`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bundle_file::sign::{KdfParams, PublicKey, SecretKey, Signature};

/// Cheap scrypt parameters in the `opslimit >= memlimit / 32` branch of
/// libsodium's parameter choice (N = 2^10, r = 8, p = 32), so that minisign
/// only decrypts our key if we picked N, r and p exactly as libsodium does.
const TEST_KDF: KdfParams = KdfParams {
    opslimit: 1 << 20,
    memlimit: 1 << 20,
};

/// Runs minisign with `args`, feeding `stdin` (e.g. a password line).
fn run_minisign(args: &[&std::ffi::OsStr], stdin: &str) -> Output {
    test_support::require("minisign", "minisign");
    let mut child = Command::new("minisign")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start minisign");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("cannot write to minisign's stdin");
    child.wait_with_output().expect("minisign did not finish")
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `minisign -Vm FILE -p PUB -x SIG`.
fn minisign_verify(file: &Path, public_key: &Path, signature: &Path) -> Output {
    run_minisign(
        &[
            "-V".as_ref(),
            "-m".as_ref(),
            file.as_os_str(),
            "-p".as_ref(),
            public_key.as_os_str(),
            "-x".as_ref(),
            signature.as_os_str(),
        ],
        "",
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    secret: SecretKey,
    data: PathBuf,
    public_key: PathBuf,
    signature: PathBuf,
}

/// A temp dir with a data file, our public key and our signature of it.
fn fixture(trusted_comment: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = SecretKey::generate();
    let data = dir.path().join("bundle.tar");
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&data, &content).unwrap();
    let public_key = dir.path().join("test.pub");
    std::fs::write(&public_key, secret.public_key().to_file_string()).unwrap();
    let signature = dir.path().join("bundle.tar.minisig");
    let sig = secret.sign(&content, "signature from bundle tests", trusted_comment);
    std::fs::write(&signature, sig.to_file_string()).unwrap();
    Fixture {
        _dir: dir,
        secret,
        data,
        public_key,
        signature,
    }
}

#[test]
fn minisign_verifies_our_signature_and_rejects_a_changed_file() {
    let f = fixture("timestamp:1700000000\tfile:bundle.tar\thashed");
    let out = minisign_verify(&f.data, &f.public_key, &f.signature);
    assert!(
        out.status.success(),
        "minisign rejected our signature:\n{}",
        describe(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Trusted comment: timestamp:1700000000\tfile:bundle.tar\thashed"),
        "{}",
        describe(&out)
    );

    // Change one byte of the data: minisign must refuse it.
    let mut content = std::fs::read(&f.data).unwrap();
    content[50_000] ^= 0x01;
    std::fs::write(&f.data, &content).unwrap();
    let out = minisign_verify(&f.data, &f.public_key, &f.signature);
    assert!(
        !out.status.success(),
        "minisign accepted a changed file:\n{}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Signature verification failed"),
        "{}",
        describe(&out)
    );
}

#[test]
fn minisign_rejects_our_signature_with_an_altered_trusted_comment() {
    let f = fixture("file:bundle.tar");
    let text = std::fs::read_to_string(&f.signature).unwrap();
    let forged = text.replace(
        "trusted comment: file:bundle.tar",
        "trusted comment: file:other.tar",
    );
    assert_ne!(forged, text);
    std::fs::write(&f.signature, forged).unwrap();
    let out = minisign_verify(&f.data, &f.public_key, &f.signature);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Comment signature verification failed"),
        "{}",
        describe(&out)
    );
}

#[test]
fn minisign_rejects_our_signature_under_another_key() {
    let f = fixture("file:bundle.tar");
    let other = SecretKey::generate();
    std::fs::write(&f.public_key, other.public_key().to_file_string()).unwrap();
    let out = minisign_verify(&f.data, &f.public_key, &f.signature);
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn minisign_accepts_our_bare_public_key() {
    let f = fixture("file:bundle.tar");
    let out = run_minisign(
        &[
            "-V".as_ref(),
            "-m".as_ref(),
            f.data.as_os_str(),
            "-P".as_ref(),
            f.secret.public_key().to_base64().as_ref(),
            "-x".as_ref(),
            f.signature.as_os_str(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", describe(&out));
}

/// minisign decrypts a secret key that we encrypted (reading the password
/// on stdin), signs with it, and we verify its signature; since Ed25519 is
/// deterministic, its file is byte-identical to ours. `minisign -R`
/// rebuilds from our secret key a public key file identical to ours.
#[test]
fn minisign_uses_our_encrypted_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = SecretKey::generate();
    let key_path = dir.path().join("test.key");
    std::fs::write(
        &key_path,
        secret
            .to_encrypted_file_string("s3cret pass", TEST_KDF)
            .unwrap(),
    )
    .unwrap();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, b"some bundle content\n").unwrap();
    let sig_path = dir.path().join("data.bin.minisig");

    let out = run_minisign(
        &[
            "-S".as_ref(),
            "-s".as_ref(),
            key_path.as_os_str(),
            "-m".as_ref(),
            data.as_os_str(),
            "-x".as_ref(),
            sig_path.as_os_str(),
            "-c".as_ref(),
            "made by minisign".as_ref(),
            "-t".as_ref(),
            "file:data.bin\tchannel:stable".as_ref(),
        ],
        "s3cret pass\n",
    );
    assert!(
        out.status.success(),
        "minisign could not sign with our key:\n{}",
        describe(&out)
    );
    let theirs = std::fs::read_to_string(&sig_path).unwrap();
    let parsed = Signature::parse(&theirs).unwrap();
    parsed
        .verify(&secret.public_key(), b"some bundle content\n")
        .unwrap();
    assert_eq!(parsed.trusted_comment(), "file:data.bin\tchannel:stable");
    let ours = secret.sign(
        b"some bundle content\n",
        "made by minisign",
        "file:data.bin\tchannel:stable",
    );
    assert_eq!(ours.to_file_string(), theirs);

    // A wrong password is refused by minisign too.
    let out = run_minisign(
        &[
            "-S".as_ref(),
            "-s".as_ref(),
            key_path.as_os_str(),
            "-m".as_ref(),
            data.as_os_str(),
            "-x".as_ref(),
            dir.path().join("other.minisig").as_os_str(),
        ],
        "wrong pass\n",
    );
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Wrong password"),
        "{}",
        describe(&out)
    );

    // minisign -R rebuilds the public key file from our secret key.
    let pub_path = dir.path().join("rebuilt.pub");
    let out = run_minisign(
        &[
            "-R".as_ref(),
            "-s".as_ref(),
            key_path.as_os_str(),
            "-p".as_ref(),
            pub_path.as_os_str(),
        ],
        "s3cret pass\n",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let rebuilt = std::fs::read_to_string(&pub_path).unwrap();
    assert_eq!(rebuilt, secret.public_key().to_file_string());
    assert_eq!(
        PublicKey::from_file(&pub_path).unwrap(),
        secret.public_key()
    );
}
