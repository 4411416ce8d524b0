//! ClamAV's own RSA signature schemes (not PKCS#1): the CVD header signature (`cli_versig`,
//! an RSA "decryption" of the body MD5 with ClamAV's 1024-bit key) and the PSS-like scheme
//! used for the `DSIG:` line of `.info` files (`cli_versig2`, SHA-256, 2048-bit key).

use num_bigint::BigUint;
use sha2::{Digest, Sha256};

/// Modulus of ClamAV's CVD header key (decimal), from libclamav.
const CVD_N: &str = "118640995551645342603070001658453189751527774412027743746599405743243142607464144767361060640655844749760788890022283424922762488917565551002467771109669598189410434699034532232228621591089508178591428456220796841621637175567590476666928698770143328137383952820383197532047771780196576957695822641224262693037";
const CVD_E: &str = "100001027";

/// Modulus of ClamAV's `.info` DSIG key (decimal), from libclamav.
const INFO_N: &str = "11088894983048545473659556106627194923928941791795047620591658697413581043322715912172496806525381055880964520618400224333320534660299233983755341740679502866829909679955734391392668378361221524205396631090105151641270857277080310734320951653700508941717419168723942507890702904702707587451621691050754307850383399865346487203798464178537392211402786481359824461197231102895415093770394216666324484593935762408468516826633192140826667923494822045805347809932848454845886971706424360558667862775876072059437703365380209101697738577515476935085469455279994113145977994084618328482151013142393373316337519977244732747977";
const INFO_E: &str = "100002049";

fn big(dec: &str) -> BigUint {
    BigUint::parse_bytes(dec.as_bytes(), 10).expect("constant is decimal")
}

/// Value of one character of ClamAV's signature alphabet: a-z, A-Z, 0-9, '+', '/'.
fn digit(c: u8) -> Option<u32> {
    match c {
        b'a'..=b'z' => Some(u32::from(c - b'a')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes a signature string (little-endian base-64 digits), raises it to `e` modulo `n`
/// and returns the low `len` bytes of the result, most significant first.
fn recover(sig: &str, len: usize, n: &BigUint, e: &BigUint) -> Option<Vec<u8>> {
    if sig.is_empty() {
        return None;
    }
    let mut value = BigUint::default();
    for &c in sig.as_bytes().iter().rev() {
        value = (value << 6u32) + BigUint::from(digit(c)?);
    }
    let plain = value.modpow(e, n).to_bytes_le();
    let mut out = vec![0u8; len];
    for (i, b) in plain.iter().take(len).enumerate() {
        out[len - 1 - i] = *b;
    }
    Some(out)
}

/// `cli_versig`: does `sig` sign `md5_hex` (32 lowercase hex characters)?
pub(crate) fn verify_md5_sig(md5_hex: &str, sig: &str) -> bool {
    if md5_hex.len() != 32 {
        return false;
    }
    match recover(sig, 16, &big(CVD_N), &big(CVD_E)) {
        Some(plain) => hex::encode(plain) == md5_hex.to_ascii_lowercase(),
        None => false,
    }
}

const HASH_LEN: usize = 32;
const SALT_LEN: usize = 32;
const PAD_LEN: usize = 2048 / 8;
const BLK_LEN: usize = PAD_LEN - HASH_LEN - 1;

/// `cli_versig2` with the `.info` key: does `sig` sign the SHA-256 digest `sha256`?
pub(crate) fn verify_info_sig(sha256: &[u8; 32], sig: &str) -> bool {
    verify_pss(sha256, sig, &big(INFO_N), &big(INFO_E))
}

fn verify_pss(sha256: &[u8; 32], sig: &str, n: &BigUint, e: &BigUint) -> bool {
    let Some(em) = recover(sig, PAD_LEN, n, e) else {
        return false;
    };
    if em[PAD_LEN - 1] != 0xbc {
        return false;
    }
    let masked = &em[..BLK_LEN];
    let h = &em[BLK_LEN..BLK_LEN + HASH_LEN];
    // MGF1-SHA256 over H.
    let mut db = Vec::with_capacity(BLK_LEN + HASH_LEN);
    let mut counter: u32 = 0;
    while db.len() < BLK_LEN {
        let mut d = Sha256::new();
        d.update(h);
        d.update(counter.to_be_bytes());
        db.extend_from_slice(&d.finalize());
        counter += 1;
    }
    db.truncate(BLK_LEN);
    for (b, m) in db.iter_mut().zip(masked) {
        *b ^= m;
    }
    db[0] &= 0x7f;
    let Some(one) = db.iter().position(|&b| b == 0x01) else {
        return false;
    };
    let salt = &db[one + 1..];
    if salt.len() != SALT_LEN {
        return false;
    }
    let mut d = Sha256::new();
    d.update([0u8; 8]);
    d.update(sha256);
    d.update(salt);
    d.finalize().as_slice() == h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_the_clamav_one() {
        assert_eq!(digit(b'a'), Some(0));
        assert_eq!(digit(b'Z'), Some(51));
        assert_eq!(digit(b'0'), Some(52));
        assert_eq!(digit(b'/'), Some(63));
        assert_eq!(digit(b'='), None);
    }

    #[test]
    fn rejects_garbage() {
        assert!(!verify_md5_sig("00000000000000000000000000000000", "abc"));
        assert!(!verify_md5_sig("short", "abc"));
        assert!(!verify_md5_sig("00000000000000000000000000000000", "a=c"));
        assert!(!verify_info_sig(&[0u8; 32], "abcdef"));
        assert!(!verify_info_sig(&[0u8; 32], ""));
    }
}
