//! Reads an archive through its seek table: any decompressed range on demand, member headers
//! at known offsets, and every frame in order with parallel decompression.

use super::buffers::BufferPool;
use super::frames::FrameDecompressor;
use super::parallel::ordered_map;
use super::tar::{MemberHeader, Parser, Visitor, BLOCK};
use super::{ArchiveError, ReadAt, SeekTable};
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;

/// Idle frame buffers an archive keeps for reuse.
const IDLE_BUFFERS: usize = 16;

/// An open archive: its byte source and checked seek table.
pub struct Archive<S> {
    src: S,
    table: SeekTable,
    /// Decompressed frames' buffers, used again once every piece of a frame is dropped.
    buffers: Arc<BufferPool>,
}

impl<S: ReadAt> Archive<S> {
    /// Opens `src`, reading and checking its seek table.
    pub fn open(src: S) -> Result<Self, ArchiveError> {
        let table = SeekTable::read(&src)?;
        Ok(Archive {
            src,
            table,
            buffers: BufferPool::new(IDLE_BUFFERS),
        })
    }

    /// The seek table.
    pub fn table(&self) -> &SeekTable {
        &self.table
    }

    /// The underlying byte source.
    pub fn source(&self) -> &S {
        &self.src
    }

    /// Reads and decompresses frame `index`.
    pub fn frame(&self, index: usize, dctx: &mut FrameDecompressor) -> Result<Bytes, ArchiveError> {
        let Some(frame) = self.table.frames().get(index) else {
            return Err(ArchiveError::Truncated(format!("no frame {index}")));
        };
        let mut compressed = std::mem::take(&mut dctx.input);
        compressed.resize(frame.compressed as usize, 0);
        let read = self
            .src
            .read_exact_at(&mut compressed, frame.offset)
            .map_err(|e| ArchiveError::io(format!("reading frame {index}"), e));
        let data = read.and_then(|()| {
            let out = self.buffers.take(frame.decompressed as usize);
            dctx.decompress(index, frame, &compressed, out)
        });
        dctx.input = compressed;
        Ok(self.buffers.share(data?))
    }

    /// Fills `buf` with decompressed bytes starting at decompressed `offset`.
    pub fn read_at(&self, mut offset: u64, mut buf: &mut [u8]) -> Result<(), ArchiveError> {
        let mut dctx = new_decompressor()?;
        while !buf.is_empty() {
            let Some(index) = self.table.frame_at(offset) else {
                return Err(ArchiveError::Truncated(format!(
                    "read past the end of the archive at offset {offset}"
                )));
            };
            let frame = self.table.frames()[index];
            let data = self.frame(index, &mut dctx)?;
            let start = (offset - frame.data_offset) as usize;
            let take = (data.len() - start).min(buf.len());
            buf[..take].copy_from_slice(&data[start..start + take]);
            buf = &mut buf[take..];
            offset += take as u64;
        }
        Ok(())
    }

    /// A reader of decompressed bytes `[start, start + len)`, decompressing one frame at a
    /// time as it goes (memory: one frame).
    pub fn range_reader(&self, start: u64, len: u64) -> RangeReader<'_, S> {
        RangeReader {
            archive: self,
            position: start,
            end: start.saturating_add(len),
            frame: None,
            dctx: None,
        }
    }

    /// Parses the member header(s) at decompressed `offset`; `None` at the end-of-archive marker.
    pub fn header_at(&self, offset: u64) -> Result<Option<MemberHeader>, ArchiveError> {
        struct First(Option<MemberHeader>);
        impl Visitor for First {
            type Error = ArchiveError;
            fn member(&mut self, header: &MemberHeader) -> Result<(), ArchiveError> {
                self.0 = Some(header.clone());
                Ok(())
            }
            fn data(&mut self, _: &[u8]) -> Result<(), ArchiveError> {
                Ok(())
            }
            fn member_end(&mut self) -> Result<(), ArchiveError> {
                Ok(())
            }
        }
        let mut parser = Parser::at(offset);
        let mut first = First(None);
        let mut block = [0u8; BLOCK];
        while first.0.is_none() && !parser.ended() {
            self.read_at(parser.offset(), &mut block)?;
            parser.feed(&block, &mut first)?;
        }
        Ok(first.0)
    }

    /// Decompresses `frames` with `threads` workers and hands each frame's bytes (or the error
    /// reading it) to `sink` in order, with at most a few frames in memory at once.
    pub fn for_each_frame<E>(
        &self,
        frames: Range<usize>,
        threads: usize,
        mut sink: impl FnMut(usize, Result<Bytes, ArchiveError>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = frames.start;
        let mut next = start;
        ordered_map(
            threads,
            threads * 2,
            frames.map(Ok),
            FrameDecompressor::new,
            |dctx, index| match dctx {
                Ok(dctx) => self.frame(index, dctx),
                Err(e) => Err(ArchiveError::io("creating a zstd context", clone_io(e))),
            },
            |data| {
                let index = next;
                next += 1;
                sink(index, data)
            },
        )
    }
}

/// Sequential reads of a decompressed range; see [`Archive::range_reader`].
pub struct RangeReader<'a, S> {
    archive: &'a Archive<S>,
    position: u64,
    end: u64,
    /// The frame holding `position`: its decompressed offset and bytes.
    frame: Option<(u64, Bytes)>,
    dctx: Option<FrameDecompressor>,
}

impl<S: ReadAt> RangeReader<'_, S> {
    /// Bytes left to read.
    pub fn remaining(&self) -> u64 {
        self.end - self.position
    }

    fn fill(&mut self) -> Result<(), ArchiveError> {
        let current = self.frame.as_ref().is_some_and(|(start, data)| {
            self.position >= *start && self.position < start + data.len() as u64
        });
        if current {
            return Ok(());
        }
        let Some(index) = self.archive.table.frame_at(self.position) else {
            return Err(ArchiveError::Truncated(format!(
                "read past the end of the archive at offset {}",
                self.position
            )));
        };
        let dctx = match self.dctx.as_mut() {
            Some(d) => d,
            None => self.dctx.insert(new_decompressor()?),
        };
        let data = self.archive.frame(index, dctx)?;
        self.frame = Some((self.archive.table.frames()[index].data_offset, data));
        Ok(())
    }

    /// The next bytes of the range, up to the end of the current frame, without copying them;
    /// `None` at the end of the range.
    pub fn next_piece(&mut self) -> Result<Option<Bytes>, ArchiveError> {
        if self.position >= self.end {
            return Ok(None);
        }
        self.fill()?;
        let Some((start, data)) = self.frame.as_ref() else {
            return Ok(None);
        };
        let from = (self.position - start) as usize;
        let take = (data.len() - from).min((self.end - self.position) as usize);
        self.position += take as u64;
        Ok(Some(data.slice(from..from + take)))
    }
}

impl<S: ReadAt> std::io::Read for RangeReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.end || buf.is_empty() {
            return Ok(0);
        }
        self.fill().map_err(std::io::Error::other)?;
        let Some((start, data)) = self.frame.as_ref() else {
            return Ok(0);
        };
        let from = (self.position - start) as usize;
        let take = (data.len() - from)
            .min(buf.len())
            .min((self.end - self.position) as usize);
        buf[..take].copy_from_slice(&data[from..from + take]);
        self.position += take as u64;
        Ok(take)
    }
}

fn new_decompressor() -> Result<FrameDecompressor, ArchiveError> {
    FrameDecompressor::new().map_err(|e| ArchiveError::io("creating a zstd context", e))
}

/// A copy of an I/O error: a worker whose zstd context could not be made reports the error
/// for every job it takes.
pub(crate) fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}
