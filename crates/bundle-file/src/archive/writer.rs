//! Writes members as a tar stream of independent zstd frames, compressing frames in parallel
//! and in a deterministic way, then closes the archive with the end marker and the seek table.

use super::buffers::BufferPool;
use super::frames::{raw_frame, FrameCompressor};
use super::parallel::{default_threads, ordered_map};
use super::tar::{member_header, padding, END_OF_ARCHIVE};
use super::{ArchiveError, SeekTable, DEFAULT_LEVEL, FRAME_SIZE};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// What [`Writer::write_members`] hands over after each frame is written. Its buffer goes
/// back to the writer's pool when it is dropped.
pub struct Written {
    /// Index of the member in the list being written.
    pub member: usize,
    /// The frame's uncompressed bytes (header, data, padding).
    chunk: Vec<u8>,
    /// Where the member's data lies in `chunk`.
    data: std::ops::Range<usize>,
    pool: Arc<BufferPool>,
}

impl Written {
    /// The member data the frame carried.
    pub fn data(&self) -> &[u8] {
        &self.chunk[self.data.clone()]
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.chunk));
    }
}

/// A member (header, data, padding) as stored zstd frames of at most [`FRAME_SIZE`]
/// uncompressed bytes each; returns each frame with its uncompressed length. The frames' sizes
/// depend only on the path and the data's length.
pub fn stored_member_frames(
    path: &str,
    data: &[u8],
    mtime: u64,
) -> Result<Vec<(Vec<u8>, usize)>, ArchiveError> {
    let mut tar = member_header(path, data.len() as u64, mtime)?;
    tar.extend_from_slice(data);
    tar.resize(tar.len() + padding(data.len() as u64) as usize, 0);
    Ok(tar
        .chunks(FRAME_SIZE)
        .map(|chunk| (raw_frame(chunk), chunk.len()))
        .collect())
}

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

    /// Writes `members` in order. After each frame is written, `written` receives it: which
    /// member (by index in `members`) it belonged to and its uncompressed bytes, and the frame
    /// as written (lent for the call only). Workers read and compress slices in parallel; this
    /// thread only writes frames out, in order.
    pub fn write_members(
        &mut self,
        members: impl IntoIterator<Item = Member>,
        written: &mut dyn FnMut(Written, &[u8]),
    ) -> Result<(), ArchiveError> {
        let slices = Slicer {
            members: members.into_iter().enumerate(),
            current: None,
            options: self.options,
        };
        let level = self.options.level;
        let window = self.options.threads * 4;
        let pool = BufferPool::new(2 * window + 4);
        let (out, table) = (&mut self.out, &mut self.table);
        ordered_map(
            self.options.threads,
            window,
            slices,
            || FrameCompressor::new(level),
            |compressor, slice: Slice| {
                let chunk = slice.read(&pool)?;
                let mut frame = pool.take(0);
                match compressor {
                    Ok(c) => c.compress_into(&chunk, &mut frame),
                    Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
                }
                .map_err(|e| ArchiveError::io("compressing a frame", e))?;
                Ok((slice, chunk, frame))
            },
            |result: Result<(Slice, Vec<u8>, Vec<u8>), ArchiveError>| {
                let (slice, chunk, frame) = result?;
                out.write_all(&frame)
                    .map_err(|e| ArchiveError::io("writing the bundle", e))?;
                table.push(frame.len() as u32, chunk.len() as u32);
                let start = slice.header.len();
                let done = Written {
                    member: slice.member,
                    chunk,
                    data: start..start + slice.len,
                    pool: Arc::clone(&pool),
                };
                written(done, &frame);
                pool.give(frame);
                Ok(())
            },
        )
    }

    /// Writes each member as stored (uncompressed) frames, whose sizes depend only on the
    /// member's path and size: the space can be overwritten later with other content of the
    /// same size (see [`stored_member_frames`]).
    pub fn write_stored_members(&mut self, members: &[Member]) -> Result<(), ArchiveError> {
        for member in members {
            let Content::Bytes(data) = &member.content else {
                return Err(ArchiveError::io(
                    "writing a stored member",
                    std::io::ErrorKind::InvalidInput.into(),
                ));
            };
            for (frame, len) in stored_member_frames(&member.path, data, self.options.mtime)? {
                self.out
                    .write_all(&frame)
                    .map_err(|e| ArchiveError::io("writing the bundle", e))?;
                self.table.push(frame.len() as u32, len as u32);
            }
        }
        Ok(())
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
        self.table
            .push(end.len() as u32, END_OF_ARCHIVE.len() as u32);
        self.out
            .write_all(&self.table.encode())
            .and_then(|()| self.out.flush())
            .map_err(|e| ArchiveError::io("writing the bundle", e))?;
        Ok((self.out, self.table))
    }
}

/// Where a slice's data comes from.
enum Data {
    Bytes(Arc<Vec<u8>>),
    File(Arc<File>),
}

/// One frame's worth of the tar stream, described rather than read: the worker reads it.
struct Slice {
    member: usize,
    path: Arc<str>,
    header: Vec<u8>,
    data: Data,
    offset: u64,
    len: usize,
    padding: usize,
}

impl Slice {
    /// The slice's bytes: header (if it starts the member), data, padding (if it ends it).
    fn read(&self, pool: &BufferPool) -> Result<Vec<u8>, ArchiveError> {
        let mut chunk = pool.take(self.header.len() + self.len + self.padding);
        chunk.extend_from_slice(&self.header);
        let start = chunk.len();
        chunk.resize(start + self.len, 0);
        match &self.data {
            Data::Bytes(bytes) => {
                let from = self.offset as usize;
                chunk[start..].copy_from_slice(&bytes[from..from + self.len]);
            }
            Data::File(file) => file
                .read_exact_at(&mut chunk[start..], self.offset)
                .map_err(|e| ArchiveError::io(format!("reading {}", self.path), e))?,
        }
        chunk.resize(chunk.len() + self.padding, 0);
        Ok(chunk)
    }
}

/// Cuts members into frame-sized slices of the tar stream; a frame never spans two members.
struct Slicer<I> {
    members: I,
    current: Option<Open>,
    options: WriterOptions,
}

/// The member being cut: its pending header, its data and how much is left.
struct Open {
    member: usize,
    path: Arc<str>,
    header: Vec<u8>,
    data: Data,
    size: u64,
    offset: u64,
    padding: u64,
}

impl<I: Iterator<Item = (usize, Member)>> Slicer<I> {
    fn open(&self, (index, member): (usize, Member)) -> Result<Open, ArchiveError> {
        let header = member_header(&member.path, member.size, self.options.mtime)?;
        let data = match member.content {
            Content::Bytes(bytes) => {
                if bytes.len() as u64 != member.size {
                    return Err(ArchiveError::SourceSize {
                        path: member.path,
                        expected: member.size,
                        actual: bytes.len() as u64,
                    });
                }
                Data::Bytes(Arc::new(bytes))
            }
            Content::File(path) => {
                let file = File::open(&path)
                    .map_err(|e| ArchiveError::io(format!("opening {}", path.display()), e))?;
                let actual = file
                    .metadata()
                    .map_err(|e| ArchiveError::io(format!("reading {}", path.display()), e))?
                    .len();
                if actual != member.size {
                    return Err(ArchiveError::SourceSize {
                        path: member.path,
                        expected: member.size,
                        actual,
                    });
                }
                Data::File(Arc::new(file))
            }
        };
        Ok(Open {
            member: index,
            path: member.path.into(),
            header,
            data,
            size: member.size,
            offset: 0,
            padding: padding(member.size),
        })
    }

    fn next_slice(&mut self) -> Result<Option<Slice>, ArchiveError> {
        let mut open = match self.current.take() {
            Some(open) => open,
            None => match self.members.next() {
                Some(member) => self.open(member)?,
                None => return Ok(None),
            },
        };
        let frame_size = self.options.frame_size.max(MIN_FRAME_SIZE);
        let header = std::mem::take(&mut open.header);
        let len = (frame_size.saturating_sub(header.len()) as u64).min(open.size - open.offset);
        let offset = open.offset;
        open.offset += len;
        let mut pad = 0;
        if open.offset == open.size {
            let used = header.len() + len as usize;
            pad = open.padding.min(frame_size.saturating_sub(used) as u64);
            open.padding -= pad;
        }
        let slice = Slice {
            member: open.member,
            path: Arc::clone(&open.path),
            header,
            data: match &open.data {
                Data::Bytes(b) => Data::Bytes(Arc::clone(b)),
                Data::File(f) => Data::File(Arc::clone(f)),
            },
            offset,
            len: len as usize,
            padding: pad as usize,
        };
        if open.offset < open.size || open.padding > 0 {
            self.current = Some(open);
        }
        Ok(Some(slice))
    }
}

impl<I: Iterator<Item = (usize, Member)>> Iterator for Slicer<I> {
    type Item = Result<Slice, ArchiveError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_slice().transpose()
    }
}
