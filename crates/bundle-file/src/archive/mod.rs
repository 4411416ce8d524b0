//! The bundle container's byte format: a POSIX tar stream cut into independent zstd frames,
//! with a zstd seekable-format seek table in a trailing skippable frame.
//!
//! This module knows nothing of `bundle.json`: it writes and reads tar members and frames.
//! `docs/format.md` specifies every byte.

mod buffers;
mod error;
pub mod frames;
pub mod parallel;
mod reader;
pub mod seek_table;
pub mod source;
pub mod tar;
pub mod writer;

#[cfg(test)]
mod tests;

pub use error::ArchiveError;
pub(crate) use reader::clone_io;
pub use reader::{Archive, RangeReader};
pub use seek_table::{Frame, SeekTable};
pub use source::ReadAt;
pub use writer::{Writer, WriterOptions};

/// Uncompressed bytes per zstd frame: members larger than this are split into frames of exactly
/// this size (the last one shorter).
pub const FRAME_SIZE: usize = 2 << 20;

/// Largest decompressed frame a reader accepts, so that memory stays bounded whatever the input.
pub const MAX_FRAME_SIZE: u32 = 8 << 20;

/// zstd compression level used for members.
pub const DEFAULT_LEVEL: i32 = 3;
