//! Errors of the bundle layer: every message names the member or signature at fault.

use std::path::PathBuf;

use crate::archive::ArchiveError;
use crate::sign::{KeyId, SignError};
use crate::toc::TocError;

/// Why a bundle's signatures are not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The bundle carries no signature at all.
    #[error("the bundle is not signed")]
    Unsigned,
    /// A signature member cannot be parsed (truncated, garbled).
    #[error("signature {member} is malformed")]
    Malformed {
        member: String,
        #[source]
        source: SignError,
    },
    /// A trusted key's signature does not match `bundle.json`.
    #[error("signature {member} by trusted key {key_id} does not verify")]
    BadSignature {
        member: String,
        key_id: KeyId,
        #[source]
        source: SignError,
    },
    /// A trusted key's valid signature made over another `bundle.json`: the signature was
    /// copied from another bundle, or `bundle.json` was changed after signing.
    #[error(
        "signature {member} by key {key_id} does not cover this bundle.json: it signed a \
         bundle.json with sha256 {signed}, this one has sha256 {actual} (a signature from \
         another bundle, or bundle.json changed after signing)"
    )]
    OtherBundle {
        member: String,
        key_id: KeyId,
        signed: String,
        actual: String,
    },
    /// Every signature is by a key that is not trusted.
    #[error("signed only by unknown key(s) {}; trusted: {}", list(.found), list(.trusted))]
    UnknownKeys {
        found: Vec<KeyId>,
        trusted: Vec<KeyId>,
    },
    /// Fewer distinct trusted keys signed than the policy requires.
    #[error(
        "{} valid trusted signature(s) ({}), {threshold} required",
        .signers.len(),
        list(.signers)
    )]
    BelowThreshold {
        threshold: usize,
        signers: Vec<KeyId>,
    },
    /// A signature member whose name does not match its place and key (the first is
    /// `bundle.json.minisig`, each later one `bundle.json.<KEYID>.minisig`).
    #[error("signature member {member} should be named {expected}")]
    Misnamed { member: String, expected: String },
    /// Two signature members by the same key.
    #[error("signature {member}: key {key_id} signed twice")]
    DuplicateSigner { member: String, key_id: KeyId },
}

fn list(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What can go wrong opening, verifying, packing or extracting a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The archive layer failed (seek table, frames, tar headers, I/O).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// An archive error while reading a known member.
    #[error("member {path}")]
    InMember {
        path: String,
        #[source]
        source: ArchiveError,
    },
    /// `bundle.json` is not acceptable.
    #[error(transparent)]
    TableOfContents(#[from] TocError),
    /// Signatures are missing or not trusted.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The first member is not `bundle.json`.
    #[error("the first member is {found:?}; a bundle starts with bundle.json")]
    NoToc { found: String },
    /// A member's content differs from `bundle.json`.
    #[error("member {path}: content changed (sha256 {actual}, bundle.json says {expected})")]
    Changed {
        path: String,
        expected: String,
        actual: String,
    },
    /// A member's tar header disagrees with `bundle.json` about its size.
    #[error("member {path}: its tar header says {header} bytes, bundle.json says {toc}")]
    SizeMismatch { path: String, header: u64, toc: u64 },
    /// A member that `bundle.json` does not list.
    #[error("member {path}: not listed in bundle.json (added or renamed)")]
    Unexpected { path: String },
    /// A listed member at another place than `bundle.json` puts it.
    #[error("member {path}: out of order (bundle.json puts {expected} here)")]
    OutOfOrder { path: String, expected: String },
    /// A member that appears twice.
    #[error("member {path}: appears twice")]
    Duplicate { path: String },
    /// A listed member that is not in the archive.
    #[error("member {path}: missing (listed in bundle.json, not in the archive)")]
    Missing { path: String },
    /// A signature member read in the streaming pass differs from the one checked before.
    #[error("member {path}: signature changed while the bundle was being read")]
    SignatureChanged { path: String },
    /// Members and frames are not laid out as the format requires.
    #[error("layout: {0}")]
    Layout(String),
    /// A run of members whose frames, as stored, are not the bytes `bundle.json` pins, though
    /// their content checks out: the frames were rewritten (e.g. compressed again).
    #[error(
        "members {first} to {last}: their frames as stored are not those bundle.json pins \
         (sha256 {expected}): {found}; their content matches, so the frames were rewritten"
    )]
    StoredChanged {
        first: String,
        last: String,
        expected: String,
        found: String,
    },

    /// A blob given to pack (`blobs/sha256/<hex>`) does not hash to its name; nothing was
    /// written at the output.
    #[error("{file} (member {path}) hashes to sha256:{actual}, not to its name")]
    BlobMismatch {
        path: String,
        file: PathBuf,
        actual: String,
    },
    /// A staged input cannot be packed.
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    /// I/O on a named file.
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A signing operation failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// A bundle file failed its signature or member check.
    #[error("{path} failed verification")]
    Verification {
        path: String,
        #[source]
        source: Box<BundleError>,
    },
    /// A member read whole into memory is larger than such a member may be.
    #[error("member {path} is {size} bytes, more than the {limit} a manifest may have")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// The build time cannot be written as RFC 3339.
    #[error(transparent)]
    Timestamp(#[from] oci::time::TimestampError),
}

impl BundleError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        BundleError::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
