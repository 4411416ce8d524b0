//! The global content-addressed blob cache: `ROOT/blobs/sha256/<hex>`, written atomically
//! (temporary file, fsync, rename) so an interrupted build leaves only whole, named blobs; a
//! blob is trusted only after its content hashes to its name.

use oci::layout::BLOBS_DIR;
use oci::{Digest, DigestWriter};

use std::path::{Path, PathBuf};

/// Age after which a partial download in the cache's `tmp/` is taken as abandoned.
pub const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Environment variable overriding the cache location.
pub const CACHE_DIR_ENV: &str = "BUNDLE_CACHE_DIR";

/// Cache errors, naming the blob or path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O on a cache path.
    #[error("blob cache {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Content that does not hash to the name it was stored under.
    #[error("blob {expected}: content hashes to {actual}")]
    Corrupt { expected: Digest, actual: Digest },
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The blob cache at a root directory.
#[derive(Debug, Clone)]
pub struct BlobCache {
    root: PathBuf,
}

impl BlobCache {
    /// The default root: `$BUNDLE_CACHE_DIR`, else `$XDG_CACHE_HOME/messenger-bundle`, else
    /// `~/.cache/messenger-bundle`.
    pub fn default_root() -> PathBuf {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV) {
            return PathBuf::from(dir);
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("messenger-bundle")
    }

    /// Opens (creating) the cache at `root`, removing partial downloads that an interrupted
    /// build left more than [`STALE_AFTER`] ago (a running build's are younger).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join(BLOBS_DIR), root.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        }
        let tmp = root.join("tmp");
        let entries = std::fs::read_dir(&tmp).map_err(|e| io(&tmp, e))?;
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_AFTER);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(BlobCache { root })
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives once cached.
    pub fn file_of(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest.hex())
    }

    /// Whether `digest` is cached whole: present, of `size` bytes (if known) and hashing to its
    /// name. A present but wrong entry is deleted so it will be fetched again. Reads the whole
    /// blob: call it from a blocking context.
    pub fn verify(&self, digest: &Digest, size: Option<u64>) -> Result<bool, StoreError> {
        let path = self.file_of(digest);
        let mut file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io(&path, e)),
        };
        let len = file.metadata().map_err(|e| io(&path, e))?.len();
        if size.is_some_and(|s| s != len) {
            self.evict(digest)?;
            return Ok(false);
        }
        let (actual, _) = Digest::of_reader(&mut file).map_err(|e| io(&path, e))?;
        if actual != *digest {
            self.evict(digest)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether `digest` is in the cache with `size` bytes, without reading it. The build
    /// trusts such an entry's content only once the packer hashed it to its name (a blob that
    /// does not is evicted and the build fails; docs/architecture.md). A present entry of
    /// another size is deleted so it will be fetched again.
    pub fn present(&self, digest: &Digest, size: u64) -> Result<bool, StoreError> {
        let path = self.file_of(digest);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == size => Ok(true),
            Ok(_) => self.evict(digest).map(|()| false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Removes a cached blob (missing is fine).
    pub fn evict(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.file_of(digest);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path, e)),
            _ => Ok(()),
        }
    }

    /// A temporary file to download `digest` into; [`PendingBlob::commit_checked`] puts it in place.
    pub fn pending(&self, digest: &Digest) -> Result<PendingBlob, StoreError> {
        let dir = self.root.join("tmp");
        let temp = tempfile::Builder::new()
            .prefix(&format!("{}.", digest.hex()))
            .tempfile_in(&dir)
            .map_err(|e| io(&dir, e))?;
        Ok(PendingBlob {
            temp,
            target: self.file_of(digest),
            digest: digest.clone(),
        })
    }

    /// A temporary file for content whose digest is not known yet.
    pub fn incoming(&self) -> Result<IncomingBlob, StoreError> {
        let dir = self.root.join("tmp");
        let temp = tempfile::Builder::new()
            .prefix("incoming.")
            .tempfile_in(&dir)
            .map_err(|e| io(&dir, e))?;
        Ok(IncomingBlob {
            writer: DigestWriter::new(temp),
            blobs: self.root.join(BLOBS_DIR),
        })
    }

    /// Stores a copy of the file at `path` under its digest, streamed.
    pub fn put_file(&self, path: &Path) -> Result<Digest, StoreError> {
        let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let mut incoming = self.incoming()?;
        std::io::copy(&mut file, &mut incoming).map_err(|e| io(path, e))?;
        Ok(incoming.commit()?.0)
    }

    /// Stores `bytes` (a manifest or index this tool wrote) under their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if self.verify(&digest, Some(bytes.len() as u64))? {
            return Ok(digest);
        }
        let mut pending = self.pending(&digest)?;
        std::io::Write::write_all(pending.file(), bytes).map_err(|e| io(pending.path(), e))?;
        pending.commit_checked(true)?;
        Ok(digest)
    }
}

/// Content of a digest not known in advance (a download at lock time), hashed as it is
/// written and stored under its digest by [`IncomingBlob::commit`]; removed unless committed.
pub struct IncomingBlob {
    writer: DigestWriter<tempfile::NamedTempFile>,
    blobs: PathBuf,
}

impl IncomingBlob {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.writer.written()
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.writer.digest()
    }

    /// Syncs the content and renames it to its digest's name; returns the digest and size.
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let (temp, digest, size) = self.writer.finish();
        let path = temp.path().to_path_buf();
        temp.as_file().sync_all().map_err(|e| io(&path, e))?;
        let target = self.blobs.join(digest.hex());
        temp.persist(&target).map_err(|e| io(&target, e.error))?;
        Ok((digest, size))
    }
}

impl std::io::Write for IncomingBlob {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// A blob being downloaded into the cache; removed unless committed.
pub struct PendingBlob {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
    digest: Digest,
}

impl PendingBlob {
    /// The file to write the content into.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.temp.as_file_mut()
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        self.temp.path()
    }

    /// Syncs the content and renames it into place. `rehash` re-reads it to check the digest
    /// (for writers that did not hash while writing).
    pub fn commit_checked(self, rehash: bool) -> Result<PathBuf, StoreError> {
        let path = self.temp.path().to_path_buf();
        self.temp.as_file().sync_all().map_err(|e| io(&path, e))?;
        if rehash {
            let mut file = std::fs::File::open(&path).map_err(|e| io(&path, e))?;
            let (actual, _) = Digest::of_reader(&mut file).map_err(|e| io(&path, e))?;
            if actual != self.digest {
                return Err(StoreError::Corrupt {
                    expected: self.digest,
                    actual,
                });
            }
        }
        self.temp
            .persist(&self.target)
            .map_err(|e| io(&self.target, e.error))?;
        Ok(self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_bytes_verify_and_a_corrupted_entry_is_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let digest = cache.put_bytes(b"manifest bytes").unwrap();
        assert!(cache.verify(&digest, Some(14)).unwrap());
        assert!(!cache.verify(&digest, Some(15)).unwrap());
        let digest = cache.put_bytes(b"manifest bytes").unwrap();
        std::fs::write(cache.file_of(&digest), b"manifest bytez").unwrap();
        assert!(!cache.verify(&digest, None).unwrap());
        assert!(!cache.file_of(&digest).exists());
    }

    #[test]
    fn an_uncommitted_download_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let digest = Digest::of(b"x");
        {
            let mut pending = cache.pending(&digest).unwrap();
            std::io::Write::write_all(pending.file(), b"partial").unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(!cache.file_of(&digest).exists());
        let mut wrong = cache.pending(&digest).unwrap();
        std::io::Write::write_all(wrong.file(), b"y").unwrap();
        assert!(matches!(
            wrong.commit_checked(true),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
