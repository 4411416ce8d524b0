//! Writes members as a tar stream of independent zstd frames, compressing frames in parallel
//! and in a deterministic way, then closes the archive with the end marker and the seek table.

use super::frames::FrameCompressor;
use super::parallel::{default_threads, ordered_map};
use super::tar::{member_header, padding, END_OF_ARCHIVE};
use super::{ArchiveError, SeekTable, DEFAULT_LEVEL, FRAME_SIZE};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

/// Smallest frame size honoured, so a frame always has room for a header block and data.
const MIN_FRAME_SIZE: usize = 4096;

/// Where a member's bytes come from.
#[derive(Debug, Clone)]
pub enum Content {
    /// Bytes already in memory (small generated files such as `bundle.json`).
    Bytes(Vec<u8>),
    /// A file read when its turn comes.
    File(PathBuf),
}

/// One member to write.
#[derive(Debug, Clone)]
pub struct Member {
    /// Path inside the archive.
    pub path: String,
    /// Exact size of the content; a source of another size is an error.
    pub size: u64,
    /// The content.
    pub content: Content,
}

impl Member {
    /// A member whose bytes are in memory.
    pub fn bytes(path: impl Into<String>, data: Vec<u8>) -> Self {
        Member {
            path: path.into(),
            size: data.len() as u64,
            content: Content::Bytes(data),
        }
    }
}

/// How frames are written.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// zstd level.
    pub level: i32,
    /// Compression threads.
    pub threads: usize,
    /// Modification time written in every header (seconds since the epoch).
    pub mtime: u64,
    /// Uncompressed bytes per frame.
    pub frame_size: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            level: DEFAULT_LEVEL,
            threads: default_threads(),
            mtime: 0,
            frame_size: FRAME_SIZE,
        }
    }
}

/// An archive being written to `out`.
pub struct Writer<W: Write> {
    out: W,
    table: SeekTable,
    options: WriterOptions,
}

impl<W: Write> Writer<W> {
    /// Starts a new archive at the beginning of `out`.
    pub fn new(out: W, options: WriterOptions) -> Self {
        Self::resume(out, SeekTable::default(), options)
    }

    /// Continues an archive whose frames so far are `table` and already in `out` (which is
    /// positioned just after them).
    pub fn resume(out: W, table: SeekTable, options: WriterOptions) -> Self {
        Writer {
            out,
            table,
            options,
        }
    }

    /// Writes `members` in order; `progress` is told how many uncompressed bytes each frame
    /// carried once the frame is written.
    pub fn write_members(
        &mut self,
        members: impl IntoIterator<Item = Member>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let chunks = Chunker {
            members: members.into_iter(),
            current: None,
            options: self.options,
        };
        let level = self.options.level;
        let (out, table) = (&mut self.out, &mut self.table);
        ordered_map(
            self.options.threads,
            self.options.threads * 2,
            chunks,
            || FrameCompressor::new(level),
            |compressor, chunk: Vec<u8>| {
                let len = chunk.len();
                let frame = match compressor {
                    Ok(c) => c.compress(&chunk),
                    Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                };
                (len, frame)
            },
            |(len, frame)| {
                let frame = frame.map_err(|e| ArchiveError::io("compressing a frame", e))?;
                out.write_all(&frame)
                    .map_err(|e| ArchiveError::io("writing the bundle", e))?;
                table.push(frame.len() as u32, len as u32);
                progress(len as u64);
                Ok(())
            },
        )
    }

    /// Writes the end-of-archive marker and the seek table; returns the output and the table.
    pub fn finish(mut self) -> Result<(W, SeekTable), ArchiveError> {
        let mut compressor = FrameCompressor::new(self.options.level)
            .map_err(|e| ArchiveError::io("compressing a frame", e))?;
        let end = compressor
            .compress(&END_OF_ARCHIVE)
            .map_err(|e| ArchiveError::io("compressing a frame", e))?;
        self.out
            .write_all(&end)
            .map_err(|e| ArchiveError::io("writing the bundle", e))?;
        self.table.push(end.len() as u32, END_OF_ARCHIVE.len() as u32);
        self.out
            .write_all(&self.table.encode())
            .and_then(|()| self.out.flush())
            .map_err(|e| ArchiveError::io("writing the bundle", e))?;
        Ok((self.out, self.table))
    }
}

/// Cuts members into frame-sized slices of the tar stream; a frame never spans two members.
struct Chunker<I> {
    members: I,
    current: Option<Open>,
    options: WriterOptions,
}

/// The member being cut: its pending header, its reader and how much is left.
struct Open {
    path: String,
    size: u64,
    header: Vec<u8>,
    reader: Box<dyn Read>,
    remaining: u64,
    padding: u64,
}

impl<I: Iterator<Item = Member>> Chunker<I> {
    fn open(&self, member: Member) -> Result<Open, ArchiveError> {
        let header = member_header(&member.path, member.size, self.options.mtime)?;
        let reader: Box<dyn Read> = match member.content {
            Content::Bytes(data) => Box::new(std::io::Cursor::new(data)),
            Content::File(path) => Box::new(
                File::open(&path)
                    .map_err(|e| ArchiveError::io(format!("opening {}", path.display()), e))?,
            ),
        };
        Ok(Open {
            path: member.path,
            size: member.size,
            header,
            reader,
            remaining: member.size,
            padding: padding(member.size),
        })
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ArchiveError> {
        let open = match self.current.take() {
            Some(open) => open,
            None => match self.members.next() {
                Some(member) => self.open(member)?,
                None => return Ok(None),
            },
        };
        let mut open = open;
        let frame_size = self.options.frame_size.max(MIN_FRAME_SIZE);
        let mut chunk = std::mem::take(&mut open.header);
        let room = (frame_size.saturating_sub(chunk.len()) as u64).min(open.remaining);
        let start = chunk.len();
        chunk.resize(start + room as usize, 0);
        let got = read_full(&mut open.reader, &mut chunk[start..])
            .map_err(|e| ArchiveError::io(format!("reading {}", open.path), e))?;
        if got < room as usize {
            return Err(ArchiveError::SourceSize {
                path: open.path,
                expected: open.size,
                actual: open.size - open.remaining + got as u64,
            });
        }
        open.remaining -= room;
        if open.remaining == 0 {
            let mut probe = [0u8; 1];
            let extra = read_full(&mut open.reader, &mut probe)
                .map_err(|e| ArchiveError::io(format!("reading {}", open.path), e))?;
            if extra > 0 {
                return Err(ArchiveError::SourceSize {
                    path: open.path,
                    expected: open.size,
                    actual: open.size + 1,
                });
            }
            let pad = open.padding.min(frame_size.saturating_sub(chunk.len()) as u64);
            chunk.resize(chunk.len() + pad as usize, 0);
            open.padding -= pad;
        }
        if open.remaining > 0 || open.padding > 0 {
            self.current = Some(open);
        }
        Ok(Some(chunk))
    }
}

impl<I: Iterator<Item = Member>> Iterator for Chunker<I> {
    type Item = Result<Vec<u8>, ArchiveError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
