//! Write-stall detection for a connection, like nginx's `send_timeout`: a connection whose
//! writes have made no progress for a while is dropped, so a client that stopped reading (or
//! vanished) gives back the blob stream it holds, with its memory and its permit.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::connections::Connection;

/// When the current write stall began, in milliseconds after `base` plus one; 0 when the last
/// write went through.
struct Stall {
    base: Instant,
    since: AtomicU64,
}

impl Stall {
    fn note(&self, pending: bool) {
        if !pending {
            self.since.store(0, Ordering::Relaxed);
        } else if self.since.load(Ordering::Relaxed) == 0 {
            let now = self.base.elapsed().as_millis() as u64 + 1;
            self.since.store(now, Ordering::Relaxed);
        }
    }

    fn stalled_for(&self) -> Duration {
        match self.since.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            since => self
                .base
                .elapsed()
                .saturating_sub(Duration::from_millis(since - 1)),
        }
    }
}

/// A connection's byte stream, noting when its writes stop making progress and when it
/// last read something.
pub struct Watched<IO> {
    io: IO,
    stall: Arc<Stall>,
    connection: Arc<Connection>,
}

/// The other end of [`Watched`]: completes once writes have been stuck for `timeout`.
pub struct Watchdog(Arc<Stall>);

/// Wraps `io` of `connection`, returning it and its watchdog.
pub fn watch<IO>(io: IO, connection: Arc<Connection>) -> (Watched<IO>, Watchdog) {
    let stall = Arc::new(Stall {
        base: Instant::now(),
        since: AtomicU64::new(0),
    });
    (
        Watched {
            io,
            stall: Arc::clone(&stall),
            connection,
        },
        Watchdog(stall),
    )
}

impl Watchdog {
    /// Completes when a write has been pending for at least `timeout`.
    pub async fn stalled(&self, timeout: Duration) {
        let period = (timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            if self.0.stalled_for() >= timeout {
                return;
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.connection.read();
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.stall.note(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.stall.note(result.is_pending());
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.stall.note(result.is_pending());
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::connections::Table;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_peer_that_stops_reading_trips_the_watchdog_and_one_that_reads_does_not() {
        // A pipe with room for 1 KiB, never read: the second write blocks.
        let table = Arc::new(Table::new(4));
        let entry = table.admit().unwrap();
        let (ours, theirs) = tokio::io::duplex(1024);
        let (mut watched, dog) = watch(ours, Arc::clone(entry.connection()));
        let writer = tokio::spawn(async move {
            let _ = watched.write_all(&[7u8; 4096]).await;
        });
        tokio::time::timeout(
            Duration::from_secs(5),
            dog.stalled(Duration::from_millis(200)),
        )
        .await
        .expect("the stall was seen");
        writer.abort();
        drop(theirs);

        // Read as fast as it is written: no stall however long it runs.
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let (mut watched, dog) = watch(ours, Arc::clone(entry.connection()));
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut theirs, &mut tokio::io::sink()).await;
        });
        let writing = async {
            for _ in 0..200 {
                watched.write_all(&[7u8; 4096]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::select! {
            () = writing => {}
            () = dog.stalled(Duration::from_millis(200)) => panic!("a reading peer was called stalled"),
        }
    }
}
