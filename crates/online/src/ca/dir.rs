//! A CA directory: `ca.crt` and, unless the key was left out, `ca.key.age`. `ca init` writes
//! one, the build carries it under `ca/` in the bundle, and the installer reads it from either.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use time::format_description::well_known::Rfc3339;

use super::{ca_cert_der, CaError, Identity, Result, RootCa, CA_CRT_FILE};

/// File name of the age-encrypted CA private key.
pub const CA_KEY_FILE: &str = "ca.key.age";

/// Where a CA directory sits inside a bundle.
pub const BUNDLE_DIR: &str = "ca";

/// Largest `ca.crt` or `ca.key.age` accepted.
pub const MAX_FILE_LEN: u64 = 64 * 1024;

/// The checked contents of a CA directory: a CA certificate and, optionally, its key as an
/// age file. The key is not opened until [`CaFiles::open`].
#[derive(Debug, Clone)]
pub struct CaFiles {
    cert_pem: String,
    cert_der: Vec<u8>,
    encrypted_key: Option<Vec<u8>>,
}

/// What a CA certificate says about itself, for people comparing it across devices.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CertInfo {
    /// The subject, e.g. `CN=Example Root CA, O=Example`.
    pub subject: String,
    /// Expiry, RFC 3339.
    pub not_after: String,
    /// SHA-256 of the DER certificate, colon-separated upper-case hex (as phones show it).
    pub sha256: String,
}

impl CaFiles {
    /// Checks `cert_pem` (one CA certificate, nothing after it) and `encrypted_key` (an age file,
    /// no clear PEM key inside); `origin` names where they came from in errors.
    pub fn new(cert_pem: String, encrypted_key: Option<Vec<u8>>, origin: &str) -> Result<CaFiles> {
        let cert_der = ca_cert_der(&cert_pem).map_err(|e| CaError(format!("{origin}: {e}")))?;
        if !pem_rest(&cert_pem).trim().is_empty() {
            bail!("{origin}: {CA_CRT_FILE} holds more than one PEM block");
        }
        if let Some(key) = &encrypted_key {
            check_encrypted_key(key).map_err(|e| CaError(format!("{origin}: {e}")))?;
        }
        Ok(CaFiles {
            cert_pem,
            cert_der,
            encrypted_key,
        })
    }

    /// The certificate of `ca` with its key encrypted as `key` (`None`: left out).
    pub fn from_ca(ca: &RootCa, encrypted_key: Option<Vec<u8>>) -> Result<CaFiles> {
        Self::new(ca.cert_pem().to_string(), encrypted_key, "the new CA")
    }

    /// Reads and checks the CA directory `dir` (see [`bundle_files`]).
    pub fn read_dir(dir: &Path) -> Result<CaFiles> {
        let (cert, key) = list(dir)?;
        Self::read_listed(dir, &cert, key.as_deref())
    }

    fn read_listed(dir: &Path, cert: &Path, key: Option<&Path>) -> Result<CaFiles> {
        let cert_pem = oci::files::read_capped_to_string(cert, MAX_FILE_LEN)
            .map_err(|e| CaError(format!("reading {}: {e}", cert.display())))?;
        let encrypted_key = key
            .map(|key| {
                oci::files::read_capped(key, MAX_FILE_LEN)
                    .map_err(|e| CaError(format!("reading {}: {e}", key.display())))
            })
            .transpose()?;
        Self::new(cert_pem, encrypted_key, &dir.display().to_string())
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The age-encrypted key, if the directory has one.
    pub fn encrypted_key(&self) -> Option<&[u8]> {
        self.encrypted_key.as_deref()
    }

    /// Subject, expiry and fingerprint of the certificate.
    pub fn info(&self) -> Result<CertInfo> {
        let (_, x509) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|e| CaError(format!("parsing the CA certificate: {e}")))?;
        let not_after = x509
            .validity()
            .not_after
            .to_datetime()
            .format(&Rfc3339)
            .map_err(|e| CaError(format!("formatting the CA's expiry: {e}")))?;
        let sha256 = Sha256::digest(&self.cert_der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        Ok(CertInfo {
            subject: x509.subject().to_string(),
            not_after,
            sha256,
        })
    }

    /// Decrypts the key with `identity` and rebuilds the CA; fails when the key was left out.
    pub fn open(&self, identity: &Identity) -> Result<RootCa> {
        let Some(key) = &self.encrypted_key else {
            bail!("there is no CA key ({CA_KEY_FILE}): the CA was made with --no-key");
        };
        RootCa::decrypt(&self.cert_pem, key, identity)
    }

    /// Writes `dir/ca.crt` and `dir/ca.key.age` (or removes a stale key when there is none),
    /// each atomically; refuses what [`check_target`] refuses. Returns the files written.
    pub fn write_dir(&self, dir: &Path, force: bool) -> Result<Vec<PathBuf>> {
        check_target(dir, force)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| CaError(format!("creating {}: {e}", dir.display())))?;
        let cert = dir.join(CA_CRT_FILE);
        let key = dir.join(CA_KEY_FILE);
        let mut written = Vec::new();
        match &self.encrypted_key {
            Some(bytes) => {
                write_atomic(&key, bytes, 0o600)?;
                written.push(key);
            }
            None => match std::fs::remove_file(&key) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    bail!("removing the old {}: {e}", key.display())
                }
                _ => {}
            },
        }
        write_atomic(&cert, self.cert_pem.as_bytes(), 0o644)?;
        written.insert(0, cert);
        Ok(written)
    }
}

/// Refuses a `dir` that holds a CA unless `force`, and one that holds anything but a CA's files
/// (the build carries the whole directory). A missing `dir` is fine.
pub fn check_target(dir: &Path, force: bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        other => other.map_err(|e| CaError(format!("reading {}: {e}", dir.display())))?,
    };
    for entry in entries {
        let entry = entry.map_err(|e| CaError(format!("reading {}: {e}", dir.display())))?;
        let name = entry.file_name();
        if name != CA_CRT_FILE && name != CA_KEY_FILE {
            bail!(
                "{} holds {:?}: a CA directory holds only {CA_CRT_FILE} and {CA_KEY_FILE}",
                dir.display(),
                name
            );
        }
        if !force {
            bail!(
                "{} exists: refusing to replace a CA (use --force)",
                entry.path().display()
            );
        }
    }
    Ok(())
}

/// The files the build carries for the CA directory `dir`: `("ca/ca.crt", dir/ca.crt)` and, if
/// present, `("ca/ca.key.age", dir/ca.key.age)`. Refuses a certificate that is not a CA, a key
/// file that is not age-encrypted (or holds a clear PEM key), and anything else in `dir`.
pub fn bundle_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let (cert, key) = list(dir)?;
    CaFiles::read_listed(dir, &cert, key.as_deref())?;
    let mut files = vec![(format!("{BUNDLE_DIR}/{CA_CRT_FILE}"), cert)];
    if let Some(key) = key {
        files.push((format!("{BUNDLE_DIR}/{CA_KEY_FILE}"), key));
    }
    Ok(files)
}

/// Refuses bytes that are not a binary age file, or that hold a clear PEM private key.
pub fn check_encrypted_key(bytes: &[u8]) -> Result<()> {
    if bytes.windows(16).any(|w| w == b"PRIVATE KEY-----") {
        bail!("{CA_KEY_FILE} holds a clear PEM private key: it must be age-encrypted");
    }
    age::Decryptor::new_buffered(bytes)
        .map_err(|e| CaError(format!("{CA_KEY_FILE} is not a binary age file: {e}")))?;
    Ok(())
}

/// Writes `bytes` to `path` through a synced temporary file beside it renamed into place, with
/// permission `mode`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |e: std::io::Error| CaError(format!("writing {}: {e}", path.display()));
    let mut temp = tempfile::Builder::new()
        .prefix(".ca-partial-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(fail)?;
    temp.write_all(bytes).map_err(fail)?;
    temp.as_file().sync_all().map_err(fail)?;
    temp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// `dir/ca.crt` and `dir/ca.key.age` if present, refusing anything else and files that are not
/// regular or too large.
fn list(dir: &Path) -> Result<(PathBuf, Option<PathBuf>)> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CaError(format!("reading CA directory {}: {e}", dir.display())))?;
    let (mut cert, mut key) = (None, None);
    for entry in entries {
        let entry = entry.map_err(|e| CaError(format!("reading {}: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        let slot = if name == CA_CRT_FILE {
            &mut cert
        } else if name == CA_KEY_FILE {
            &mut key
        } else {
            bail!(
                "{} is not part of a CA directory (only {CA_CRT_FILE} and {CA_KEY_FILE} are)",
                path.display()
            );
        };
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| CaError(format!("reading {}: {e}", path.display())))?;
        if !meta.is_file() {
            bail!("{} is not a regular file", path.display());
        }
        if meta.len() > MAX_FILE_LEN {
            bail!(
                "{} is {} bytes, more than a CA file's {MAX_FILE_LEN}",
                path.display(),
                meta.len()
            );
        }
        *slot = Some(path);
    }
    let Some(cert) = cert else {
        bail!("{} has no {CA_CRT_FILE}", dir.display());
    };
    Ok((cert, key))
}

/// What follows the first PEM block of `text`.
fn pem_rest(text: &str) -> &str {
    const END: &str = "-----END CERTIFICATE-----";
    text.find(END).map_or("", |i| &text[i + END.len()..])
}
