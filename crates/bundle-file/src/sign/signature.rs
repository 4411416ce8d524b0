//! Minisign signatures (`FILE.minisig`) and their verification.
//!
//! The file has four lines:
//!
//! ```text
//! untrusted comment: <anything, not authenticated>
//! base64( "ED" || key id (8) || Ed25519 signature of BLAKE2b-512(file) (64) )
//! trusted comment: <text covered by the global signature>
//! base64( Ed25519 signature of (the 64 signature bytes || trusted comment) )
//! ```
//!
//! The algorithm tag `ED` marks the prehashed algorithm that minisign has
//! used by default since 0.8; the legacy tag `Ed` (signature over the raw
//! file, `minisign -l`) is parsed and reported by
//! [`Signature::algorithm`], but [`Signature::verify`] refuses it with
//! [`SignError::LegacySignature`].

use std::fmt;
use std::path::Path;

use ed25519_dalek::Signature as Ed25519Signature;

use super::digest::MessageDigest;
use super::error::{CommentKind, FileKind, SignError};
use super::key_id::KeyId;
use super::public_key::{PublicKey, ALG_ED25519};
use super::text;

const KIND: FileKind = FileKind::Signature;
/// Algorithm tag of prehashed signatures.
const ALG_PREHASHED: [u8; 2] = *b"ED";

/// How the data signature of a [`Signature`] was computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// `ED`: Ed25519 over BLAKE2b-512 of the data (the only one verified).
    Prehashed,
    /// `Ed`: Ed25519 over the raw data (minisign's legacy format).
    Legacy,
}

impl SignatureAlgorithm {
    fn tag(self) -> [u8; 2] {
        match self {
            SignatureAlgorithm::Prehashed => ALG_PREHASHED,
            SignatureAlgorithm::Legacy => ALG_ED25519,
        }
    }
}

/// A parsed minisign signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    untrusted_comment: String,
    algorithm: SignatureAlgorithm,
    key_id: KeyId,
    signature: [u8; 64],
    trusted_comment: String,
    global_signature: [u8; 64],
}

impl Signature {
    pub(crate) fn from_parts(
        untrusted_comment: String,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        signature: [u8; 64],
        trusted_comment: String,
        global_signature: [u8; 64],
    ) -> Self {
        Self {
            untrusted_comment,
            algorithm,
            key_id,
            signature,
            trusted_comment,
            global_signature,
        }
    }

    /// Parses the text of a `.minisig` file.
    ///
    /// Lines are read as the minisign tool reads them (CRLF accepted,
    /// trailing empty lines ignored). A missing line, a line without its
    /// comment prefix, bad base64, a wrong length, an unknown algorithm or
    /// extra lines each give their own [`SignError`].
    pub fn parse(text: &str) -> Result<Self, SignError> {
        let lines = text::lines(text);
        let line1 = text::required_line(&lines, 1, KIND, "untrusted comment")?;
        let untrusted = text::strip_prefix(line1, text::UNTRUSTED_PREFIX, 1, KIND)?;
        let line2 = text::required_line(&lines, 2, KIND, "signature")?;
        let line3 = text::required_line(&lines, 3, KIND, "trusted comment")?;
        let trusted = text::strip_prefix(line3, text::TRUSTED_PREFIX, 3, KIND)?;
        let line4 = text::required_line(&lines, 4, KIND, "global signature")?;
        text::no_trailing_lines(&lines, 4, KIND)?;

        let sig: [u8; 74] = text::decode_exact(line2, 2, KIND, "signature")?;
        let algorithm = match [sig[0], sig[1]] {
            ALG_PREHASHED => SignatureAlgorithm::Prehashed,
            ALG_ED25519 => SignatureAlgorithm::Legacy,
            found => {
                return Err(SignError::UnsupportedSignatureAlgorithm { kind: KIND, found });
            }
        };
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&sig[2..10]);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&sig[10..]);
        let global_signature: [u8; 64] = text::decode_exact(line4, 4, KIND, "global signature")?;
        Ok(Self::from_parts(
            untrusted.to_string(),
            algorithm,
            KeyId(key_id),
            signature,
            trusted.to_string(),
            global_signature,
        ))
    }

    /// Reads and parses a `.minisig` file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, SignError> {
        let text = text::read_small_file(path, KIND)?;
        Self::parse(&text).map_err(|e| e.in_file(path))
    }

    /// The `.minisig` file exactly as the minisign tool writes it: four
    /// lines, each ending in `\n`.
    pub fn to_file_string(&self) -> String {
        let mut sig = [0u8; 74];
        sig[..2].copy_from_slice(&self.algorithm.tag());
        sig[2..10].copy_from_slice(&self.key_id.0);
        sig[10..].copy_from_slice(&self.signature);
        format!(
            "{}{}\n{}\n{}{}\n{}\n",
            text::UNTRUSTED_PREFIX,
            self.untrusted_comment,
            text::encode(&sig),
            text::TRUSTED_PREFIX,
            self.trusted_comment,
            text::encode(&self.global_signature),
        )
    }

    /// Id of the key that made the signature.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The trusted comment (without its `trusted comment: ` prefix). It is
    /// authentic only once [`Self::verify`] has succeeded.
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// The untrusted comment (without its prefix); never authenticated.
    pub fn untrusted_comment(&self) -> &str {
        &self.untrusted_comment
    }

    /// Whether the signature is prehashed (`ED`) or legacy (`Ed`).
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Whether this is a legacy (`Ed`, non-prehashed) signature.
    pub fn is_legacy(&self) -> bool {
        self.algorithm == SignatureAlgorithm::Legacy
    }

    /// Verifies the signature of `message` and of the trusted comment.
    ///
    /// Fails with [`SignError::LegacySignature`] for legacy signatures,
    /// [`SignError::KeyMismatch`] when the signature names another key,
    /// [`SignError::BadSignature`] when the message does not match and
    /// [`SignError::BadTrustedComment`] when the trusted comment was altered.
    pub fn verify(&self, key: &PublicKey, message: &[u8]) -> Result<(), SignError> {
        self.refuse_legacy()?;
        self.verify_digest(key, &MessageDigest::of(message))
    }

    /// [`Self::verify`] for a message already hashed with [`MessageDigest`].
    pub fn verify_digest(&self, key: &PublicKey, digest: &MessageDigest) -> Result<(), SignError> {
        self.refuse_legacy()?;
        self.check_key_id(key)?;
        key.verifying_key()
            .verify_strict(
                digest.as_bytes(),
                &Ed25519Signature::from_bytes(&self.signature),
            )
            .map_err(|_| SignError::BadSignature)?;
        self.verify_global(key)
    }

    /// Verifies only the global signature: that `key` made this signature
    /// with this trusted comment, whatever data it covers. Useful to trust
    /// the trusted comment of a signature whose data does not match (for
    /// instance to report which file it was made for).
    ///
    /// Fails with [`SignError::LegacySignature`],
    /// [`SignError::KeyMismatch`] or [`SignError::BadTrustedComment`].
    pub fn verify_trusted_comment(&self, key: &PublicKey) -> Result<(), SignError> {
        self.refuse_legacy()?;
        self.check_key_id(key)?;
        self.verify_global(key)
    }

    fn check_key_id(&self, key: &PublicKey) -> Result<(), SignError> {
        if self.key_id != key.id() {
            return Err(SignError::KeyMismatch {
                signature: self.key_id,
                key: key.id(),
            });
        }
        Ok(())
    }

    fn verify_global(&self, key: &PublicKey) -> Result<(), SignError> {
        let mut global_input = Vec::with_capacity(64 + self.trusted_comment.len());
        global_input.extend_from_slice(&self.signature);
        global_input.extend_from_slice(self.trusted_comment.as_bytes());
        key.verifying_key()
            .verify_strict(
                &global_input,
                &Ed25519Signature::from_bytes(&self.global_signature),
            )
            .map_err(|_| SignError::BadTrustedComment)
    }

    fn refuse_legacy(&self) -> Result<(), SignError> {
        match self.algorithm {
            SignatureAlgorithm::Prehashed => Ok(()),
            SignatureAlgorithm::Legacy => Err(SignError::LegacySignature),
        }
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("untrusted_comment", &self.untrusted_comment)
            .field("trusted_comment", &self.trusted_comment)
            .finish_non_exhaustive()
    }
}

/// Checks that both comments can be signed unchanged: one line each, no NUL,
/// at most 1003 bytes (untrusted) and 8173 bytes (trusted), the limits of
/// the minisign tool. [`super::SecretKey::sign`] would otherwise rewrite them.
pub fn check_comments(untrusted_comment: &str, trusted_comment: &str) -> Result<(), SignError> {
    text::check_comment(untrusted_comment, CommentKind::Untrusted)?;
    text::check_comment(trusted_comment, CommentKind::Trusted)
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors as tv;
    use super::super::SecretKey;
    use super::*;

    fn kat_key() -> PublicKey {
        PublicKey::parse(tv::KAT_PUB).unwrap()
    }

    #[test]
    fn verifies_a_signature_made_by_minisign() {
        let sig = Signature::parse(tv::KAT_PREHASHED_MINISIG).unwrap();
        assert_eq!(sig.algorithm(), SignatureAlgorithm::Prehashed);
        assert_eq!(sig.key_id().to_string(), "166423B25F8E0D9C");
        assert_eq!(sig.untrusted_comment(), "signature from the minisign tool");
        assert_eq!(
            sig.trusted_comment(),
            "timestamp:1700000000\tfile:msg.txt\thashed"
        );
        sig.verify(&kat_key(), tv::MESSAGE).unwrap();
        assert_eq!(sig.to_file_string(), tv::KAT_PREHASHED_MINISIG);
    }

    #[test]
    fn minisign_signature_fails_on_other_data() {
        let sig = Signature::parse(tv::KAT_PREHASHED_MINISIG).unwrap();
        let mut tampered = tv::MESSAGE.to_vec();
        tampered[0] ^= 1;
        assert!(matches!(
            sig.verify(&kat_key(), &tampered),
            Err(SignError::BadSignature)
        ));
    }

    #[test]
    fn legacy_signatures_parse_but_do_not_verify() {
        let sig = Signature::parse(tv::KAT_LEGACY_MINISIG).unwrap();
        assert!(sig.is_legacy());
        assert_eq!(sig.algorithm(), SignatureAlgorithm::Legacy);
        assert_eq!(sig.to_file_string(), tv::KAT_LEGACY_MINISIG);
        assert!(matches!(
            sig.verify(&kat_key(), tv::MESSAGE),
            Err(SignError::LegacySignature)
        ));
        assert!(matches!(
            sig.verify_digest(&kat_key(), &MessageDigest::of(tv::MESSAGE)),
            Err(SignError::LegacySignature)
        ));
        // It is nonetheless a genuine Ed25519 signature of the raw message.
        let raw = Ed25519Signature::from_bytes(&sig.signature);
        kat_key()
            .verifying_key()
            .verify_strict(tv::MESSAGE, &raw)
            .unwrap();
    }

    #[test]
    fn round_trip_and_verify() {
        let sk = SecretKey::generate();
        let sig = sk.sign(b"payload", "from tests", "timestamp:1\tfile:x");
        let text = sig.to_file_string();
        let back = Signature::parse(&text).unwrap();
        assert_eq!(back, sig);
        assert_eq!(back.to_file_string(), text);
        assert_eq!(back.key_id(), sk.id());
        assert_eq!(back.trusted_comment(), "timestamp:1\tfile:x");
        back.verify(&sk.public_key(), b"payload").unwrap();
        back.verify_digest(&sk.public_key(), &MessageDigest::of(b"payload"))
            .unwrap();
        let crlf = text.replace('\n', "\r\n");
        Signature::parse(&crlf)
            .unwrap()
            .verify(&sk.public_key(), b"payload")
            .unwrap();
    }

    #[test]
    fn tampered_message_is_a_bad_signature() {
        let sk = SecretKey::generate();
        let sig = sk.sign(b"payload", "u", "t");
        assert!(matches!(
            sig.verify(&sk.public_key(), b"paylaod"),
            Err(SignError::BadSignature)
        ));
        assert!(matches!(
            sig.verify(&sk.public_key(), b""),
            Err(SignError::BadSignature)
        ));
    }

    #[test]
    fn tampered_trusted_comment_is_detected() {
        let sk = SecretKey::generate();
        let text = sk
            .sign(b"payload", "u", "timestamp:1\tfile:a.tar")
            .to_file_string();
        let forged = text.replace("file:a.tar", "file:b.tar");
        assert_ne!(forged, text);
        let sig = Signature::parse(&forged).unwrap();
        assert!(matches!(
            sig.verify(&sk.public_key(), b"payload"),
            Err(SignError::BadTrustedComment)
        ));
        // The untrusted comment is not covered by anything.
        let relabelled = text.replace("untrusted comment: u", "untrusted comment: v");
        Signature::parse(&relabelled)
            .unwrap()
            .verify(&sk.public_key(), b"payload")
            .unwrap();
    }

    #[test]
    fn tampered_signature_bytes_are_detected() {
        let sk = SecretKey::generate();
        let sig = sk.sign(b"payload", "u", "t");
        let mut bad = sig.clone();
        bad.signature[5] ^= 0x40;
        assert!(matches!(
            bad.verify(&sk.public_key(), b"payload"),
            Err(SignError::BadSignature)
        ));
        let mut bad = sig;
        bad.global_signature[5] ^= 0x40;
        assert!(matches!(
            bad.verify(&sk.public_key(), b"payload"),
            Err(SignError::BadTrustedComment)
        ));
    }

    #[test]
    fn trusted_comment_can_be_verified_without_the_data() {
        let sk = SecretKey::generate();
        let sig = sk.sign(b"payload", "u", "file:a.tar");
        sig.verify_trusted_comment(&sk.public_key()).unwrap();
        let forged = sig.to_file_string().replace("file:a.tar", "file:b.tar");
        let forged = Signature::parse(&forged).unwrap();
        assert!(matches!(
            forged.verify_trusted_comment(&sk.public_key()),
            Err(SignError::BadTrustedComment)
        ));
        assert!(matches!(
            sig.verify_trusted_comment(&SecretKey::generate().public_key()),
            Err(SignError::KeyMismatch { .. })
        ));
        let minisign = Signature::parse(tv::KAT_PREHASHED_MINISIG).unwrap();
        minisign.verify_trusted_comment(&kat_key()).unwrap();
        let legacy = Signature::parse(tv::KAT_LEGACY_MINISIG).unwrap();
        assert!(matches!(
            legacy.verify_trusted_comment(&kat_key()),
            Err(SignError::LegacySignature)
        ));
    }

    #[test]
    fn signature_by_another_key_is_a_key_mismatch() {
        let signer = SecretKey::generate();
        let other = SecretKey::generate();
        let sig = signer.sign(b"payload", "u", "t");
        match sig.verify(&other.public_key(), b"payload") {
            Err(SignError::KeyMismatch { signature, key }) => {
                assert_eq!(signature, signer.id());
                assert_eq!(key, other.id());
            }
            other => panic!("expected KeyMismatch, got {other:?}"),
        }
        // Same key id but another key: the signature itself fails.
        let impostor = SecretKey::from_seed(signer.id(), &[9u8; 32]);
        assert!(matches!(
            sig.verify(&impostor.public_key(), b"payload"),
            Err(SignError::BadSignature)
        ));
    }

    #[test]
    fn truncated_files_give_the_missing_line() {
        let text = Signature::parse(tv::KAT_PREHASHED_MINISIG)
            .unwrap()
            .to_file_string();
        let all: Vec<&str> = text.lines().collect();
        let expected = [
            "untrusted comment",
            "signature",
            "trusted comment",
            "global signature",
        ];
        for kept in 0..4 {
            let truncated: String = all[..kept].iter().map(|l| format!("{l}\n")).collect();
            match Signature::parse(&truncated) {
                Err(SignError::MissingLine {
                    kind: FileKind::Signature,
                    line,
                    expected: what,
                }) => {
                    assert_eq!(line, kept + 1, "kept {kept} lines");
                    assert_eq!(what, expected[kept]);
                }
                other => panic!("kept {kept} lines: expected MissingLine, got {other:?}"),
            }
        }
        // Cut in the middle of the last line: wrong length or bad base64.
        let cut = &text[..text.len() - 10];
        assert!(matches!(
            Signature::parse(cut),
            Err(SignError::Base64 { line: 4, .. } | SignError::WrongLength { line: 4, .. })
        ));
    }

    #[test]
    fn garbled_files_give_precise_errors() {
        let text = tv::KAT_PREHASHED_MINISIG;
        let lines: Vec<&str> = text.lines().collect();
        let with_line = |index: usize, new: &str| {
            let mut l = lines.clone();
            l[index] = new;
            l.iter().map(|l| format!("{l}\n")).collect::<String>()
        };
        let parse = |t: &str| Signature::parse(t).unwrap_err();

        assert!(matches!(
            parse(&with_line(0, "comment: x")),
            SignError::MissingPrefix {
                line: 1,
                prefix: "untrusted comment: ",
                ..
            }
        ));
        assert!(matches!(
            parse(&with_line(2, "timestamp:1")),
            SignError::MissingPrefix {
                line: 3,
                prefix: "trusted comment: ",
                ..
            }
        ));
        assert!(matches!(
            parse(&with_line(1, "RUScDY5f*iNk")),
            SignError::Base64 {
                line: 2,
                field: "signature",
                ..
            }
        ));
        assert!(matches!(
            parse(&with_line(1, "RUScDY5fsiNk")),
            SignError::WrongLength {
                line: 2,
                expected: 74,
                actual: 9,
                ..
            }
        ));
        assert!(matches!(
            parse(&with_line(3, "AAAA")),
            SignError::WrongLength {
                line: 4,
                expected: 64,
                actual: 3,
                ..
            }
        ));
        assert!(matches!(
            parse(&with_line(3, "not base64")),
            SignError::Base64 {
                line: 4,
                field: "global signature",
                ..
            }
        ));
        // "RVS" decodes to "ET": neither "ED" nor "Ed".
        let unknown = with_line(1, &format!("RVS{}", &lines[1][3..]));
        assert!(matches!(
            parse(&unknown),
            SignError::UnsupportedSignatureAlgorithm {
                kind: FileKind::Signature,
                found: [b'E', b'T']
            }
        ));
        assert!(matches!(
            parse(&format!("{text}extra line\n")),
            SignError::TrailingData { last_line: 4, .. }
        ));
        // An empty line in the middle counts as missing.
        assert!(matches!(
            parse(&with_line(1, "")),
            SignError::MissingLine { line: 2, .. }
        ));
        // Trailing blank lines are harmless.
        assert!(Signature::parse(&format!("{text}\n\n")).is_ok());
    }

    #[test]
    fn error_messages_are_clear() {
        let err = Signature::parse("untrusted comment: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature is truncated: line 2 (signature) is missing or empty"
        );
        let err = SignError::KeyMismatch {
            signature: KeyId([1, 0, 0, 0, 0, 0, 0, 0]),
            key: KeyId([2, 0, 0, 0, 0, 0, 0, 0]),
        };
        assert_eq!(
            err.to_string(),
            "signature was made by key 0000000000000001, but the public key is 0000000000000002"
        );
    }

    #[test]
    fn from_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar.minisig");
        std::fs::write(&path, "untrusted comment: x\nAAAA\n").unwrap();
        let err = Signature::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("bundle.tar.minisig"), "{err}");
        assert!(matches!(err.root(), SignError::MissingLine { line: 3, .. }));

        std::fs::write(&path, vec![b'a'; 70 * 1024]).unwrap();
        assert!(matches!(
            Signature::from_file(&path),
            Err(SignError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn check_comments_enforces_minisign_limits() {
        assert!(check_comments("u", "timestamp:1\tfile:x").is_ok());
        assert!(matches!(
            check_comments("u", "a\nb"),
            Err(SignError::InvalidComment {
                which: CommentKind::Trusted,
                ..
            })
        ));
        assert!(matches!(
            check_comments(&"x".repeat(2000), "t"),
            Err(SignError::InvalidComment {
                which: CommentKind::Untrusted,
                ..
            })
        ));
    }
}
