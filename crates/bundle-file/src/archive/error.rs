//! Errors of the archive layer.

use std::io;

/// What can be wrong with a bundle file at the archive level.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An I/O error while reading or writing `what`.
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The trailing seek table is missing or inconsistent.
    #[error("corrupt seek table: {0}")]
    SeekTable(String),
    /// A zstd frame does not decompress to what the seek table says.
    #[error("corrupt zstd frame {index} at byte {offset}: {reason}")]
    Frame {
        index: usize,
        offset: u64,
        reason: String,
    },
    /// A tar header is malformed or not allowed in a bundle.
    #[error("bad tar header at uncompressed offset {offset}: {reason}")]
    TarHeader { offset: u64, reason: String },
    /// A member path that could escape the extraction root or is otherwise not allowed.
    #[error("unsafe member path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// A member is not a regular file.
    #[error("member {path:?} is a {kind}; a bundle holds only regular files")]
    NotRegularFile { path: String, kind: &'static str },
    /// A member's source produced a different number of bytes than announced.
    #[error("member {path:?}: expected {expected} bytes, the source gave {actual}")]
    SourceSize {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// The tar stream ends before the end-of-archive marker.
    #[error("archive truncated: {0}")]
    Truncated(String),
}

impl ArchiveError {
    /// An I/O error annotated with what was being read or written.
    pub fn io(what: impl Into<String>, source: io::Error) -> Self {
        ArchiveError::Io {
            what: what.into(),
            source,
        }
    }
}
