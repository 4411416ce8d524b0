//! A blob's bytes as they arrive from wherever they are read (a bundle member, memory), in
//! order, a piece at a time: what the registry client uploads from and what the bundle
//! reader produces, so neither needs to know the other.

use bytes::Bytes;

/// The receiving end of a blob's bytes: pieces in order; an error ends the stream.
pub type Pieces = tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>;

/// Pieces holding `bytes[offset..offset + len]` (clamped to `bytes`), ready at once.
pub fn pieces_of(bytes: &Bytes, offset: u64, len: u64) -> Pieces {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let end = start
        .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
        .min(bytes.len());
    // The channel has room for the one piece and nothing was sent yet: this cannot fail.
    let _ = tx.try_send(Ok(bytes.slice(start..end)));
    rx
}
