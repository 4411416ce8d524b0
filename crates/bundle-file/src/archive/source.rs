//! Positional reads from a bundle file, so that many readers can share one open file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// A byte source that supports reads at any offset from several threads at once.
pub trait ReadAt: Send + Sync {
    /// Fills `buf` with the bytes at `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Total length in bytes.
    fn len(&self) -> u64;
    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A bundle file, whole or split into volumes (`B.001`, `B.002`, ...), read as one byte
/// range without joining the parts on disk. Lengths are taken once at open.
#[derive(Debug)]
pub struct FileSource {
    /// Each part with the offset of its first byte in the whole.
    parts: Vec<(File, u64)>,
    len: u64,
}

/// Name of part `n` (1-based) of the split bundle `base`: `base.001`, `base.002`, ...
pub fn part_path(base: &std::path::Path, n: usize) -> std::path::PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".{n:03}"));
    std::path::PathBuf::from(name)
}

impl FileSource {
    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileSource {
            parts: vec![(file, 0)],
            len,
        })
    }

    /// Opens `path`: the file itself, or, when `path` names the first part (`B.001`) or a
    /// bundle that exists only as parts (`B` with `B.001` beside it), every part in order.
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let text = path.to_string_lossy();
        let base = match text.strip_suffix(".001") {
            Some(base) => Some(std::path::PathBuf::from(base)),
            None if !path.exists() && part_path(path, 1).exists() => Some(path.to_path_buf()),
            None => None,
        };
        let Some(base) = base else {
            return FileSource::new(File::open(path)?);
        };
        let mut parts = Vec::new();
        let mut len = 0;
        for n in 1.. {
            let part = part_path(&base, n);
            let file = match File::open(&part) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && n > 1 => break,
                Err(e) => return Err(e),
            };
            let size = file.metadata()?.len();
            if size == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is empty", part.display()),
                ));
            }
            parts.push((file, len));
            len += size;
        }
        Ok(FileSource { parts, len })
    }

    /// Number of files the bundle is read from.
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }
}

impl ReadAt for FileSource {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let index = self.parts.partition_point(|(_, start)| *start <= offset);
            let Some((file, start)) = index.checked_sub(1).and_then(|i| self.parts.get(i)) else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            let end = self
                .parts
                .get(index)
                .map_or(self.len, |(_, next_start)| *next_start);
            if offset >= end {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = ((end - offset) as usize).min(buf.len());
            FileExt::read_exact_at(file, &mut buf[..take], offset - start)?;
            buf = &mut buf[take..];
            offset += take as u64;
        }
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match start.checked_add(buf.len()) {
            Some(end) if end <= <[u8]>::len(self) => {
                buf.copy_from_slice(&self[start..end]);
                Ok(())
            }
            _ => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}
