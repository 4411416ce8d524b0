//! Every member's SHA-256 computed on every core. The frames are cut into segments that each
//! start at a member, and a worker decompresses, parses and hashes a whole segment, so no
//! frame's bytes cross threads. A frame shorter than [`FRAME_SIZE`] ends a member in the
//! writer's framing (docs/format.md §2.1), so segments are cut after such frames.
//!
//! Nothing here trusts that assumption: a segment whose parse does not end exactly between two
//! members, or that does not start at a header, fails, and the caller then checks the bundle
//! in one sequential pass, which names what is wrong.

use crate::archive::parallel::ordered_map;
use crate::archive::tar::{MemberHeader, Parser, Visitor};
use crate::archive::{clone_io, ArchiveError, ReadAt, SeekTable, FRAME_SIZE};
use crate::open::MAX_SIGNATURE_LEN;
use crate::toc::is_signature_path;
use crate::Bundle;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Decompressed bytes after which a segment ends at the next member boundary it can: large
/// enough that a segment is mostly hashing, small enough that the cores finish together.
const SEGMENT_BYTES: u64 = 8 << 20;

/// One member as a worker read it.
pub struct HashedMember {
    /// Its header.
    pub header: MemberHeader,
    /// SHA-256 of its data.
    pub sha256: [u8; 32],
    /// Its data when it is a signature member (at most one byte more than a signature may
    /// hold, so an oversized one is still seen as such); empty otherwise.
    pub signature: Vec<u8>,
}

/// Why the members could not be hashed segment by segment.
pub enum Interrupted<E> {
    /// A segment could not be read, or did not parse as whole members: check sequentially
    /// instead, which names the problem.
    Layout,
    /// The caller's `sink` refused a member.
    Sink(E),
}

/// Hashes every member of `bundle` on `threads` workers and hands each segment's members, in
/// archive order, to `sink` with the decompressed bytes the segment spanned.
pub fn each_segment<S: ReadAt, E>(
    bundle: &Bundle<S>,
    threads: usize,
    mut sink: impl FnMut(Vec<HashedMember>, u64) -> Result<(), E>,
) -> Result<(), Interrupted<E>> {
    let archive = bundle.archive();
    let table = archive.table();
    let segments = segments(table);
    let last = segments.len().saturating_sub(1);
    ordered_map(
        threads,
        threads * 2,
        segments.into_iter().enumerate().map(Ok),
        crate::archive::frames::FrameDecompressor::new,
        |dctx, (number, frames): (usize, Range<usize>)| {
            let dctx = dctx
                .as_mut()
                .map_err(|e| ArchiveError::io("creating a zstd context", clone_io(e)))?;
            let bytes = span(table, &frames);
            let start = table
                .frames()
                .get(frames.start)
                .map_or(0, |f| f.data_offset);
            let mut parser = Parser::at(start);
            let mut hashing = Hashing::default();
            for index in frames {
                let data = archive.frame(index, dctx)?;
                parser.feed(&data, &mut hashing)?;
            }
            if number == last {
                parser.finish()?;
            } else if !parser.between_members() {
                return Err(ArchiveError::Truncated(format!(
                    "a segment ends inside a member at offset {}",
                    parser.offset()
                )));
            }
            Ok((hashing.done, bytes))
        },
        |result: Result<(Vec<HashedMember>, u64), ArchiveError>| {
            let (members, bytes) = result.map_err(|_| Interrupted::Layout)?;
            sink(members, bytes).map_err(Interrupted::Sink)
        },
    )
}

/// The frames cut into segments of at least [`SEGMENT_BYTES`] (the last may be smaller), each
/// cut after a frame shorter than [`FRAME_SIZE`].
pub(crate) fn segments(table: &SeekTable) -> Vec<Range<usize>> {
    let frames = table.frames();
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (index, frame) in frames.iter().enumerate() {
        bytes += u64::from(frame.decompressed);
        if bytes >= SEGMENT_BYTES && (frame.decompressed as usize) < FRAME_SIZE {
            out.push(start..index + 1);
            (start, bytes) = (index + 1, 0);
        }
    }
    if start < frames.len() || out.is_empty() {
        out.push(start..frames.len());
    }
    out
}

/// Decompressed bytes of `frames`.
fn span(table: &SeekTable, frames: &Range<usize>) -> u64 {
    table.frames()[frames.clone()]
        .iter()
        .map(|f| u64::from(f.decompressed))
        .sum()
}

/// A worker's visitor: hashes each member's data.
#[derive(Default)]
struct Hashing {
    done: Vec<HashedMember>,
    /// The member being read: its header, its hash so far and, for a signature member, its
    /// bytes so far.
    current: Option<(MemberHeader, Sha256, Option<Vec<u8>>)>,
}

impl Visitor for Hashing {
    type Error = ArchiveError;

    fn member(&mut self, header: &MemberHeader) -> Result<(), ArchiveError> {
        let signature = is_signature_path(&header.path).then(Vec::new);
        self.current = Some((header.clone(), Sha256::new(), signature));
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        if let Some((_, hasher, signature)) = &mut self.current {
            hasher.update(bytes);
            if let Some(signature) = signature {
                let room = (MAX_SIGNATURE_LEN as usize + 1).saturating_sub(signature.len());
                signature.extend_from_slice(&bytes[..room.min(bytes.len())]);
            }
        }
        Ok(())
    }

    fn member_end(&mut self) -> Result<(), ArchiveError> {
        if let Some((header, hasher, signature)) = self.current.take() {
            self.done.push(HashedMember {
                header,
                sha256: hasher.finalize().into(),
                signature: signature.unwrap_or_default(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sizes: &[u32]) -> SeekTable {
        let mut t = SeekTable::default();
        for &s in sizes {
            t.push(s / 2 + 1, s);
        }
        t
    }

    #[test]
    fn segments_end_after_short_frames_once_large_enough() {
        let full = FRAME_SIZE as u32;
        // A member of 9 MiB (cut after it), a small one and one of 8 MiB (cut after it, as
        // the segment then holds 8 MiB), then the end marker (the rest).
        let sizes = [
            full,
            full,
            full,
            full,
            full / 2,
            4096,
            full,
            full,
            full,
            full,
            512,
            1024,
        ];
        assert_eq!(segments(&table(&sizes)), vec![0..5, 5..11, 11..12]);
    }

    #[test]
    fn a_single_segment_covers_a_small_archive() {
        assert_eq!(segments(&table(&[4096, 1024])), vec![0..2]);
        assert_eq!(segments(&table(&[])), vec![0..0]);
    }
}
