//! The zstd seekable format's seek table: a skippable frame at the end of the file that lists
//! every frame's compressed and decompressed size.

use super::{ArchiveError, ReadAt, MAX_FRAME_SIZE};

/// Magic number of the skippable frame that carries the seek table.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number closing the seek table footer.
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Footer: number of frames (4), descriptor (1), magic (4).
const FOOTER_LEN: u64 = 9;
/// Skippable frame header: magic (4), frame size (4).
const SKIPPABLE_HEADER_LEN: u64 = 8;
/// One entry without checksum: compressed size (4), decompressed size (4).
const ENTRY_LEN: u64 = 8;

/// One zstd frame's place in the file and in the decompressed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Offset of the frame in the compressed file.
    pub offset: u64,
    /// Size of the frame in the compressed file.
    pub compressed: u32,
    /// Offset of the frame's content in the decompressed stream.
    pub data_offset: u64,
    /// Size of the frame's content.
    pub decompressed: u32,
}

impl Frame {
    /// Offset just past the frame's content in the decompressed stream.
    pub fn data_end(&self) -> u64 {
        self.data_offset + u64::from(self.decompressed)
    }
}

/// All frames of a bundle file, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeekTable {
    frames: Vec<Frame>,
}

impl SeekTable {
    /// Appends a frame of the given sizes after the existing ones.
    pub fn push(&mut self, compressed: u32, decompressed: u32) {
        let (offset, data_offset) = self.frames.last().map_or((0, 0), |f| {
            (f.offset + u64::from(f.compressed), f.data_end())
        });
        self.frames.push(Frame {
            offset,
            compressed,
            data_offset,
            decompressed,
        });
    }

    /// The frames in file order.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }

    /// Size of the decompressed stream.
    pub fn data_len(&self) -> u64 {
        self.frames.last().map_or(0, Frame::data_end)
    }

    /// Size of all frames in the file, without the seek table.
    pub fn compressed_len(&self) -> u64 {
        self.frames
            .last()
            .map_or(0, |f| f.offset + u64::from(f.compressed))
    }

    /// Index of the frame whose content holds decompressed `offset`.
    pub fn frame_at(&self, offset: u64) -> Option<usize> {
        if offset >= self.data_len() {
            return None;
        }
        Some(self.frames.partition_point(|f| f.data_end() <= offset))
    }

    /// Keeps only the first `n` frames.
    pub fn truncate(&mut self, n: usize) {
        self.frames.truncate(n);
    }

    /// The skippable frame that stores this table.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.frames.len();
        let body = n as u64 * ENTRY_LEN + FOOTER_LEN;
        let mut out = Vec::with_capacity((SKIPPABLE_HEADER_LEN + body) as usize);
        out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        out.extend_from_slice(&(body as u32).to_le_bytes());
        for f in &self.frames {
            out.extend_from_slice(&f.compressed.to_le_bytes());
            out.extend_from_slice(&f.decompressed.to_le_bytes());
        }
        out.extend_from_slice(&(n as u32).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        out
    }

    /// Reads and checks the seek table at the end of `src`: it must describe frames that fill
    /// the file exactly up to the table.
    pub fn read(src: &(impl ReadAt + ?Sized)) -> Result<SeekTable, ArchiveError> {
        let bad = |reason: String| Err(ArchiveError::SeekTable(reason));
        let len = src.len();
        if len < FOOTER_LEN + SKIPPABLE_HEADER_LEN {
            return bad(format!("file of {len} bytes is too short to hold one"));
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        src.read_exact_at(&mut footer, len - FOOTER_LEN)
            .map_err(|e| ArchiveError::io("reading the seek table", e))?;
        let magic = u32::from_le_bytes([footer[5], footer[6], footer[7], footer[8]]);
        if magic != SEEKABLE_MAGIC {
            return bad(format!(
                "no seekable-format footer at the end of the file (found {magic:#010x}); \
                 the file is truncated or not a bundle"
            ));
        }
        if footer[4] != 0 {
            return bad(format!("unsupported descriptor byte {:#04x}", footer[4]));
        }
        let n = u64::from(u32::from_le_bytes([
            footer[0], footer[1], footer[2], footer[3],
        ]));
        let body = n * ENTRY_LEN + FOOTER_LEN;
        let table_len = SKIPPABLE_HEADER_LEN + body;
        if table_len > len {
            return bad(format!("{n} frames do not fit in a {len}-byte file"));
        }
        let mut raw = vec![0u8; (table_len - FOOTER_LEN) as usize];
        src.read_exact_at(&mut raw, len - table_len)
            .map_err(|e| ArchiveError::io("reading the seek table", e))?;
        let word = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
        if word(0) != SKIPPABLE_MAGIC {
            return bad("the seek table's skippable frame header is missing".into());
        }
        if u64::from(word(4)) != body {
            return bad(format!(
                "skippable frame size {} does not match {n} entries",
                word(4)
            ));
        }
        let mut table = SeekTable::default();
        for i in 0..n as usize {
            let at = SKIPPABLE_HEADER_LEN as usize + i * ENTRY_LEN as usize;
            let (compressed, decompressed) = (word(at), word(at + 4));
            if compressed == 0 || decompressed == 0 || decompressed > MAX_FRAME_SIZE {
                return bad(format!(
                    "frame {i} has impossible sizes ({compressed} compressed, {decompressed} \
                     decompressed)"
                ));
            }
            table.push(compressed, decompressed);
        }
        if table.compressed_len() != len - table_len {
            return bad(format!(
                "frames add up to {} bytes but {} bytes precede the table",
                table.compressed_len(),
                len - table_len
            ));
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_read_round_trips_and_locates_offsets() {
        let mut t = SeekTable::default();
        t.push(10, 100);
        t.push(20, 50);
        let mut file = vec![0u8; 30];
        file.extend(t.encode());
        let back = SeekTable::read(&file).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.frame_at(0), Some(0));
        assert_eq!(back.frame_at(99), Some(0));
        assert_eq!(back.frame_at(100), Some(1));
        assert_eq!(back.frame_at(150), None);
    }

    #[test]
    fn sizes_that_do_not_fill_the_file_are_refused() {
        let mut t = SeekTable::default();
        t.push(10, 100);
        let mut file = vec![0u8; 11];
        file.extend(t.encode());
        let err = SeekTable::read(&file).unwrap_err();
        assert!(err.to_string().contains("frames add up to 10"), "{err}");
    }

    #[test]
    fn a_truncated_file_has_no_footer() {
        let mut t = SeekTable::default();
        t.push(10, 100);
        let mut file = vec![0u8; 10];
        file.extend(t.encode());
        file.pop();
        let err = SeekTable::read(&file).unwrap_err();
        assert!(
            err.to_string().contains("no seekable-format footer"),
            "{err}"
        );
    }
}
