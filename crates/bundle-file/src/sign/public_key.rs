//! Minisign public keys (`minisign.pub`).
//!
//! The file has two lines:
//!
//! ```text
//! untrusted comment: minisign public key 166423B25F8E0D9C
//! RWScDY5fsiNkFhNt2uY8UUTZFggOYdoVNb4jkexO24IEJ8kyw5QM5xoV
//! ```
//!
//! The second line is the base64 of 42 bytes: the algorithm tag `Ed`, the
//! 8-byte key id and the 32-byte Ed25519 public key. The comment is not
//! authenticated; minisign itself ignores it when reading.

use std::fmt;
use std::path::Path;

use ed25519_dalek::VerifyingKey;

use super::error::{FileKind, SignError};
use super::key_id::KeyId;
use super::text;

/// Algorithm tag of minisign keys and legacy signatures.
pub(crate) const ALG_ED25519: [u8; 2] = *b"Ed";

const KIND: FileKind = FileKind::PublicKey;

/// A minisign public key: a key id and an Ed25519 verifying key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_id: KeyId,
    key: VerifyingKey,
}

impl PublicKey {
    pub(crate) fn new(key_id: KeyId, key: VerifyingKey) -> Self {
        Self { key_id, key }
    }

    /// Parses the text of a `.pub` file (comment line, then base64 line), or
    /// the bare base64 line alone (as given to `minisign -P`).
    pub fn parse(text: &str) -> Result<Self, SignError> {
        let lines = text::lines(text);
        let first = text::required_line(&lines, 1, KIND, "untrusted comment or public key")?;
        let (line_no, b64) = if lines.len() == 1 && !first.starts_with(text::UNTRUSTED_PREFIX) {
            (1, first)
        } else {
            text::strip_prefix(first, text::UNTRUSTED_PREFIX, 1, KIND)?;
            (2, text::required_line(&lines, 2, KIND, "public key")?)
        };
        text::no_trailing_lines(&lines, line_no, KIND)?;
        Self::from_base64_line(b64, line_no)
    }

    /// Reads and parses a `.pub` file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, SignError> {
        let text = text::read_small_file(path, KIND)?;
        Self::parse(&text).map_err(|e| e.in_file(path))
    }

    fn from_base64_line(line: &str, line_no: usize) -> Result<Self, SignError> {
        let bytes: [u8; 42] = text::decode_exact(line, line_no, KIND, "public key")?;
        let alg = [bytes[0], bytes[1]];
        if alg != ALG_ED25519 {
            return Err(SignError::UnsupportedSignatureAlgorithm {
                kind: KIND,
                found: alg,
            });
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[2..10]);
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&bytes[10..42]);
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| SignError::InvalidPublicKey)?;
        Ok(Self::new(KeyId(id), key))
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.key_id
    }

    /// The 32 bytes of the Ed25519 public key.
    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The base64 line alone (what `minisign -P` takes).
    pub fn to_base64(&self) -> String {
        let mut bytes = [0u8; 42];
        bytes[..2].copy_from_slice(&ALG_ED25519);
        bytes[2..10].copy_from_slice(&self.key_id.0);
        bytes[10..].copy_from_slice(self.key.as_bytes());
        text::encode(&bytes)
    }

    /// The `.pub` file exactly as the minisign tool writes it, including
    /// its comment, whose key id is *not* zero-padded
    /// ([`KeyId::minisign_hex`]).
    pub fn to_file_string(&self) -> String {
        format!(
            "{}minisign public key {}\n{}\n",
            text::UNTRUSTED_PREFIX,
            self.key_id.minisign_hex(),
            self.to_base64()
        )
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("id", &self.key_id)
            .field("key", &self.to_base64())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors as tv;
    use super::*;

    #[test]
    fn parses_and_rewrites_a_minisign_pub_file_byte_for_byte() {
        let pk = PublicKey::parse(tv::KAT_PUB).unwrap();
        assert_eq!(pk.id().to_string(), "166423B25F8E0D9C");
        assert_eq!(pk.to_file_string(), tv::KAT_PUB);
        // A key id whose top nibble is 0: minisign writes 15 digits.
        let pk = PublicKey::parse(tv::SHORT_ID_PUB).unwrap();
        assert_eq!(pk.to_file_string(), tv::SHORT_ID_PUB);
        assert_eq!(pk.id().to_string(), "02699D3B92C9858A");
    }

    #[test]
    fn accepts_bare_base64_and_crlf() {
        let full = PublicKey::parse(tv::KAT_PUB).unwrap();
        let bare = PublicKey::parse(tv::KAT_PUB.lines().nth(1).unwrap()).unwrap();
        assert_eq!(full, bare);
        assert_eq!(PublicKey::parse(&bare.to_base64()).unwrap(), full);
        let crlf = tv::KAT_PUB.replace('\n', "\r\n");
        assert_eq!(PublicKey::parse(&crlf).unwrap(), full);
    }

    #[test]
    fn rejects_malformed_keys_precisely() {
        let err = |t: &str| PublicKey::parse(t).unwrap_err();
        assert!(matches!(err(""), SignError::MissingLine { line: 1, .. }));
        assert!(matches!(
            err("untrusted comment: x\n"),
            SignError::MissingLine { line: 2, .. }
        ));
        assert!(matches!(
            err("comment without prefix\nRWScDY5fsiNkFhNt2uY8UUTZFggOYdoVNb4jkexO24IEJ8kyw5QM5xoV\n"),
            SignError::MissingPrefix { line: 1, .. }
        ));
        assert!(matches!(
            err(&format!("{}extra\n", tv::KAT_PUB)),
            SignError::TrailingData { last_line: 2, .. }
        ));
        assert!(matches!(
            err("untrusted comment: x\nRWScDY5fsiNk$$$\n"),
            SignError::Base64 { line: 2, .. }
        ));
        assert!(matches!(
            err("untrusted comment: x\nRWScDY5fsiNk\n"),
            SignError::WrongLength {
                expected: 42,
                actual: 9,
                ..
            }
        ));
        // "RUS" decodes to "ED": a signature tag, not a key tag.
        assert!(matches!(
            err("RUScDY5fsiNkFhNt2uY8UUTZFggOYdoVNb4jkexO24IEJ8kyw5QM5xoV"),
            SignError::UnsupportedSignatureAlgorithm {
                found: [b'E', b'D'],
                ..
            }
        ));
    }

    #[test]
    fn from_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broken.pub");
        std::fs::write(&path, "untrusted comment: x\n").unwrap();
        let err = PublicKey::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("broken.pub"), "{err}");
        assert!(matches!(err.root(), SignError::MissingLine { line: 2, .. }));

        let missing = dir.path().join("missing.pub");
        let err = PublicKey::from_file(&missing).unwrap_err();
        assert!(matches!(err, SignError::Read { .. }));
        assert!(err.to_string().contains("missing.pub"), "{err}");

        std::fs::write(&path, tv::KAT_PUB).unwrap();
        assert_eq!(
            PublicKey::from_file(&path).unwrap(),
            PublicKey::parse(tv::KAT_PUB).unwrap()
        );
    }
}
