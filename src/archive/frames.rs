//! One zstd frame at a time: compressing a slice of the tar stream, and decompressing a frame
//! while checking it against its seek-table entry.

use super::{ArchiveError, Frame};
use zstd::zstd_safe;

/// A reusable compression context set up for bundle frames: content size and checksum in
/// every frame header, so frames are self-describing and corruption is detected.
pub struct FrameCompressor(zstd::bulk::Compressor<'static>);

impl FrameCompressor {
    /// A context compressing at `level`.
    pub fn new(level: i32) -> std::io::Result<Self> {
        let mut c = zstd::bulk::Compressor::new(level)?;
        c.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
        c.set_parameter(zstd::stream::raw::CParameter::ContentSizeFlag(true))?;
        Ok(FrameCompressor(c))
    }

    /// Compresses `data` into one complete zstd frame.
    pub fn compress(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        self.0.compress(data)
    }
}

/// A reusable decompression context.
pub struct FrameDecompressor(zstd::bulk::Decompressor<'static>);

impl FrameDecompressor {
    /// A fresh context.
    pub fn new() -> std::io::Result<Self> {
        zstd::bulk::Decompressor::new().map(FrameDecompressor)
    }

    /// Decompresses frame `index`, whose bytes are `compressed`, checking that it is exactly
    /// one zstd frame that yields exactly the size the seek table promises.
    pub fn decompress(
        &mut self,
        index: usize,
        frame: &Frame,
        compressed: &[u8],
    ) -> Result<Vec<u8>, ArchiveError> {
        let fail = |reason: String| ArchiveError::Frame {
            index,
            offset: frame.offset,
            reason,
        };
        match zstd_safe::find_frame_compressed_size(compressed) {
            Ok(n) if n == compressed.len() => {}
            Ok(n) => {
                return Err(fail(format!(
                    "the frame is {n} bytes but the seek table says {}",
                    compressed.len()
                )))
            }
            Err(code) => return Err(fail(zstd_safe::get_error_name(code).to_string())),
        }
        match zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(n)) if n == u64::from(frame.decompressed) => {}
            Ok(Some(n)) => {
                return Err(fail(format!(
                    "the frame holds {n} bytes but the seek table says {}",
                    frame.decompressed
                )))
            }
            _ => return Err(fail("the frame header does not state its size".into())),
        }
        let mut out = Vec::with_capacity(frame.decompressed as usize);
        let n = self
            .0
            .decompress_to_buffer(compressed, &mut out)
            .map_err(|e| fail(e.to_string()))?;
        if n != frame.decompressed as usize {
            return Err(fail(format!("decompressed to {n} bytes")));
        }
        Ok(out)
    }
}
