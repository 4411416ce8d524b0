//! The MAC of Synapse's shared-secret registration (`/_synapse/admin/v1/register`).

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// HMAC-SHA1 over `nonce\0user\0password\0admin|notadmin`, keyed by the shared secret, in hex.
pub fn registration_mac(
    secret: &[u8],
    nonce: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        unreachable!("HMAC takes keys of any length")
    };
    let role: &[u8] = if admin { b"admin" } else { b"notadmin" };
    for (i, part) in [nonce.as_bytes(), user.as_bytes(), password.as_bytes(), role]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_synapse_reference_mac() {
        // From Python: hmac.new(b"secret", b"abc\x00alice\x00pw\x00notadmin", hashlib.sha1)
        assert_eq!(
            registration_mac(b"secret", "abc", "alice", "pw", false),
            "42e32623fe124933c326f9d2d67ff7c617915a10"
        );
    }
}
