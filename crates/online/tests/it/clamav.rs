//! ClamAV database validation against Talos-signed test databases in shared/testdata/clamav.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use online::clamav::{ClamavError, Cvd, VerifyOptions, HEADER_LEN};

const DBS: [&str; 3] = ["test-1.cvd", "test-2.cvd", "bytecode.cvd"];

fn testdata() -> PathBuf {
    test_support::clamav_testdata()
}

/// Writes `data` as `name` in the scratch directory and returns why it fails verification.
fn verify_err(s: &Scratch, name: &str, data: &[u8]) -> ClamavError {
    Cvd::read(s.write(name, data))
        .unwrap()
        .verify(&s.opts())
        .unwrap_err()
}

/// A scratch directory with copies of the databases (and `.sign` files), plus cert dirs
/// `test-certs/` (clamav-test.crt) and `root-certs/` (clamav-root.crt).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(src: &Path) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if name.ends_with(".cvd") || name.ends_with(".sign") {
                std::fs::write(dir.path().join(&name), std::fs::read(&p).unwrap()).unwrap();
            }
        }
        for (sub, crt) in [
            ("test-certs", "clamav-test.crt"),
            ("root-certs", "clamav-root.crt"),
        ] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            std::fs::copy(src.join(crt), dir.path().join(sub).join(crt)).unwrap();
        }
        Scratch { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn opts(&self) -> VerifyOptions {
        VerifyOptions {
            cert_dir: Some(self.path("test-certs")),
            allow_unsigned: false,
            at: Some(fixed_time()),
        }
    }
    /// Writes `data` as `name`, without a `.sign` beside it.
    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}

/// 2026-01-01T00:00:00Z: inside every test certificate's validity, so the tests do not
/// depend on the day they run (ClamAV's TEST root expires in March 2027).
fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn header_field_range(data: &[u8], index: usize) -> std::ops::Range<usize> {
    let header = &data[..HEADER_LEN];
    let mut start = 0;
    for _ in 0..index {
        start += header[start..].iter().position(|&b| b == b':').unwrap() + 1;
    }
    let len = header[start..]
        .iter()
        .position(|&b| b == b':' || b == b' ')
        .unwrap();
    start..start + len
}

#[test]
fn real_databases_verify() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in DBS {
        let cvd = Cvd::read(s.path(db)).unwrap();
        let v = cvd
            .verify(&s.opts())
            .unwrap_or_else(|e| panic!("{db}: {e}"));
        assert!(!v.unsigned);
        assert!(!v.info_files.is_empty(), "{db}");
        assert_eq!(v.sign_verified, db != "bytecode.cvd", "{db}");
    }
    let c = Cvd::read(s.path("bytecode.cvd")).unwrap();
    assert_eq!(c.name, "bytecode");
    assert_eq!(c.version, 19);
    assert_eq!(c.signatures, 3);
    assert_eq!(c.functionality_level, 51);
    assert_eq!(c.builder, "nervous");
    assert_eq!(c.build_time, "14 May 2010 09-57 -0400");
    assert_eq!(c.build_time_secs, 1273845430);
    let c = Cvd::read(s.path("test-2.cvd")).unwrap();
    assert_eq!((c.version, c.functionality_level), (2, 81));
}

#[test]
fn flipped_header_field_fails() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in DBS {
        let orig = std::fs::read(s.path(db)).unwrap();
        // A non-digit in the version field: unparsable.
        let mut data = orig.clone();
        let r = header_field_range(&data, 2);
        data[r.start] = b'x';
        let err = Cvd::read(s.write("hdr.cvd", &data)).unwrap_err();
        assert!(
            matches!(
                err,
                ClamavError::Header {
                    field: "version",
                    ..
                }
            ),
            "{db}: {err}"
        );
        // A different but valid version: caught against the signed copy in .info.
        let mut data = orig.clone();
        data[r.start] = if data[r.start] == b'7' { b'8' } else { b'7' };
        let err = verify_err(&s, "hdr.cvd", &data);
        assert!(
            matches!(
                err,
                ClamavError::HeaderMismatch {
                    field: "version",
                    ..
                }
            ),
            "{db}: {err}"
        );
        // Builder name changed.
        let mut data = orig.clone();
        let r = header_field_range(&data, 7);
        data[r.start] ^= 0x01;
        let err = verify_err(&s, "hdr.cvd", &data);
        assert!(
            matches!(
                err,
                ClamavError::HeaderMismatch {
                    field: "builder",
                    ..
                }
            ),
            "{db}: {err}"
        );
    }
}

#[test]
fn flipped_dsig_fails() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in DBS {
        let mut data = std::fs::read(s.path(db)).unwrap();
        let r = header_field_range(&data, 6);
        let i = r.start + r.len() / 2;
        data[i] = if data[i] == b'a' { b'b' } else { b'a' };
        let err = verify_err(&s, "dsig.cvd", &data);
        assert!(
            matches!(err, ClamavError::HeaderSignature { .. }),
            "{db}: {err}"
        );
    }
}

#[test]
fn flipped_body_byte_fails() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in DBS {
        let mut data = std::fs::read(s.path(db)).unwrap();
        let i = HEADER_LEN + (data.len() - HEADER_LEN) / 2;
        data[i] ^= 0x40;
        let err = verify_err(&s, "body.cvd", &data);
        assert!(
            matches!(err, ClamavError::BodyMd5Mismatch { .. }),
            "{db}: {err}"
        );
    }
}

/// Re-packs the body with `edit` applied to the named entries, and puts the new body's MD5
/// into the header so that the body MD5 check passes.
fn repack(data: &[u8], edit: impl Fn(&str, &mut Vec<u8>)) -> Vec<u8> {
    let mut gz = flate2::read::GzDecoder::new(&data[HEADER_LEN..]);
    let mut tar_bytes = Vec::new();
    gz.read_to_end(&mut tar_bytes).unwrap();
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        edit(&name, &mut content);
        let mut header = entry.header().clone();
        header.set_size(content.len() as u64);
        header.set_cksum();
        builder.append(&header, &content[..]).unwrap();
    }
    let tar_out = builder.into_inner().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&tar_out).unwrap();
    let body = enc.finish().unwrap();
    let mut out = data[..HEADER_LEN].to_vec();
    let r = header_field_range(&out, 5);
    use md5::Digest as _;
    let md5 = hex::encode(md5::Md5::digest(&body));
    out[r].copy_from_slice(md5.as_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn flipped_info_byte_fails() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in DBS {
        let orig = std::fs::read(s.path(db)).unwrap();
        // Unchanged re-pack still passes the .info check (and fails only the header dsig).
        let same = repack(&orig, |_, _| {});
        let err = verify_err(&s, "info.cvd", &same);
        assert!(
            matches!(err, ClamavError::HeaderSignature { .. }),
            "{db}: {err}"
        );
        // One byte of a listed hash in .info changed: its DSIG no longer matches.
        let data = repack(&orig, |name, content| {
            if name.ends_with(".info") {
                let line2 = content.iter().position(|&b| b == b'\n').unwrap() + 1;
                let i = line2 + content[line2..].len() / 4;
                content[i] = if content[i] == b'0' { b'1' } else { b'0' };
            }
        });
        let err = verify_err(&s, "info.cvd", &data);
        assert!(
            matches!(err, ClamavError::InfoSignature { .. }),
            "{db}: {err}"
        );
        // A listed file changed (same size): its hash no longer matches .info.
        let data = repack(&orig, |name, content| {
            if !name.ends_with(".info") && name != "COPYING" {
                content[0] ^= 0x01;
            }
        });
        let err = verify_err(&s, "info.cvd", &data);
        assert!(
            matches!(err, ClamavError::InfoMismatch { .. }),
            "{db}: {err}"
        );
        // .info removed.
        let data = repack(&orig, |name, content| {
            if name.ends_with(".info") {
                content.clear();
            }
        });
        let err = verify_err(&s, "info.cvd", &data);
        assert!(
            matches!(err, ClamavError::InfoSignatureMissing { .. }),
            "{db}: {err}"
        );
    }
}

#[test]
fn sign_files_verify_only_against_the_test_root() {
    let src = testdata();
    let s = Scratch::new(&src);
    for db in ["test-1.cvd", "test-2.cvd"] {
        let cvd = Cvd::read(s.path(db)).unwrap();
        assert!(cvd.verify(&s.opts()).unwrap().sign_verified);
        let root = VerifyOptions {
            cert_dir: Some(s.path("root-certs")),
            ..s.opts()
        };
        let err = cvd.verify(&root).unwrap_err();
        assert!(
            matches!(err, ClamavError::SignUntrusted { .. }),
            "{db}: {err}"
        );
        let err = cvd.verify(&VerifyOptions::default()).unwrap_err();
        assert!(
            matches!(err, ClamavError::SignNoCertificates { .. }),
            "{db}: {err}"
        );
    }
    // Outside the certificates' validity (before the test PKI existed, after it expires).
    for secs in [1_600_000_000u64, 2_300_000_000] {
        let at = VerifyOptions {
            at: Some(UNIX_EPOCH + Duration::from_secs(secs)),
            ..s.opts()
        };
        let err = Cvd::read(s.path("test-1.cvd"))
            .unwrap()
            .verify(&at)
            .unwrap_err();
        assert!(
            matches!(err, ClamavError::SignCertificateTime { .. }),
            "{secs}: {err}"
        );
    }
    // test-1's .sign beside test-2's database: the signature does not cover it.
    std::fs::copy(s.path("test-1.cvd.sign"), s.path("test-2.cvd.sign")).unwrap();
    let err = Cvd::read(s.path("test-2.cvd"))
        .unwrap()
        .verify(&s.opts())
        .unwrap_err();
    assert!(matches!(err, ClamavError::SignBadSignature { .. }), "{err}");
}

#[test]
fn other_extensions_are_refused() {
    let src = testdata();
    let s = Scratch::new(&src);
    let p = s.write("x.cdiff", b"");
    assert!(matches!(
        Cvd::read(p),
        Err(ClamavError::UnsupportedKind { .. })
    ));
}

/// Builds `test.cud` with `sigtool --unsigned` in `dir`, if sigtool is installed.
fn sigtool_cud(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("test.hdb"),
        "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n",
    )
    .unwrap();
    std::fs::write(dir.join("COPYING"), "test\n").unwrap();
    let mut child = match std::process::Command::new("sigtool")
        .current_dir(dir)
        .args(["--build=test.cud", "--unsigned", "--cvd-version=3"])
        .arg(format!("--datadir={}", dir.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            panic!("cannot run sigtool ({e}): apt-get install -y clamav (scripts/setup.sh does)")
        }
    };
    child.stdin.take().unwrap().write_all(b"tester\n").unwrap();
    assert!(child.wait().unwrap().success());
    dir.join("test.cud")
}

#[test]
fn sigtool_cud_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let cud = sigtool_cud(dir.path());
    let c = Cvd::read(&cud).unwrap();
    assert_eq!(c.kind, online::clamav::Kind::Cud);
    assert_eq!(
        (c.version, c.signatures, c.builder.as_str()),
        (3, 1, "tester")
    );
    let err = c.verify(&VerifyOptions::default()).unwrap_err();
    assert!(matches!(err, ClamavError::Unsigned { .. }), "{err}");
    let allow = VerifyOptions {
        allow_unsigned: true,
        ..VerifyOptions::default()
    };
    let v = c.verify(&allow).unwrap();
    assert!(v.unsigned);
    assert_eq!(v.info_files, vec!["test.hdb".to_string()]);

    // Contents are still checked against the (unsigned) .info and the recorded MD5.
    let data = std::fs::read(&cud).unwrap();
    let tampered = repack(&data, |name, content| {
        if name == "test.hdb" {
            content[0] ^= 0x01;
        }
    });
    let p = dir.path().join("bad.cud");
    std::fs::write(&p, tampered).unwrap();
    let err = Cvd::read(&p).unwrap().verify(&allow).unwrap_err();
    assert!(matches!(err, ClamavError::InfoMismatch { .. }), "{err}");
    let mut flipped = data.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x01;
    std::fs::write(&p, flipped).unwrap();
    let err = Cvd::read(&p).unwrap().verify(&allow).unwrap_err();
    assert!(matches!(err, ClamavError::BodyMd5Mismatch { .. }), "{err}");
}

#[test]
fn cvdupdate_directory_verifies() {
    let src = testdata();
    let s = Scratch::new(&src);
    std::fs::copy(src.join("test-2.cdiff"), s.path("test-2.cdiff")).unwrap();
    let all = online::clamav::verify_dir(s.dir.path(), &s.opts()).unwrap();
    let names: Vec<_> = all.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["bytecode", "test-1", "test-2"]);
    // A tampered database makes the whole directory fail, naming the file.
    let mut data = std::fs::read(s.path("test-2.cvd")).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0x01;
    std::fs::write(s.path("test-2.cvd"), data).unwrap();
    let err = online::clamav::verify_dir(s.dir.path(), &s.opts()).unwrap_err();
    assert!(
        matches!(&err, ClamavError::BodyMd5Mismatch { file, .. } if file.ends_with("test-2.cvd")),
        "{err}"
    );
}

#[test]
fn unlisted_body_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let cud = sigtool_cud(dir.path());
    let data = std::fs::read(&cud).unwrap();
    let extra = repack_with_extra(&data, "extra.ndb", b"Extra:0:*:41424344\n");
    let p = dir.path().join("extra.cud");
    std::fs::write(&p, extra).unwrap();
    let allow = VerifyOptions {
        allow_unsigned: true,
        ..VerifyOptions::default()
    };
    let err = Cvd::read(&p).unwrap().verify(&allow).unwrap_err();
    assert!(
        matches!(&err, ClamavError::InfoUnlisted { entry, .. } if entry == "extra.ndb"),
        "{err}"
    );
}

/// Like [`repack`], adding one file at the end of the archive.
fn repack_with_extra(data: &[u8], name: &str, content: &[u8]) -> Vec<u8> {
    let mut gz = flate2::read::GzDecoder::new(&data[HEADER_LEN..]);
    let mut tar_bytes = Vec::new();
    gz.read_to_end(&mut tar_bytes).unwrap();
    // Copy every entry, then append one more.
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let mut c = Vec::new();
        entry.read_to_end(&mut c).unwrap();
        builder.append(&header, &c[..]).unwrap();
    }
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    let tar_out = builder.into_inner().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&tar_out).unwrap();
    let body = enc.finish().unwrap();
    let mut out = data[..HEADER_LEN].to_vec();
    let r = header_field_range(&out, 5);
    use md5::Digest as _;
    out[r].copy_from_slice(hex::encode(md5::Md5::digest(&body)).as_bytes());
    out.extend_from_slice(&body);
    out
}

/// `openssl cms -verify` agrees with our `.sign` verdicts.
#[test]
fn openssl_agrees_on_sign_files() {
    let src = testdata();
    assert!(
        std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_ok(),
        "openssl is not installed: apt-get install -y openssl (scripts/setup.sh does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(src.join("test-1.cvd.sign")).unwrap();
    let b64 = text.lines().nth(1).unwrap().splitn(4, ':').nth(3).unwrap();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let p7 = dir.path().join("t.p7");
    std::fs::write(&p7, der).unwrap();
    let openssl_ok = |ca: &str| {
        std::process::Command::new("openssl")
            .args([
                "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
            ])
            .arg("-in")
            .arg(&p7)
            .arg("-content")
            .arg(src.join("test-1.cvd"))
            .arg("-CAfile")
            .arg(src.join(ca))
            .args(["-out", "/dev/null"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(openssl_ok("clamav-test.crt"));
    assert!(!openssl_ok("clamav-root.crt"));
}
