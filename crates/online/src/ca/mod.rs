//! The internal root CA of a site.
//!
//! [`RootCa`] makes (or imports) the self-signed ECDSA P-256 root that signs the site's TLS
//! certificates through cert-manager. The CA's private key only ever leaves this module
//! encrypted with [age](https://age-encryption.org/) ([`RootCa::encrypted_key`]), either to a
//! passphrase (age's scrypt recipient) or to an age X25519 recipient (`age1...`); the file is
//! decrypted by [`RootCa::decrypt`] or by the stock `age -d` tool.
//!
//! [`RootCa::cert_pem`] is the plain PEM certificate (`ca.crt`) for phones and browsers; the
//! installer turns the CA into cert-manager objects and node configuration
//! (`installer::ca`).
//!
//! On disk and in the bundle, a CA is a directory ([`CaFiles`]): `ca.crt` and, unless left
//! out, `ca.key.age`; [`bundle_files`] checks one for the build, which carries it under `ca/`.
//!
//! ```
//! use online::ca::{Identity, KeyProtection, RootCa};
//!
//! let ca = RootCa::generate("Example Site Root CA", "Example Org", 3650)?;
//! let protection = KeyProtection::Passphrase("correct horse".into());
//! let encrypted = ca.encrypted_key(&protection)?;
//! let again = RootCa::decrypt(ca.cert_pem(), &encrypted, &Identity::Passphrase("correct horse".into()))?;
//! assert_eq!(again.cert_pem(), ca.cert_pem());
//! # Ok::<(), online::ca::CaError>(())
//! ```

/// What is wrong, in one sentence naming the thing at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CaError(String);

/// Results of this module.
pub type Result<T> = std::result::Result<T, CaError>;

/// Returns early with a [`CaError`] built like `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(CaError(format!($($arg)*)))
    };
}

mod dir;

pub use dir::{
    bundle_files, check_encrypted_key, check_target, write_atomic, CaFiles, CertInfo, BUNDLE_DIR,
    CA_KEY_FILE, MAX_FILE_LEN,
};

use std::io::{Read, Write};

use age::secrecy::SecretString;
use rand_core::{OsRng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// File name of the plain CA certificate handed to phones, browsers and nodes.
pub const CA_CRT_FILE: &str = "ca.crt";

/// How long a leaf from [`RootCa::issue_leaf`] is valid at most (capped by the CA's own expiry).
pub const LEAF_VALIDITY_DAYS: i64 = 90;

/// How the CA's private key is protected when it leaves this module.
#[derive(Clone)]
pub enum KeyProtection {
    /// age's scrypt recipient: a human passphrase.
    Passphrase(String),
    /// An age X25519 public key, `age1...`.
    Recipient(String),
}

impl std::fmt::Debug for KeyProtection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProtection::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            KeyProtection::Recipient(r) => f.debug_tuple("Recipient").field(r).finish(),
        }
    }
}

/// What opens a key encrypted by [`RootCa::encrypted_key`].
#[derive(Clone)]
pub enum Identity {
    /// The passphrase of [`KeyProtection::Passphrase`].
    Passphrase(String),
    /// An age X25519 secret key, `AGE-SECRET-KEY-1...`, for [`KeyProtection::Recipient`].
    X25519(String),
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Identity::X25519(_) => f.write_str("X25519(<redacted>)"),
        }
    }
}

/// A site's root CA: its certificate and private key.
pub struct RootCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    key: KeyPair,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // A positive, non-zero serial of at most 20 octets once DER-encoded.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

impl RootCa {
    /// Makes a new self-signed root: ECDSA P-256, `CA:TRUE, pathlen:0` (critical), key usage
    /// keyCertSign + cRLSign (critical), a subject key identifier, valid from now for
    /// `validity_days` days.
    pub fn generate(common_name: &str, organisation: &str, validity_days: u32) -> Result<RootCa> {
        if common_name.trim().is_empty() {
            bail!("the CA's common name is empty");
        }
        if validity_days == 0 {
            bail!("the CA's validity must be at least one day");
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError(format!("{}: {e}", "generating the CA key")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        if !organisation.is_empty() {
            dn.push(DnType::OrganizationName, organisation);
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now;
        params.not_after = now + Duration::days(i64::from(validity_days));
        let cert = params
            .self_signed(&key)
            .map_err(|e| CaError(format!("{}: {e}", "signing the CA certificate")))?;
        Ok(RootCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
        })
    }

    /// Imports an existing CA from its PEM certificate and PEM (PKCS#8) private key. Refuses a
    /// certificate that is not a CA (basic constraints `CA:TRUE`, and keyCertSign if it has a
    /// key usage extension) and a key that is not the certificate's.
    pub fn import(cert_pem: &str, key_pem: &str) -> Result<RootCa> {
        let key =
            KeyPair::from_pem(key_pem).map_err(|e| CaError(format!("reading the CA key: {e}")))?;
        Self::from_parts(cert_pem, key)
    }

    fn from_parts(cert_pem: &str, key: KeyPair) -> Result<RootCa> {
        let cert_der = ca_cert_der(cert_pem)?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| CaError(format!("parsing the CA certificate: {e}")))?;
        if x509.tbs_certificate.subject_pki.raw != key.subject_public_key_info().as_slice() {
            bail!("the private key does not match the CA certificate");
        }
        Ok(RootCa {
            cert_pem: pem::encode_cert(&cert_der),
            cert_der,
            key,
        })
    }

    /// The CA certificate as PEM: also the `ca.crt` for phones, browsers and nodes.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate as DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA's private key in clear (PKCS#8 PEM), for the cert-manager Secret (`installer::ca::tls_secret`).
    pub fn key_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.key.serialize_pem())
    }

    /// The CA's private key (PKCS#8 PEM) encrypted with age, to a passphrase or a recipient.
    /// The output is a binary age file (`age -d` opens it).
    pub fn encrypted_key(&self, protection: &KeyProtection) -> Result<Vec<u8>> {
        let plain = Zeroizing::new(self.key.serialize_pem());
        seal(plain.as_bytes(), protection)
    }

    /// Rebuilds the CA from its PEM certificate and an age file from [`RootCa::encrypted_key`].
    pub fn decrypt(cert_pem: &str, encrypted_key: &[u8], identity: &Identity) -> Result<RootCa> {
        let plain = unseal(encrypted_key, identity)
            .map_err(|e| CaError(format!("decrypting the CA key: {e}")))?;
        let plain = std::str::from_utf8(&plain)
            .map_err(|_| CaError("the CA key is not UTF-8 PEM".into()))?;
        let key =
            KeyPair::from_pem(plain).map_err(|e| CaError(format!("reading the CA key: {e}")))?;
        Self::from_parts(cert_pem, key)
    }

    /// Issues a TLS server certificate for `dns_names` (the first one is also the subject CN),
    /// signed by this CA, with a fresh P-256 key: `(cert_pem, key_pem)`. For tests and smoke
    /// checks; cert-manager issues the site's real certificates.
    pub fn issue_leaf(&self, dns_names: &[&str]) -> Result<(String, String)> {
        let Some(first) = dns_names.first() else {
            bail!("a leaf certificate needs at least one DNS name");
        };
        let issuer = Issuer::from_ca_cert_der(&self.cert_der.as_slice().into(), &self.key)
            .map_err(|e| CaError(format!("reading the CA certificate: {e}")))?;
        let mut params =
            CertificateParams::new(dns_names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .map_err(|e| CaError(format!("invalid DNS name: {e}")))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, *first);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        let (_, ca) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|e| CaError(format!("parsing the CA certificate: {e}")))?;
        let ca_not_after = ca.validity().not_after.to_datetime();
        params.not_before = now;
        params.not_after = (now + Duration::days(LEAF_VALIDITY_DAYS)).min(ca_not_after);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError(format!("{}: {e}", "generating a leaf key")))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| CaError(format!("signing the leaf: {e}")))?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// The DER of the first certificate in `cert_pem`, refusing one that is not a CA (basic
/// constraints `CA:TRUE`, and keyCertSign if it has a key usage extension).
fn ca_cert_der(cert_pem: &str) -> Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| CaError(format!("reading the CA certificate PEM: {e}")))?;
    if pem.label != "CERTIFICATE" {
        bail!(
            "the CA certificate PEM is a {:?}, not a CERTIFICATE",
            pem.label
        );
    }
    let (rest, x509) = x509_parser::parse_x509_certificate(&pem.contents)
        .map_err(|e| CaError(format!("parsing the CA certificate: {e}")))?;
    if !rest.is_empty() {
        bail!("trailing bytes after the CA certificate");
    }
    let bc = x509
        .basic_constraints()
        .map_err(|e| CaError(format!("reading basic constraints: {e}")))?;
    match bc {
        Some(bc) if bc.value.ca => {}
        _ => bail!("the certificate is not a CA (no basic constraints CA:TRUE)"),
    }
    if let Some(ku) = x509
        .key_usage()
        .map_err(|e| CaError(format!("reading key usage: {e}")))?
    {
        if !ku.value.key_cert_sign() {
            bail!("the CA certificate's key usage does not allow keyCertSign");
        }
    }
    Ok(pem.contents)
}

mod pem {
    use base64::Engine as _;

    /// PEM-encodes a DER certificate (64-column base64, LF line ends).
    pub fn encode_cert(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

/// `plain` encrypted with age to a passphrase or an X25519 recipient: a binary age file
/// (`age -d` opens it).
pub fn seal(plain: &[u8], protection: &KeyProtection) -> Result<Vec<u8>> {
    let encryptor = match protection {
        KeyProtection::Passphrase(p) => {
            if p.is_empty() {
                bail!("empty passphrase");
            }
            age::Encryptor::with_user_passphrase(SecretString::from(p.clone()))
        }
        KeyProtection::Recipient(r) => {
            let recipient: age::x25519::Recipient = r
                .trim()
                .parse()
                .map_err(|e| CaError(format!("not an age X25519 recipient (age1...): {e}")))?;
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(|e| CaError(format!("age: {e}")))?
        }
    };
    let mut out = Vec::new();
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| CaError(format!("age: starting the encrypted stream: {e}")))?;
    writer
        .write_all(plain)
        .map_err(|e| CaError(format!("age: writing the encrypted stream: {e}")))?;
    writer
        .finish()
        .map_err(|e| CaError(format!("age: finishing the encrypted stream: {e}")))?;
    Ok(out)
}

/// The plain bytes of an age file from [`seal`], opened with `identity`.
pub fn unseal(sealed: &[u8], identity: &Identity) -> Result<Zeroizing<Vec<u8>>> {
    let decryptor =
        age::Decryptor::new_buffered(sealed).map_err(|e| CaError(format!("age: {e}")))?;
    let mut reader = match identity {
        Identity::Passphrase(p) => {
            let id = age::scrypt::Identity::new(SecretString::from(p.clone()));
            decryptor.decrypt(std::iter::once(&id as &dyn age::Identity))
        }
        Identity::X25519(s) => {
            let id: age::x25519::Identity = s
                .trim()
                .parse()
                .map_err(|e| CaError(format!("not an age X25519 identity: {e}")))?;
            decryptor.decrypt(std::iter::once(&id as &dyn age::Identity))
        }
    }
    .map_err(|e| CaError(format!("age: {e}")))?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|e| CaError(format!("age: {e}")))?;
    Ok(plain)
}
