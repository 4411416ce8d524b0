//! Which signatures count: the trust policy (trusted keys and a threshold) applied to the
//! signature members of a bundle, failing closed on anything doubtful.

use crate::open::FoundSignature;
use crate::sign::{KeyId, PublicKey, Signature};
use crate::toc::{countersignature_path, TableOfContents, FIRST_SIGNATURE_PATH};
use crate::SignatureError;
use sha2::{Digest, Sha256};

/// Trusted public keys and how many distinct ones must have signed.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    keys: Vec<PublicKey>,
    threshold: usize,
}

/// Outcome of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signers {
    /// Trusted keys whose signatures verified.
    pub trusted: Vec<KeyId>,
    /// Signatures by keys the policy does not know (ignored).
    pub unknown: Vec<KeyId>,
}

/// A policy that cannot be satisfied.
#[derive(Debug, thiserror::Error)]
#[error("threshold {threshold} cannot be met by {keys} distinct trusted key(s)")]
pub struct PolicyError {
    threshold: usize,
    keys: usize,
}

impl TrustPolicy {
    /// A policy trusting `keys` (duplicates removed) and requiring `threshold` of them.
    pub fn new(mut keys: Vec<PublicKey>, threshold: usize) -> Result<Self, PolicyError> {
        let mut unique: Vec<PublicKey> = Vec::with_capacity(keys.len());
        for key in keys.drain(..) {
            if !unique.iter().any(|k| k.id() == key.id()) {
                unique.push(key);
            }
        }
        let keys = unique;
        if threshold == 0 || threshold > keys.len() {
            return Err(PolicyError {
                threshold,
                keys: keys.len(),
            });
        }
        Ok(TrustPolicy { keys, threshold })
    }

    /// The trusted key ids.
    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(PublicKey::id).collect()
    }

    /// Checks `signatures` over `toc_bytes`. Any malformed signature, any failing
    /// signature by a trusted key, or any key signing twice is an error whatever the others
    /// say; signatures by unknown keys are ignored; then at least `threshold` distinct trusted
    /// keys must have signed.
    pub fn check(
        &self,
        toc_bytes: &[u8],
        signatures: &[FoundSignature],
    ) -> Result<Signers, SignatureError> {
        if signatures.is_empty() {
            return Err(SignatureError::Unsigned);
        }
        let actual = hex::encode(Sha256::digest(toc_bytes));
        let mut parsed = Vec::with_capacity(signatures.len());
        for found in signatures {
            let text = String::from_utf8_lossy(&found.bytes);
            let sig = Signature::parse(&text).map_err(|source| SignatureError::Malformed {
                member: found.path.clone(),
                source,
            })?;
            let expected_name = if parsed.is_empty() {
                FIRST_SIGNATURE_PATH.to_string()
            } else {
                countersignature_path(&sig.key_id().to_string())
            };
            if found.path != expected_name {
                return Err(SignatureError::Misnamed {
                    member: found.path.clone(),
                    expected: expected_name,
                });
            }
            if parsed
                .iter()
                .any(|(_, s): &(&str, Signature)| s.key_id() == sig.key_id())
            {
                return Err(SignatureError::DuplicateSigner {
                    member: found.path.clone(),
                    key_id: sig.key_id(),
                });
            }
            parsed.push((found.path.as_str(), sig));
        }
        let mut signers = Signers {
            trusted: Vec::new(),
            unknown: Vec::new(),
        };
        for (member, sig) in &parsed {
            let Some(key) = self.keys.iter().find(|k| k.id() == sig.key_id()) else {
                signers.unknown.push(sig.key_id());
                continue;
            };
            if let Err(source) = sig.verify(key, toc_bytes) {
                let signed = signed_sha256(sig.trusted_comment());
                return Err(match signed {
                    Some(signed) if signed != actual && sig.verify_trusted_comment(key).is_ok() => {
                        SignatureError::OtherBundle {
                            member: member.to_string(),
                            key_id: sig.key_id(),
                            signed: signed.to_string(),
                            actual,
                        }
                    }
                    _ => SignatureError::BadSignature {
                        member: member.to_string(),
                        key_id: sig.key_id(),
                        source,
                    },
                });
            }
            signers.trusted.push(sig.key_id());
        }
        if signers.trusted.len() >= self.threshold {
            Ok(signers)
        } else if signers.trusted.is_empty() {
            Err(SignatureError::UnknownKeys {
                found: signers.unknown,
                trusted: self.key_ids(),
            })
        } else {
            Err(SignatureError::BelowThreshold {
                threshold: self.threshold,
                signers: signers.trusted,
            })
        }
    }
}

/// The trusted comment signed with a bundle: minisign's `timestamp:` and `file:` fields, then
/// the bundle's name and version and the SHA-256 of `bundle.json`, so a signature copied from
/// another bundle is recognised as such.
pub fn trusted_comment(toc: &TableOfContents, toc_sha256: &str) -> String {
    let timestamp = oci::time::parse_rfc3339(&toc.created).unwrap_or(0);
    format!(
        "timestamp:{timestamp}\tfile:bundle.json\tbundle:{} {}\tsha256:{toc_sha256}",
        toc.name, toc.version
    )
}

/// The `bundle.json` SHA-256 a trusted comment claims, if it has one.
pub fn signed_sha256(comment: &str) -> Option<&str> {
    comment
        .split('\t')
        .find_map(|field| field.strip_prefix("sha256:"))
}
