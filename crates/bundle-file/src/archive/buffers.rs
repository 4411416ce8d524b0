//! A small pool of frame-sized buffers, so that the pipeline reuses the same few allocations
//! instead of faulting fresh pages in for every frame. It holds at most `max` idle buffers.

use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Idle buffers ready for reuse.
#[derive(Debug)]
pub struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
    max: usize,
}

impl BufferPool {
    /// A pool keeping at most `max` idle buffers.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            idle: Mutex::new(Vec::new()),
            max,
        })
    }

    /// An empty buffer with at least `capacity` bytes of room.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut buf = reused.unwrap_or_default();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Returns a buffer for reuse (dropped if the pool is full).
    pub fn give(&self, buf: Vec<u8>) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max {
                idle.push(buf);
            }
        }
    }
}

impl BufferPool {
    /// Hands `buf` out as shared bytes; it comes back to the pool when the last piece of it
    /// is dropped.
    pub fn share(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            buf,
            pool: Arc::clone(self),
        })
    }
}

/// A buffer out of the pool as `Bytes`.
struct Lent {
    buf: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}
