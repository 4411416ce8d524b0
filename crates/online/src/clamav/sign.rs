//! `.sign` files (ClamAV 1.4+): `#clamsign-1.0` followed by lines
//! `<min flevel>:<max flevel>:pkcs7-pem:<base64 DER>`, each a PKCS#7/CMS detached signature
//! over the whole database file, verified against trusted X.509 certificates.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetStringRef};
use der::{Decode, DecodePem, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

use super::ClamavError;

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_SHA384_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const OID_SHA512_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// Longest certificate chain followed from the signer to a trusted certificate.
const MAX_CHAIN: usize = 8;

/// Loads trusted certificates (PEM, possibly several per file, or DER) from `dir`.
pub(crate) fn load_trusted(dir: &Path) -> std::io::Result<Vec<Certificate>> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("crt" | "pem" | "cer" | "der")
            )
        })
        .collect();
    paths.sort();
    for p in paths {
        let data = oci::files::read_capped(&p, oci::files::INPUT_FILE_LIMIT)?;
        if let Ok(text) = std::str::from_utf8(&data) {
            if text.contains("-----BEGIN CERTIFICATE-----") {
                for block in text.split_inclusive("-----END CERTIFICATE-----") {
                    if let Some(start) = block.find("-----BEGIN CERTIFICATE-----") {
                        if let Ok(c) = Certificate::from_pem(&block[start..]) {
                            out.push(c);
                        }
                    }
                }
                continue;
            }
        }
        if let Ok(c) = Certificate::from_der(&data) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Verifies `sign_path` over the database file `file`, given its SHA-256. Every signature line must
/// verify.
pub(crate) fn verify_sign_file(
    file: &Path,
    content_sha256: &[u8; 32],
    sign_path: &Path,
    cert_dir: Option<&Path>,
    at: SystemTime,
) -> Result<(), ClamavError> {
    let malformed = |reason: String| ClamavError::SignMalformed {
        file: file.to_path_buf(),
        reason,
    };
    let no_certs = || ClamavError::SignNoCertificates {
        file: file.to_path_buf(),
        cert_dir: cert_dir.map(Path::to_path_buf),
    };
    let text = oci::files::read_capped_to_string(sign_path, oci::files::INPUT_FILE_LIMIT).map_err(
        |source| ClamavError::Io {
            file: sign_path.to_path_buf(),
            source,
        },
    )?;
    let trusted = match cert_dir {
        Some(dir) => load_trusted(dir).map_err(|source| ClamavError::Io {
            file: dir.to_path_buf(),
            source,
        })?,
        None => Vec::new(),
    };
    if trusted.is_empty() {
        return Err(no_certs());
    }
    let mut lines = text.lines();
    if lines.next().map(str::trim) != Some("#clamsign-1.0") {
        return Err(malformed("missing #clamsign-1.0 first line".into()));
    }
    let mut count = 0;
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(4, ':').collect();
        let [_min, _max, kind, b64] = parts[..] else {
            return Err(malformed("expected min:max:kind:data".into()));
        };
        if kind != "pkcs7-pem" {
            return Err(malformed(format!("unsupported signature kind {kind:?}")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| malformed(format!("base64: {e}")))?;
        verify_pkcs7(file, content_sha256, &der, &trusted, at)?;
        count += 1;
    }
    if count == 0 {
        return Err(malformed("no signature lines".into()));
    }
    Ok(())
}

fn rsa_key(cert: &Certificate) -> Result<RsaPublicKey, String> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid != OID_RSA {
        return Err(format!("unsupported key algorithm {}", spki.algorithm.oid));
    }
    let der = spki.to_der().map_err(|e| e.to_string())?;
    RsaPublicKey::from_public_key_der(&der).map_err(|e| e.to_string())
}

/// Checks that `issuer`'s key signed `cert`.
fn cert_signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), String> {
    let key = rsa_key(issuer)?;
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let sig = cert.signature.raw_bytes();
    let oid = cert.signature_algorithm.oid;
    let res = if oid == OID_SHA256_RSA {
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs), sig)
    } else if oid == OID_SHA384_RSA {
        key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(&tbs), sig)
    } else if oid == OID_SHA512_RSA {
        key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(&tbs), sig)
    } else {
        return Err(format!("unsupported certificate signature algorithm {oid}"));
    };
    res.map_err(|e| format!("certificate signature: {e}"))
}

/// Why a chain was rejected: a certificate outside its validity period is reported apart.
enum ChainError {
    Untrusted(String),
    Expired(String),
}

fn check_validity(cert: &Certificate, at: SystemTime) -> Result<(), ChainError> {
    let v = &cert.tbs_certificate.validity;
    let at = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    if at < v.not_before.to_unix_duration() || at > v.not_after.to_unix_duration() {
        return Err(ChainError::Expired(format!(
            "{} is valid from {} to {}",
            cert.tbs_certificate.subject, v.not_before, v.not_after
        )));
    }
    Ok(())
}

/// Whether `cert` may issue certificates (basicConstraints cA).
fn is_ca(cert: &Certificate) -> bool {
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_BASIC_CONSTRAINTS)
        .and_then(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|bc| bc.ca)
}

fn same_cert(a: &Certificate, b: &Certificate) -> bool {
    a.to_der().ok() == b.to_der().ok()
}

/// Walks from `leaf` through `pool` to one of `trusted`, checking each signature, that each
/// certificate is valid at `at`, and that every embedded issuer is a CA.
fn chain_to_trusted(
    leaf: &Certificate,
    pool: &[Certificate],
    trusted: &[Certificate],
    at: SystemTime,
) -> Result<(), ChainError> {
    let mut cur = leaf.clone();
    for _ in 0..MAX_CHAIN {
        check_validity(&cur, at)?;
        if trusted.iter().any(|t| same_cert(t, &cur)) {
            return Ok(());
        }
        let issuer_name = &cur.tbs_certificate.issuer;
        if let Some(t) = trusted
            .iter()
            .find(|t| &t.tbs_certificate.subject == issuer_name && cert_signed_by(&cur, t).is_ok())
        {
            return check_validity(t, at);
        }
        let Some(next) = pool.iter().find(|c| {
            &c.tbs_certificate.subject == issuer_name
                && !same_cert(c, &cur)
                && is_ca(c)
                && cert_signed_by(&cur, c).is_ok()
        }) else {
            return Err(ChainError::Untrusted(format!(
                "no trusted or embedded CA issuer for {}",
                cur.tbs_certificate.subject
            )));
        };
        cur = next.clone();
    }
    Err(ChainError::Untrusted("certificate chain too long".into()))
}

fn verify_pkcs7(
    file: &Path,
    content_sha256: &[u8; 32],
    der: &[u8],
    trusted: &[Certificate],
    at: SystemTime,
) -> Result<(), ClamavError> {
    let malformed = |reason: String| ClamavError::SignMalformed {
        file: file.to_path_buf(),
        reason,
    };
    let bad = |reason: String| ClamavError::SignBadSignature {
        file: file.to_path_buf(),
        reason,
    };
    let ci = ContentInfo::from_der(der).map_err(|e| malformed(format!("PKCS#7: {e}")))?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(malformed(format!("content type {}", ci.content_type)));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| malformed(format!("SignedData: {e}")))?;
    let pool: Vec<Certificate> = sd
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    CertificateChoices::Certificate(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signers = sd.signer_infos.0.as_slice();
    if signers.is_empty() {
        return Err(malformed("no signers".into()));
    }
    for si in signers {
        if si.digest_alg.oid != OID_SHA256 {
            return Err(malformed(format!("digest algorithm {}", si.digest_alg.oid)));
        }
        let SignerIdentifier::IssuerAndSerialNumber(ias) = &si.sid else {
            return Err(malformed("signer identified by key id".into()));
        };
        let signer = pool
            .iter()
            .chain(trusted)
            .find(|c| {
                c.tbs_certificate.issuer == ias.issuer
                    && c.tbs_certificate.serial_number == ias.serial_number
            })
            .ok_or_else(|| malformed("signer certificate not found".into()))?;
        let content_digest = sha2::digest::Output::<Sha256>::from(*content_sha256);
        let signed_digest = match &si.signed_attrs {
            Some(attrs) => {
                let md = attrs
                    .iter()
                    .find(|a| a.oid == OID_MESSAGE_DIGEST)
                    .and_then(|a| a.values.iter().next())
                    .ok_or_else(|| malformed("no messageDigest attribute".into()))?;
                let md: OctetStringRef = md
                    .decode_as()
                    .map_err(|e| malformed(format!("messageDigest: {e}")))?;
                if md.as_bytes() != content_digest.as_slice() {
                    return Err(bad("messageDigest does not match the database".into()));
                }
                // The signature covers the DER of the attributes as a SET OF.
                let enc = attrs
                    .to_der()
                    .map_err(|e| malformed(format!("signedAttrs: {e}")))?;
                Sha256::digest(&enc)
            }
            None => content_digest,
        };
        let alg = si.signature_algorithm.oid;
        if alg != OID_RSA && alg != OID_SHA256_RSA {
            return Err(malformed(format!("signature algorithm {alg}")));
        }
        let key = rsa_key(signer).map_err(malformed)?;
        key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &signed_digest,
            si.signature.as_bytes(),
        )
        .map_err(|e| bad(format!("signer signature: {e}")))?;
        chain_to_trusted(signer, &pool, trusted, at).map_err(|e| match e {
            ChainError::Untrusted(reason) => ClamavError::SignUntrusted {
                file: file.to_path_buf(),
                reason,
            },
            ChainError::Expired(reason) => ClamavError::SignCertificateTime {
                file: file.to_path_buf(),
                reason,
            },
        })?;
    }
    Ok(())
}
