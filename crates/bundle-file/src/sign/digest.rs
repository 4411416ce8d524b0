//! The BLAKE2b-512 pre-hash of minisign's `ED` signature algorithm.
//!
//! Current minisign signs `Ed25519(BLAKE2b-512(file))` rather than the file
//! itself, so large files can be signed and verified while streaming them.
//! [`MessageHasher`] computes that hash incrementally (it is an
//! [`std::io::Write`], so `std::io::copy` can feed it) and [`MessageDigest`]
//! carries the result to [`super::SecretKey::sign_digest`] and
//! [`super::Signature::verify_digest`].

use std::io;

use blake2::{Blake2b512, Digest};

/// The BLAKE2b-512 hash of a message, the input of an `ED` signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageDigest(pub [u8; 64]);

impl MessageDigest {
    /// Hashes a message held in memory.
    pub fn of(message: &[u8]) -> Self {
        let mut hasher = MessageHasher::new();
        hasher.update(message);
        hasher.finalize()
    }

    /// Hashes everything `reader` yields, in constant memory.
    pub fn from_reader(mut reader: impl io::Read) -> io::Result<Self> {
        let mut hasher = MessageHasher::new();
        io::copy(&mut reader, &mut hasher)?;
        Ok(hasher.finalize())
    }

    /// The 64 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl std::fmt::Debug for MessageDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageDigest(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Incremental BLAKE2b-512 hasher producing a [`MessageDigest`].
#[derive(Clone, Default)]
pub struct MessageHasher(Blake2b512);

impl MessageHasher {
    /// A hasher that has seen no data yet.
    pub fn new() -> Self {
        Self(Blake2b512::new())
    }

    /// Feeds more of the message.
    pub fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    /// The hash of everything fed so far.
    pub fn finalize(self) -> MessageDigest {
        MessageDigest(self.0.finalize().into())
    }
}

impl io::Write for MessageHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for MessageHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageHasher")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2b_512_known_answer() {
        // RFC 7693, appendix A: BLAKE2b-512("abc").
        let expected = "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
                        7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923";
        let got: String = MessageDigest::of(b"abc")
            .0
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut hasher = MessageHasher::new();
        for chunk in data.chunks(7777) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finalize(), MessageDigest::of(&data));
        assert_eq!(
            MessageDigest::from_reader(&data[..]).unwrap(),
            MessageDigest::of(&data)
        );
        assert_ne!(MessageDigest::of(b"a"), MessageDigest::of(b"b"));
    }
}
