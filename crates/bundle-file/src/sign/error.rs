//! The error type of the [`crate::sign`] module.
//!
//! Every distinct way of failing has its own variant, so that callers (and
//! tests) can tell a truncated file from a wrong passphrase or a forged
//! signature without parsing messages. Errors raised while reading a named
//! file are wrapped in [`SignError::InFile`], whose message starts with the
//! file's path.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::key_id::KeyId;

/// Which of minisign's three text formats an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A public key (`minisign.pub`).
    PublicKey,
    /// A secret key (`minisign.key`).
    SecretKey,
    /// A signature (`FILE.minisig`).
    Signature,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::PublicKey => "public key",
            FileKind::SecretKey => "secret key",
            FileKind::Signature => "signature",
        })
    }
}

/// Which of the two comments of a signature an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentKind {
    /// The `untrusted comment: ` line (not covered by any signature).
    Untrusted,
    /// The `trusted comment: ` line (covered by the global signature).
    Trusted,
}

impl fmt::Display for CommentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommentKind::Untrusted => "untrusted comment",
            CommentKind::Trusted => "trusted comment",
        })
    }
}

/// Shows a two-byte algorithm tag the way a person can read it: as text
/// when it is printable ASCII, as hex otherwise.
pub(crate) struct AlgTag(pub [u8; 2]);

impl fmt::Display for AlgTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.iter().all(|b| b.is_ascii_graphic()) {
            write!(f, "\"{}{}\"", char::from(self.0[0]), char::from(self.0[1]))
        } else {
            write!(f, "0x{:02x}{:02x}", self.0[0], self.0[1])
        }
    }
}

/// Everything that can go wrong while reading, writing, signing or
/// verifying minisign files.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// A file is far larger than any minisign file can be.
    #[error("{} is too large to be a minisign {kind} file (more than {limit} bytes)", path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// What it was expected to hold.
        kind: FileKind,
        /// The size limit, in bytes.
        limit: u64,
    },

    /// An error found in the content of a named file.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        error: Box<SignError>,
    },

    /// The text ends before a required line (or the line is empty).
    #[error("{kind} is truncated: line {line} ({expected}) is missing or empty")]
    MissingLine {
        /// The format being parsed.
        kind: FileKind,
        /// 1-based line number.
        line: usize,
        /// What the line should hold.
        expected: &'static str,
    },

    /// A comment line lacks its mandatory prefix.
    #[error("{kind}: line {line} must start with \"{prefix}\"")]
    MissingPrefix {
        /// The format being parsed.
        kind: FileKind,
        /// 1-based line number.
        line: usize,
        /// The required prefix.
        prefix: &'static str,
    },

    /// Non-empty lines follow the last line of the format.
    #[error("{kind}: unexpected content after line {last_line}")]
    TrailingData {
        /// The format being parsed.
        kind: FileKind,
        /// The last line the format has.
        last_line: usize,
    },

    /// A base64 line does not decode.
    #[error("{kind}: {field} (line {line}) is not valid base64")]
    Base64 {
        /// The format being parsed.
        kind: FileKind,
        /// What the line holds.
        field: &'static str,
        /// 1-based line number.
        line: usize,
        /// The decoder's complaint.
        #[source]
        source: base64::DecodeError,
    },

    /// A base64 line decodes to the wrong number of bytes.
    #[error("{kind}: {field} (line {line}) decodes to {actual} bytes, expected {expected}")]
    WrongLength {
        /// The format being parsed.
        kind: FileKind,
        /// What the line holds.
        field: &'static str,
        /// 1-based line number.
        line: usize,
        /// Required length in bytes.
        expected: usize,
        /// Length found.
        actual: usize,
    },

    /// The signature algorithm tag is neither `Ed` nor (for signatures) `ED`.
    #[error("{kind}: unsupported signature algorithm {}", AlgTag(*found))]
    UnsupportedSignatureAlgorithm {
        /// The format being parsed.
        kind: FileKind,
        /// The tag found.
        found: [u8; 2],
    },

    /// The secret key uses a key derivation function other than scrypt (`Sc`).
    #[error("secret key: unsupported key derivation function {}", AlgTag(*found))]
    UnsupportedKdf {
        /// The tag found.
        found: [u8; 2],
    },

    /// The secret key uses a checksum other than BLAKE2b (`B2`).
    #[error("secret key: unsupported checksum function {}", AlgTag(*found))]
    UnsupportedChecksum {
        /// The tag found.
        found: [u8; 2],
    },

    /// A passphrase was given but the secret key is stored unencrypted.
    #[error("secret key is not encrypted (it was made with `minisign -W`), so no passphrase can open it")]
    NotEncrypted,

    /// The secret key is encrypted but was read as an unencrypted one.
    #[error("secret key is encrypted: a passphrase is required")]
    Encrypted,

    /// Decryption gave a checksum mismatch: the passphrase is wrong.
    #[error("wrong passphrase for this secret key (checksum mismatch)")]
    WrongPassphrase,

    /// An unencrypted secret key fails its own checksum.
    #[error("secret key is corrupt (checksum mismatch)")]
    CorruptSecretKey,

    /// The public half stored in the secret key does not belong to its seed.
    #[error("secret key is corrupt: its embedded public key does not match its private key")]
    InconsistentSecretKey,

    /// The scrypt parameters are absurd or unsupported; nothing was allocated.
    #[error("refusing scrypt parameters (opslimit {opslimit}, memlimit {memlimit}): {reason}")]
    UnsafeKdfParams {
        /// The stored or requested opslimit.
        opslimit: u64,
        /// The stored or requested memlimit.
        memlimit: u64,
        /// Which limit they break.
        reason: String,
    },

    /// The 32 key bytes are not a point on the Ed25519 curve.
    #[error("public key is not a valid ed25519 key")]
    InvalidPublicKey,

    /// The signature was made with another key than the one given.
    #[error("signature was made by key {signature}, but the public key is {key}")]
    KeyMismatch {
        /// Key id recorded in the signature.
        signature: KeyId,
        /// Key id of the public key.
        key: KeyId,
    },

    /// The signature over the data does not verify: data or signature altered.
    #[error("signature verification failed: the data does not match the signature")]
    BadSignature,

    /// The global signature does not verify: the trusted comment was altered.
    #[error("trusted comment verification failed: the trusted comment was altered")]
    BadTrustedComment,

    /// The signature uses minisign's legacy (non-prehashed) `Ed` algorithm.
    #[error("legacy (non-prehashed) minisign signatures are not accepted; sign again with a current minisign")]
    LegacySignature,

    /// A comment given for signing cannot be written as one minisign line.
    #[error("{which} {problem}")]
    InvalidComment {
        /// Which comment.
        which: CommentKind,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl SignError {
    /// Wraps `self` so that its message names `path`.
    pub fn in_file(self, path: &Path) -> SignError {
        SignError::InFile {
            path: path.to_path_buf(),
            error: Box::new(self),
        }
    }

    /// The error without any [`SignError::InFile`] wrapper around it.
    pub fn root(&self) -> &SignError {
        match self {
            SignError::InFile { error, .. } => error.root(),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_file_names_the_file_and_root_unwraps() {
        let err = SignError::WrongPassphrase.in_file(Path::new("/keys/release.key"));
        assert_eq!(
            err.to_string(),
            "/keys/release.key: wrong passphrase for this secret key (checksum mismatch)"
        );
        assert!(matches!(err.root(), SignError::WrongPassphrase));
    }

    #[test]
    fn algorithm_tags_are_readable() {
        let err = SignError::UnsupportedKdf { found: *b"Ar" };
        assert_eq!(
            err.to_string(),
            "secret key: unsupported key derivation function \"Ar\""
        );
        let err = SignError::UnsupportedChecksum { found: [0, 0xff] };
        assert_eq!(
            err.to_string(),
            "secret key: unsupported checksum function 0x00ff"
        );
    }
}
