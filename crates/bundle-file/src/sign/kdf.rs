//! The scrypt key derivation that protects minisign secret keys.
//!
//! A minisign secret key file stores libsodium's two abstract cost numbers,
//! `opslimit` and `memlimit`, not scrypt's `N`, `r` and `p`. The concrete
//! parameters are picked from them exactly as libsodium's
//! `crypto_pwhash_scryptsalsa208sha256` does (its internal `pickparams`), so
//! that files written by the minisign tool decrypt here and vice versa.
//! Parameters that would need absurd memory or time are refused before
//! anything is allocated.

use scrypt::Params;
use zeroize::Zeroizing;

use super::error::SignError;

/// Largest scrypt `N` accepted, as a power of two.
pub const MAX_LOG_N: u32 = 24;
/// Largest amount of memory scrypt may use, in bytes (2 GiB).
pub const MAX_MEMORY_BYTES: u64 = 2 << 30;
/// Largest amount of work accepted, counted as `N * r * p`: 32 times the
/// cost of [`KdfParams::MINISIGN_DEFAULT`].
pub const MAX_WORK: u64 = 1 << 28;

/// libsodium's cost parameters for scrypt, as stored in a minisign secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Abstract CPU cost (libsodium `opslimit`).
    pub opslimit: u64,
    /// Abstract memory cost in bytes (libsodium `memlimit`).
    pub memlimit: u64,
}

/// Concrete scrypt parameters picked from [`KdfParams`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScryptCost {
    /// `N = 2^log_n`.
    pub log_n: u32,
    /// Block size.
    pub r: u32,
    /// Parallelism.
    pub p: u32,
}

impl ScryptCost {
    /// Bytes of memory scrypt needs with these parameters (`128 * r * (N + p)`).
    pub fn memory_bytes(&self) -> u128 {
        let n = 1u128 << self.log_n;
        128 * u128::from(self.r) * (n + u128::from(self.p))
    }

    /// Work, counted as `N * r * p`.
    pub fn work(&self) -> u128 {
        (1u128 << self.log_n) * u128::from(self.r) * u128::from(self.p)
    }
}

impl KdfParams {
    /// What the minisign tool always uses: libsodium's `*_SENSITIVE` limits
    /// (scrypt with `N = 2^20`, `r = 8`, `p = 1`: 1 GiB of memory).
    pub const MINISIGN_DEFAULT: KdfParams = KdfParams {
        opslimit: 33_554_432,
        memlimit: 1_073_741_824,
    };

    /// The scrypt parameters libsodium derives from these limits, without
    /// any sanity check. Mirrors libsodium's `pickparams`: `opslimit` is
    /// raised to at least 32768, `r` is 8, and `N`/`p` come from one of two
    /// branches depending on whether `opslimit < memlimit / 32`.
    pub fn libsodium_cost(&self) -> ScryptCost {
        const R: u64 = 8;
        let opslimit = self.opslimit.max(32_768);
        // Smallest log_n in 1..63 with 2^log_n > max_n / 2 (63 if none).
        let log_n_for = |max_n: u64| -> u32 {
            let mut log_n = 1;
            while log_n < 63 && (1u64 << log_n) <= max_n / 2 {
                log_n += 1;
            }
            log_n
        };
        if opslimit < self.memlimit / 32 {
            let log_n = log_n_for(opslimit / (R * 4));
            ScryptCost { log_n, r: 8, p: 1 }
        } else {
            let log_n = log_n_for(self.memlimit / (R * 128));
            let max_rp = ((opslimit / 4) >> log_n).min(0x3fff_ffff);
            // max_rp fits in 30 bits, so the cast is lossless.
            ScryptCost {
                log_n,
                r: 8,
                p: (max_rp as u32) / 8,
            }
        }
    }

    /// The scrypt parameters for these limits, or
    /// [`SignError::UnsafeKdfParams`] when they exceed this module's limits
    /// ([`MAX_LOG_N`], [`MAX_MEMORY_BYTES`], [`MAX_WORK`]) or are degenerate.
    pub fn scrypt_cost(&self) -> Result<ScryptCost, SignError> {
        let cost = self.libsodium_cost();
        let refuse = |reason: String| SignError::UnsafeKdfParams {
            opslimit: self.opslimit,
            memlimit: self.memlimit,
            reason,
        };
        if cost.p == 0 {
            return Err(refuse("they give scrypt a parallelism of 0".to_string()));
        }
        if cost.log_n > MAX_LOG_N {
            return Err(refuse(format!(
                "scrypt N = 2^{} is above the limit of 2^{MAX_LOG_N}",
                cost.log_n
            )));
        }
        if cost.memory_bytes() > u128::from(MAX_MEMORY_BYTES) {
            return Err(refuse(format!(
                "scrypt would need {} bytes of memory, above the limit of 2 GiB",
                cost.memory_bytes()
            )));
        }
        if cost.work() > u128::from(MAX_WORK) {
            return Err(refuse(format!(
                "scrypt work N*r*p = {} is above the limit of {MAX_WORK}",
                cost.work()
            )));
        }
        Ok(cost)
    }

    /// Derives `N` bytes from `passphrase` and `salt` with scrypt, as
    /// libsodium's `crypto_pwhash_scryptsalsa208sha256` would.
    pub(crate) fn derive<const N: usize>(
        &self,
        passphrase: &[u8],
        salt: &[u8; 32],
    ) -> Result<Zeroizing<[u8; N]>, SignError> {
        let cost = self.scrypt_cost()?;
        let refuse = |reason: String| SignError::UnsafeKdfParams {
            opslimit: self.opslimit,
            memlimit: self.memlimit,
            reason,
        };
        // log_n <= MAX_LOG_N, so it fits in a u8. The `len` argument only
        // matters for password-hash strings; any value in 10..=64 will do.
        let params = Params::new(cost.log_n as u8, cost.r, cost.p, Params::RECOMMENDED_LEN)
            .map_err(|e| refuse(format!("scrypt rejects them: {e}")))?;
        let mut out = Zeroizing::new([0u8; N]);
        scrypt::scrypt(passphrase, salt, &params, out.as_mut_slice())
            .map_err(|e| refuse(format!("scrypt rejects the output length: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn cost(log_n: u32, p: u32) -> ScryptCost {
        ScryptCost { log_n, r: 8, p }
    }

    #[test]
    fn picks_params_like_libsodium() {
        let pick = |opslimit, memlimit| KdfParams { opslimit, memlimit }.libsodium_cost();
        // minisign's defaults (libsodium *_SENSITIVE): N = 2^20, p = 1.
        assert_eq!(KdfParams::MINISIGN_DEFAULT.libsodium_cost(), cost(20, 1));
        // libsodium *_INTERACTIVE: N = 2^14, p = 1.
        assert_eq!(pick(524_288, 16_777_216), cost(14, 1));
        // opslimit < memlimit / 32: p = 1, N from opslimit.
        assert_eq!(pick(32_768, 16 << 20), cost(10, 1));
        assert_eq!(pick(100_000, 4 << 20), cost(11, 1));
        // opslimit is floored at 32768.
        assert_eq!(pick(1, 16 << 20), cost(10, 1));
        // Otherwise N comes from memlimit and p from the remaining opslimit.
        assert_eq!(pick(1 << 20, 1 << 20), cost(10, 32));
        assert_eq!(pick(1 << 22, 1 << 20), cost(10, 128));
        assert_eq!(pick(0, 0), cost(1, 512));
        // p is capped through r*p <= 0x3fffffff.
        assert_eq!(pick(u64::MAX, 1 << 10), cost(1, 0x3fff_ffff / 8));
    }

    #[test]
    fn refuses_absurd_params_without_allocating() {
        let refused = |opslimit, memlimit| {
            matches!(
                KdfParams { opslimit, memlimit }.scrypt_cost(),
                Err(SignError::UnsafeKdfParams { .. })
            )
        };
        assert!(!refused(33_554_432, 1 << 30));
        // N = 2^21 would need just over 2 GiB (2 GiB plus p blocks) ...
        assert!(refused(1 << 26, 2 << 30));
        // ... and N = 2^22 needs 4 GiB,
        assert!(refused(1 << 27, 4 << 30));
        // as is N = 2^25 or more, whatever else.
        assert!(refused(1 << 40, 1 << 40));
        assert!(refused(u64::MAX, u64::MAX));
        // Huge work (large p) is refused too.
        assert!(refused(u64::MAX, 1 << 10));
        assert!(refused(1 << 40, 1 << 30));
    }

    /// Outputs of libsodium 1.0.18's `crypto_pwhash_scryptsalsa208sha256`
    /// (called through Python ctypes) for 104 bytes, password
    /// "correct horse" and salt 00 01 .. 1f.
    #[test]
    fn derives_what_libsodium_derives() {
        let salt: [u8; 32] = std::array::from_fn(|i| i as u8);
        let cases: [(u64, u64, &str); 5] = [
            (0, 0, "be020df85094ad1d038d481cd643fbf216da37d9b9a72c6a4d0eec9ded0f392a1c536b3d59c65ade2d1838be77513e9a92dd38f8dacc378478e4c0664a774aa89ba759737663ccd1b02ced8d0cbd25e2c1c6e23484a7f373c0c099853da88db5598544999d046a94"),
            (32_768, 16 << 20, "1fa1348854818a9e4e9037d04148d79bf80ee7ccc89564199957a2a783532f80bd3b976dd92585c46f779d4a5af6e447965a343e9e173e6acf1435c7ce1136ce9c1d4e32acda432b83cac616984557e7b4e4e4de4c1c068bf26c1387e605023cc744dca45cebb9cb"),
            (1 << 20, 1 << 20, "1714cb7f796a6df2f6f3e4074cd339581f5f2b04ea163c955493b60cee4a2436fb1b05797678d214a02ee8c84917bb026e8b5aa0ccf214d9f64ba4c065085e826dccb8a231df035d3c964107e95d4c2524da365a6870a778ac46f525c7ca717e1746a880a062b21a"),
            (100_000, 4 << 20, "33d41ae868c2d1d9bfc93b0236d1804e9331ed47fe13a57348070b1f2a4f42cba8cef4077481999654d7b603906314bcc4462f280fcbb94a30c33abdefb6dfb0c2330895ebc2faa85a64dde9ba462a60fc5bda5ce32b973c479448cfc0e0414a9e95780e48003aea"),
            (1 << 22, 1 << 20, "34d175701839a80b2e648176629688c9dcf3f8db8edc218c41fdb6906d4e8b9071778165a3acdd39281894a00c4c5cb5a46613e74355ba13555f15350c4cec037966ab77d9da853ce25756302a1e496deb262d83352c7aa741485c1a3987522b98bdfde77ca711aa"),
        ];
        for (opslimit, memlimit, expected) in cases {
            let out = KdfParams { opslimit, memlimit }
                .derive::<104>(b"correct horse", &salt)
                .unwrap();
            assert_eq!(
                hex(out.as_slice()),
                expected,
                "opslimit {opslimit} memlimit {memlimit}"
            );
        }
    }
}
