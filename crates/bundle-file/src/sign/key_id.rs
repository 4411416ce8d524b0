//! Minisign key identifiers.
//!
//! A key id is 8 random bytes chosen when the key pair is generated. It is
//! stored in the public key, the secret key and every signature, so that a
//! verifier can tell "signed by another key" apart from "forged".

use std::fmt;

/// An 8-byte minisign key id.
///
/// `Display` and `Debug` show it the way minisign reports key ids: the bytes
/// read as a little-endian `u64`, in upper-case hex, here zero-padded to 16
/// digits (`format!("{:016X}", ..)`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// The id as minisign's C code sees it: the bytes as a little-endian `u64`.
    pub fn as_u64(&self) -> u64 {
        u64::from_le_bytes(self.0)
    }

    /// Upper-case hex *without* zero padding, as the minisign C tool prints
    /// it (`%" PRIX64`) in the comment of the public key files it writes.
    pub fn minisign_hex(&self) -> String {
        format!("{:X}", self.as_u64())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.as_u64())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_little_endian_hex() {
        let id = KeyId([0x9c, 0x0d, 0x8e, 0x5f, 0xb2, 0x23, 0x64, 0x16]);
        assert_eq!(id.to_string(), "166423B25F8E0D9C");
        assert_eq!(format!("{id:?}"), "166423B25F8E0D9C");
        assert_eq!(id.minisign_hex(), "166423B25F8E0D9C");
    }

    #[test]
    fn display_pads_but_minisign_hex_does_not() {
        // Key id of a key that the minisign tool generated; its .pub file
        // says "minisign public key 2699D3B92C9858A" (15 digits).
        let id = KeyId([0x8a, 0x85, 0xc9, 0x92, 0x3b, 0x9d, 0x69, 0x02]);
        assert_eq!(id.to_string(), "02699D3B92C9858A");
        assert_eq!(id.minisign_hex(), "2699D3B92C9858A");
    }
}
