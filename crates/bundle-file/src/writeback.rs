//! Writing a large file while the disk already takes it: a thread of its own flushes the file
//! to disk (`fdatasync`) each time enough new bytes were written, so the `fsync` that must come
//! before the rename into place waits only for the last bytes, not for the whole bundle.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// New bytes after which the flushing thread is woken (if it is not still busy).
const STEP: u64 = 32 << 20;

/// A file being written, flushed to disk in the background as it grows. Dropped without
/// [`Writeback::into_file`] (an error path), the flushing thread ends after its current flush.
pub struct Writeback {
    file: File,
    since_wake: u64,
    wake: Option<SyncSender<()>>,
    flusher: JoinHandle<io::Result<()>>,
}

impl Writeback {
    /// Starts the flushing thread for `file`.
    pub fn new(file: File) -> io::Result<Self> {
        let (wake, woken) = sync_channel::<()>(1);
        let flushed = file.try_clone()?;
        let flusher = std::thread::Builder::new()
            .name("writeback".into())
            .spawn(move || {
                for () in woken {
                    flushed.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Writeback {
            file,
            since_wake: 0,
            wake: Some(wake),
            flusher,
        })
    }

    /// Stops the flushing thread and hands the file back; an error the thread met (a failing
    /// disk) is returned here.
    pub fn into_file(self) -> io::Result<File> {
        let Writeback {
            file,
            wake,
            flusher,
            ..
        } = self;
        drop(wake);
        flusher
            .join()
            .map_err(|_| io::Error::other("the writeback thread failed"))??;
        Ok(file)
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.since_wake += n as u64;
        if self.since_wake >= STEP {
            self.since_wake = 0;
            if let Some(wake) = &self.wake {
                match wake.try_send(()) {
                    // Busy with the previous flush: the next wake-up covers these bytes too.
                    Ok(()) | Err(TrySendError::Full(())) => {}
                    Err(TrySendError::Disconnected(())) => {
                        // The thread stopped on an error, which `into_file` reports.
                        self.wake = None;
                    }
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn every_byte_written_is_in_the_file_handed_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = Writeback::new(File::create(&path).unwrap()).unwrap();
        let block: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for _ in 0..70 {
            w.write_all(&block).unwrap();
        }
        let file = w.into_file().unwrap();
        assert_eq!(file.metadata().unwrap().len(), 70 << 20);
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert!(back.chunks(1 << 20).all(|c| c == block.as_slice()));
    }
}
