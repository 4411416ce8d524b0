//! A member's data streamed from a blocking reader thread through a bounded channel, a frame
//! at a time and without copying: how the registry server answers blob reads and how `load`
//! feeds its uploads, with memory bounded by a few frames whatever the member's size.

use std::sync::Arc;

use oci::Pieces;
use tokio::sync::mpsc;

use crate::archive::ReadAt;
use crate::{Bundle, BundleError, Located};

/// Pieces waiting in the channel at most (each at most one frame).
const DEPTH: usize = 1;

/// Starts reading `member`'s data `[start, start + len)` (clamped to the member) on a blocking
/// thread; the thread stops early when the receiver is dropped. Must be called inside a tokio
/// runtime.
pub fn member_pieces<S: ReadAt + 'static>(
    bundle: Arc<Bundle<S>>,
    member: Located,
    start: u64,
    len: u64,
) -> Pieces {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut reader = bundle.member_reader(&member, start, len);
        loop {
            let piece = match reader.next_piece() {
                Ok(Some(piece)) => Ok(piece),
                Ok(None) => break,
                Err(source) => Err(std::io::Error::other(BundleError::InMember {
                    path: member.path.clone(),
                    source,
                })),
            };
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                break;
            }
        }
    });
    rx
}
