//! One zstd frame at a time: compressing a slice of the tar stream, and decompressing a frame
//! while checking it against its seek-table entry.

use super::{ArchiveError, Frame};
use zstd::zstd_safe;

/// Size of the sample that decides whether a slice is worth compressing.
const SAMPLE_LEN: usize = 64 * 1024;
/// A sample that does not shrink below this share of its size (in 1/1000) marks the slice as
/// incompressible (already compressed data, such as gzip image layers).
const INCOMPRESSIBLE_PER_MILLE: usize = 970;
/// Largest block of a zstd frame.
const MAX_BLOCK: usize = 128 * 1024;
/// zstd frame magic number.
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// A reusable compression context set up for bundle frames: content size and checksum in
/// every frame header, so frames are self-describing and corruption is detected. Slices whose
/// sample does not compress are stored in raw blocks, which costs a copy instead of a search.
pub struct FrameCompressor {
    full: zstd::bulk::Compressor<'static>,
    probe: zstd::bulk::Compressor<'static>,
}

impl FrameCompressor {
    /// A context compressing at `level`.
    pub fn new(level: i32) -> std::io::Result<Self> {
        let mut full = zstd::bulk::Compressor::new(level)?;
        full.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
        full.set_parameter(zstd::stream::raw::CParameter::ContentSizeFlag(true))?;
        let probe = zstd::bulk::Compressor::new(1)?;
        Ok(FrameCompressor { full, probe })
    }

    /// Compresses `data` into one complete zstd frame.
    pub fn compress(&mut self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.compress_into(data, &mut out)?;
        Ok(out)
    }

    /// Compresses `data` into one complete zstd frame written to `out` (which is cleared).
    pub fn compress_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        out.clear();
        if data.len() >= 2 * SAMPLE_LEN {
            let sample = &data[..SAMPLE_LEN];
            out.reserve(zstd_safe::compress_bound(SAMPLE_LEN));
            let probed = self.probe.compress_to_buffer(sample, out)?;
            out.clear();
            if probed * 1000 >= sample.len() * INCOMPRESSIBLE_PER_MILLE {
                raw_frame_into(data, out);
                return Ok(());
            }
        }
        out.reserve(zstd_safe::compress_bound(data.len()));
        self.full.compress_to_buffer(data, out)?;
        Ok(())
    }
}

/// A zstd frame holding `data` in raw (stored) blocks: single-segment header with the content
/// size, blocks of at most 128 KiB, and the XXH64 content checksum, as RFC 8878 describes.
pub fn raw_frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    raw_frame_into(data, &mut out);
    out
}

/// [`raw_frame`] written into `out` (appended).
pub fn raw_frame_into(data: &[u8], out: &mut Vec<u8>) {
    let len = data.len();
    let blocks = len.div_ceil(MAX_BLOCK).max(1);
    out.reserve(len + 3 * blocks + 17);
    out.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
    // Frame header descriptor: content-size field size, single segment, checksum.
    let (fcs_flag, fcs): (u8, Vec<u8>) = if len < 256 {
        (0, vec![len as u8])
    } else if len < 65536 + 256 {
        (1, ((len - 256) as u16).to_le_bytes().to_vec())
    } else {
        (2, (len as u32).to_le_bytes().to_vec())
    };
    out.push((fcs_flag << 6) | (1 << 5) | (1 << 2));
    out.extend_from_slice(&fcs);
    let mut chunks = data.chunks(MAX_BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    let checksum = xxhash_rust::xxh64::xxh64(data, 0) as u32;
    out.extend_from_slice(&checksum.to_le_bytes());
}

/// A reusable decompression context, with a reusable buffer for compressed input.
pub struct FrameDecompressor {
    context: zstd::bulk::Decompressor<'static>,
    /// Room for a frame's compressed bytes, kept from frame to frame.
    pub(crate) input: Vec<u8>,
}

impl FrameDecompressor {
    /// A fresh context.
    pub fn new() -> std::io::Result<Self> {
        Ok(FrameDecompressor {
            context: zstd::bulk::Decompressor::new()?,
            input: Vec::new(),
        })
    }

    /// Decompresses frame `index`, whose bytes are `compressed`, into `out` (emptied first),
    /// checking that it is exactly one zstd frame that yields exactly the size the seek table
    /// promises.
    pub fn decompress(
        &mut self,
        index: usize,
        frame: &Frame,
        compressed: &[u8],
        mut out: Vec<u8>,
    ) -> Result<Vec<u8>, ArchiveError> {
        check_frame(index, frame, compressed)?;
        let fail = |reason: String| ArchiveError::Frame {
            index,
            offset: frame.offset,
            reason,
        };
        out.clear();
        out.reserve(frame.decompressed as usize);
        let n = self
            .context
            .decompress_to_buffer(compressed, &mut out)
            .map_err(|e| fail(e.to_string()))?;
        if n != frame.decompressed as usize {
            return Err(fail(format!("decompressed to {n} bytes")));
        }
        Ok(out)
    }
}

/// Checks, without decompressing, that `compressed` (frame `index` as stored) is exactly one
/// zstd frame with a content checksum, whose header states the decompressed size the seek
/// table promises.
pub fn check_frame(index: usize, frame: &Frame, compressed: &[u8]) -> Result<(), ArchiveError> {
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
    // Frame header descriptor, after the 4-byte magic: bit 2 is the checksum flag.
    if compressed.get(4).is_none_or(|d| d & 0x04 == 0) {
        return Err(fail("the frame has no content checksum".into()));
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 88172645463325252;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn raw_frames_decompress_with_libzstd_and_keep_their_checksum() {
        for len in [0usize, 1, 255, 256, 65791, 65792, 131072, 131073, 2 << 20] {
            let data = noise(len);
            let frame = raw_frame(&data);
            let back = zstd::bulk::decompress(&frame, len.max(1)).unwrap();
            assert_eq!(back, data, "length {len}");
            let entry = Frame {
                offset: 0,
                compressed: frame.len() as u32,
                data_offset: 0,
                decompressed: len as u32,
            };
            if len > 0 {
                let mut d = FrameDecompressor::new().unwrap();
                assert_eq!(d.decompress(0, &entry, &frame, Vec::new()).unwrap(), data);
                let mut bad = frame.clone();
                let at = bad.len() / 2;
                bad[at] ^= 1;
                assert!(
                    d.decompress(0, &entry, &bad, Vec::new()).is_err(),
                    "length {len}"
                );
            }
        }
    }

    #[test]
    fn a_frame_without_a_checksum_is_refused() {
        let data = b"some data".repeat(10);
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let entry = Frame {
            offset: 0,
            compressed: frame.len() as u32,
            data_offset: 0,
            decompressed: data.len() as u32,
        };
        let err = FrameDecompressor::new()
            .unwrap()
            .decompress(0, &entry, &frame, Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("no content checksum"), "{err}");
    }

    #[test]
    fn incompressible_slices_are_stored_and_text_is_compressed() {
        let mut c = FrameCompressor::new(3).unwrap();
        let data = noise(1 << 20);
        assert_eq!(c.compress(&data).unwrap(), raw_frame(&data));
        let text = "a line of text that repeats\n".repeat(40_000);
        assert!(c.compress(text.as_bytes()).unwrap().len() < text.len() / 10);
    }
}
