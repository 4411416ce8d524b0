//! Content digests (`sha256:<hex>`) and a writer that computes one while bytes pass through.

use std::fmt;
use std::io::{self, Write};

use sha2::Digest as _;

use crate::ReferenceError;

/// A content digest, `sha256:<64 lower-case hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Digest {
    /// Parses `sha256:<hex>`.
    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let fail = |reason| ReferenceError {
            input: text.to_string(),
            reason,
        };
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| fail("digest must start with sha256:"))?;
        if hex.len() != 64 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(fail("sha256 digest must be 64 lower-case hex digits"));
        }
        Ok(Digest(text.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(&sha2::Sha256::digest(bytes))
    }

    /// The digest and length of everything `reader` gives.
    pub fn of_reader(reader: &mut dyn io::Read) -> io::Result<(Digest, u64)> {
        let mut writer = DigestWriter::new(io::sink());
        io::copy(reader, &mut writer)?;
        let (_, digest, size) = writer.finish();
        Ok((digest, size))
    }

    /// A digest from a finished SHA-256 hash.
    pub fn from_sha256(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A writer that passes bytes on to `inner` while computing their digest and counting them:
/// how blobs, layers and chart archives learn their digest as they are written.
pub struct DigestWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
    written: u64,
}

impl<W> DigestWriter<W> {
    /// Hashes what is written to `inner`.
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            hasher: sha2::Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        Digest::from_sha256(&self.hasher.clone().finalize())
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The inner writer, the digest and the number of bytes written.
    pub fn finish(self) -> (W, Digest, u64) {
        (
            self.inner,
            Digest::from_sha256(&self.hasher.finalize()),
            self.written,
        )
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_strictly() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(Digest::parse(&good).unwrap().hex(), "0a".repeat(32));
        for bad in [
            "sha256:abc".to_string(),
            format!("sha512:{}", "0".repeat(64)),
            format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(Digest::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_writer_hashes_and_counts_what_passes() {
        let mut writer = DigestWriter::new(Vec::new());
        writer.write_all(b"hello ").unwrap();
        writer.write_all(b"world").unwrap();
        assert_eq!(writer.written(), 11);
        let (inner, digest, size) = writer.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(size, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!(
            digest.as_str(),
            "sha256:b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(
            Digest::of_reader(&mut &b"hello world"[..]).unwrap(),
            (digest, 11)
        );
    }
}
