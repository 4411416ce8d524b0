//! Minisign secret keys (`minisign.key`) and signing.
//!
//! The file has two lines: `untrusted comment: minisign encrypted secret
//! key`, then the base64 of 158 bytes:
//!
//! | bytes | content |
//! | --- | --- |
//! | 2 | signature algorithm `Ed` |
//! | 2 | key derivation `Sc` (scrypt), or two NULs when unencrypted (`minisign -W`) |
//! | 2 | checksum algorithm `B2` (BLAKE2b) |
//! | 32 | scrypt salt |
//! | 8 | opslimit, little-endian |
//! | 8 | memlimit, little-endian |
//! | 104 | key id (8), Ed25519 secret key (64: seed then public key), checksum (32) |
//!
//! When encrypted, the last 104 bytes are XORed with 104 bytes of scrypt
//! output (see [`super::kdf`]). The checksum is BLAKE2b-256 of
//! `"Ed" || key id || secret key`; a mismatch after decryption means the
//! passphrase was wrong. Unencrypted keys written by minisign 0.11 carry an
//! all-zero checksum, which minisign does not check.

use std::fmt;
use std::path::Path;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use ed25519_dalek::{Signer, SigningKey};
use rand_core::{OsRng, RngCore};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::digest::MessageDigest;
use super::error::{CommentKind, FileKind, SignError};
use super::kdf::KdfParams;
use super::key_id::KeyId;
use super::public_key::{PublicKey, ALG_ED25519};
use super::signature::{Signature, SignatureAlgorithm};
use super::text;

const KIND: FileKind = FileKind::SecretKey;
const KDF_SCRYPT: [u8; 2] = *b"Sc";
const KDF_NONE: [u8; 2] = [0, 0];
const CHK_BLAKE2B: [u8; 2] = *b"B2";
/// The comment minisign writes on the first line of every secret key file,
/// encrypted or not.
const SECRET_KEY_COMMENT: &str = "minisign encrypted secret key";

/// Length of the decoded secret key file.
const FILE_BYTES: usize = 158;
/// Offset of the (possibly encrypted) key id, secret key and checksum.
const KEYNUM_SK_OFFSET: usize = 54;
/// Length of key id + secret key + checksum.
const KEYNUM_SK_BYTES: usize = 104;

/// A decrypted minisign secret key.
///
/// `Debug` never shows key material, and the Ed25519 secret is wiped from
/// memory when the value is dropped.
pub struct SecretKey {
    key_id: KeyId,
    signing_key: SigningKey,
}

// `SigningKey` wipes itself on drop (ed25519-dalek's `zeroize` feature) and
// the key id is not secret.
impl ZeroizeOnDrop for SecretKey {}

impl SecretKey {
    /// A new key pair with a random key id, from the operating system's
    /// random number generator.
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        OsRng.fill_bytes(&mut id);
        Self {
            key_id: KeyId(id),
            signing_key: SigningKey::generate(&mut OsRng),
        }
    }

    /// A key from its parts: key id and 32-byte Ed25519 seed.
    pub fn from_seed(key_id: KeyId, seed: &[u8; 32]) -> Self {
        Self {
            key_id,
            signing_key: SigningKey::from_bytes(seed),
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(self.key_id, self.signing_key.verifying_key())
    }

    /// The key id.
    pub fn id(&self) -> KeyId {
        self.key_id
    }

    /// The `.key` file, encrypted with `passphrase` under a fresh random
    /// salt, in minisign's format. Fails when `kdf` is refused (see
    /// [`KdfParams::scrypt_cost`]).
    pub fn to_encrypted_file_string(
        &self,
        passphrase: &str,
        kdf: KdfParams,
    ) -> Result<String, SignError> {
        let mut salt = [0u8; 32];
        OsRng.fill_bytes(&mut salt);
        self.to_encrypted_file_string_with_salt(passphrase, kdf, &salt)
    }

    /// [`Self::to_encrypted_file_string`] with a chosen salt (for tests).
    pub(crate) fn to_encrypted_file_string_with_salt(
        &self,
        passphrase: &str,
        kdf: KdfParams,
        salt: &[u8; 32],
    ) -> Result<String, SignError> {
        let stream = kdf.derive::<KEYNUM_SK_BYTES>(passphrase.as_bytes(), salt)?;
        let mut file = Zeroizing::new([0u8; FILE_BYTES]);
        file[0..2].copy_from_slice(&ALG_ED25519);
        file[2..4].copy_from_slice(&KDF_SCRYPT);
        file[4..6].copy_from_slice(&CHK_BLAKE2B);
        file[6..38].copy_from_slice(salt);
        file[38..46].copy_from_slice(&kdf.opslimit.to_le_bytes());
        file[46..54].copy_from_slice(&kdf.memlimit.to_le_bytes());
        let keynum_sk = &mut file[KEYNUM_SK_OFFSET..];
        keynum_sk[..8].copy_from_slice(&self.key_id.0);
        let sk = Zeroizing::new(self.signing_key.to_keypair_bytes());
        keynum_sk[8..72].copy_from_slice(sk.as_slice());
        keynum_sk[72..].copy_from_slice(&checksum(&self.key_id, &sk));
        for (byte, mask) in keynum_sk.iter_mut().zip(stream.iter()) {
            *byte ^= mask;
        }
        let b64 = Zeroizing::new(text::encode(file.as_slice()));
        Ok(format!(
            "{}{SECRET_KEY_COMMENT}\n{}\n",
            text::UNTRUSTED_PREFIX,
            b64.as_str()
        ))
    }

    /// Decrypts the text of an encrypted `.key` file.
    ///
    /// A wrong passphrase gives [`SignError::WrongPassphrase`]; a key made
    /// with `minisign -W` gives [`SignError::NotEncrypted`].
    pub fn parse_encrypted(text: &str, passphrase: &str) -> Result<Self, SignError> {
        let (mut file, kdf_alg) = decode_file(text)?;
        match kdf_alg {
            KDF_SCRYPT => {}
            KDF_NONE => return Err(SignError::NotEncrypted),
            other => return Err(SignError::UnsupportedKdf { found: other }),
        }
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&file[6..38]);
        let kdf = KdfParams {
            opslimit: le_u64(&file[38..46]),
            memlimit: le_u64(&file[46..54]),
        };
        let stream = kdf.derive::<KEYNUM_SK_BYTES>(passphrase.as_bytes(), &salt)?;
        for (byte, mask) in file[KEYNUM_SK_OFFSET..].iter_mut().zip(stream.iter()) {
            *byte ^= mask;
        }
        let (key_id, sk, chk) = split_keynum_sk(&file);
        if checksum(&key_id, &sk) != chk {
            return Err(SignError::WrongPassphrase);
        }
        Self::from_keypair(key_id, &sk)
    }

    /// Reads and decrypts an encrypted `.key` file; errors name the file.
    pub fn from_encrypted_file(path: &Path, passphrase: &str) -> Result<Self, SignError> {
        let text = Zeroizing::new(text::read_small_file(path, KIND)?);
        Self::parse_encrypted(&text, passphrase).map_err(|e| e.in_file(path))
    }

    /// Reads the text of an unencrypted `.key` file (`minisign -G -W`).
    ///
    /// An encrypted key gives [`SignError::Encrypted`]. The checksum is
    /// checked unless it is all zeros, which is what minisign 0.11 writes
    /// for unencrypted keys.
    pub fn parse_unencrypted(text: &str) -> Result<Self, SignError> {
        let (file, kdf_alg) = decode_file(text)?;
        match kdf_alg {
            KDF_NONE => {}
            KDF_SCRYPT => return Err(SignError::Encrypted),
            other => return Err(SignError::UnsupportedKdf { found: other }),
        }
        let (key_id, sk, chk) = split_keynum_sk(&file);
        if chk != [0u8; 32] && checksum(&key_id, &sk) != chk {
            return Err(SignError::CorruptSecretKey);
        }
        Self::from_keypair(key_id, &sk)
    }

    fn from_keypair(key_id: KeyId, sk: &[u8; 64]) -> Result<Self, SignError> {
        // Checks that the stored public half belongs to the seed: libsodium
        // would otherwise silently make signatures that never verify.
        let signing_key =
            SigningKey::from_keypair_bytes(sk).map_err(|_| SignError::InconsistentSecretKey)?;
        Ok(Self {
            key_id,
            signing_key,
        })
    }

    /// Signs `message` with minisign's prehashed `ED` algorithm.
    ///
    /// The data signature is `Ed25519(BLAKE2b-512(message))` and the global
    /// signature is `Ed25519(data signature || trusted_comment)`. Ed25519 is
    /// deterministic (RFC 8032), so the same key, message and comments always
    /// give the same bytes, identical to what the minisign tool produces.
    ///
    /// Comments must fit on one line: line breaks and NULs are replaced by
    /// spaces and over-long comments are cut (at 1003 bytes for the
    /// untrusted comment, 8173 for the trusted one). Use
    /// [`super::check_comments`] first to refuse such input instead.
    pub fn sign(
        &self,
        message: &[u8],
        untrusted_comment: &str,
        trusted_comment: &str,
    ) -> Signature {
        self.sign_digest(
            &MessageDigest::of(message),
            untrusted_comment,
            trusted_comment,
        )
    }

    /// [`Self::sign`] for a message already hashed with [`MessageDigest`]
    /// (for large files, hashed while streaming).
    pub fn sign_digest(
        &self,
        digest: &MessageDigest,
        untrusted_comment: &str,
        trusted_comment: &str,
    ) -> Signature {
        let untrusted = text::sanitize_comment(untrusted_comment, CommentKind::Untrusted);
        let trusted = text::sanitize_comment(trusted_comment, CommentKind::Trusted);
        let signature = self.signing_key.sign(digest.as_bytes()).to_bytes();
        let mut global_input = Vec::with_capacity(64 + trusted.len());
        global_input.extend_from_slice(&signature);
        global_input.extend_from_slice(trusted.as_bytes());
        let global_signature = self.signing_key.sign(&global_input).to_bytes();
        Signature::from_parts(
            untrusted,
            SignatureAlgorithm::Prehashed,
            self.key_id,
            signature,
            trusted,
            global_signature,
        )
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.key_id)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// Decodes a secret key file and checks the algorithm tags that do not
/// depend on encryption. Returns the 158 bytes and the KDF tag.
fn decode_file(text: &str) -> Result<(Zeroizing<[u8; FILE_BYTES]>, [u8; 2]), SignError> {
    let lines = text::lines(text);
    let first = text::required_line(&lines, 1, KIND, "untrusted comment")?;
    text::strip_prefix(first, text::UNTRUSTED_PREFIX, 1, KIND)?;
    let b64 = text::required_line(&lines, 2, KIND, "secret key")?;
    text::no_trailing_lines(&lines, 2, KIND)?;
    let file = Zeroizing::new(text::decode_exact::<FILE_BYTES>(
        b64,
        2,
        KIND,
        "secret key",
    )?);
    let tag = |range: std::ops::Range<usize>| [file[range.start], file[range.start + 1]];
    let (sig_alg, kdf_alg, chk_alg) = (tag(0..2), tag(2..4), tag(4..6));
    // Same order of checks as minisign: signature, checksum, then KDF.
    if sig_alg != ALG_ED25519 {
        return Err(SignError::UnsupportedSignatureAlgorithm {
            kind: KIND,
            found: sig_alg,
        });
    }
    if chk_alg != CHK_BLAKE2B {
        return Err(SignError::UnsupportedChecksum { found: chk_alg });
    }
    Ok((file, kdf_alg))
}

/// Splits the decrypted tail into key id, secret key and stored checksum.
fn split_keynum_sk(file: &[u8; FILE_BYTES]) -> (KeyId, Zeroizing<[u8; 64]>, [u8; 32]) {
    let tail = &file[KEYNUM_SK_OFFSET..];
    let mut id = [0u8; 8];
    id.copy_from_slice(&tail[..8]);
    let mut sk = Zeroizing::new([0u8; 64]);
    sk.copy_from_slice(&tail[8..72]);
    let mut chk = [0u8; 32];
    chk.copy_from_slice(&tail[72..]);
    (KeyId(id), sk, chk)
}

/// BLAKE2b-256 of `"Ed" || key id || secret key`, minisign's key checksum.
fn checksum(key_id: &KeyId, sk: &[u8; 64]) -> [u8; 32] {
    let mut hasher = Blake2b::<U32>::new();
    hasher.update(ALG_ED25519);
    hasher.update(key_id.0);
    hasher.update(sk);
    hasher.finalize().into()
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::super::test_vectors as tv;
    use super::*;

    /// Cheap scrypt cost for tests: N = 2^10, r = 8, p = 1 (1 MiB).
    const FAST: KdfParams = KdfParams {
        opslimit: 32_768,
        memlimit: 16 << 20,
    };

    #[test]
    fn encrypted_round_trip() {
        let sk = SecretKey::generate();
        let text = sk.to_encrypted_file_string("hunter2", FAST).unwrap();
        assert!(text.starts_with("untrusted comment: minisign encrypted secret key\n"));
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        let back = SecretKey::parse_encrypted(&text, "hunter2").unwrap();
        assert_eq!(back.id(), sk.id());
        assert_eq!(back.public_key(), sk.public_key());
        assert_eq!(
            back.signing_key.to_keypair_bytes(),
            sk.signing_key.to_keypair_bytes()
        );
        // Two encryptions use different salts.
        assert_ne!(text, sk.to_encrypted_file_string("hunter2", FAST).unwrap());
    }

    #[test]
    fn stores_the_kdf_params_it_was_given() {
        let sk = SecretKey::generate();
        let kdf = KdfParams {
            opslimit: 1 << 20,
            memlimit: 1 << 20,
        };
        let text = sk
            .to_encrypted_file_string_with_salt("pw", kdf, &[7u8; 32])
            .unwrap();
        let (file, kdf_alg) = decode_file(&text).unwrap();
        assert_eq!(kdf_alg, *b"Sc");
        assert_eq!(&file[4..6], b"B2");
        assert_eq!(&file[6..38], &[7u8; 32]);
        assert_eq!(le_u64(&file[38..46]), 1 << 20);
        assert_eq!(le_u64(&file[46..54]), 1 << 20);
        assert!(SecretKey::parse_encrypted(&text, "pw").is_ok());
    }

    #[test]
    fn wrong_passphrase_is_detected() {
        let sk = SecretKey::generate();
        let text = sk.to_encrypted_file_string("right", FAST).unwrap();
        assert!(matches!(
            SecretKey::parse_encrypted(&text, "wrong"),
            Err(SignError::WrongPassphrase)
        ));
        assert!(matches!(
            SecretKey::parse_encrypted(&text, ""),
            Err(SignError::WrongPassphrase)
        ));
    }

    #[test]
    fn refuses_absurd_kdf_params_in_a_file() {
        let sk = SecretKey::generate();
        let text = sk.to_encrypted_file_string("pw", FAST).unwrap();
        let (mut file, _) = decode_file(&text).unwrap();
        file[38..46].copy_from_slice(&u64::MAX.to_le_bytes());
        file[46..54].copy_from_slice(&u64::MAX.to_le_bytes());
        let tampered = format!("untrusted comment: x\n{}\n", text::encode(file.as_slice()));
        assert!(matches!(
            SecretKey::parse_encrypted(&tampered, "pw"),
            Err(SignError::UnsafeKdfParams { .. })
        ));
        assert!(matches!(
            sk.to_encrypted_file_string(
                "pw",
                KdfParams {
                    opslimit: 1 << 40,
                    memlimit: 1 << 40
                }
            ),
            Err(SignError::UnsafeKdfParams { .. })
        ));
    }

    #[test]
    fn rejects_unsupported_algorithms_and_bad_encodings() {
        let sk = SecretKey::generate();
        let text = sk.to_encrypted_file_string("pw", FAST).unwrap();
        let (file, _) = decode_file(&text).unwrap();
        let with = |offset: usize, tag: &[u8; 2]| {
            let mut f = *file;
            f[offset..offset + 2].copy_from_slice(tag);
            format!("untrusted comment: x\n{}\n", text::encode(&f))
        };
        assert!(matches!(
            SecretKey::parse_encrypted(&with(0, b"ED"), "pw"),
            Err(SignError::UnsupportedSignatureAlgorithm {
                kind: FileKind::SecretKey,
                found: [b'E', b'D']
            })
        ));
        assert!(matches!(
            SecretKey::parse_encrypted(&with(2, b"Ar"), "pw"),
            Err(SignError::UnsupportedKdf {
                found: [b'A', b'r']
            })
        ));
        assert!(matches!(
            SecretKey::parse_encrypted(&with(4, b"S2"), "pw"),
            Err(SignError::UnsupportedChecksum {
                found: [b'S', b'2']
            })
        ));
        assert!(matches!(
            SecretKey::parse_encrypted(&with(2, &[0, 0]), "pw"),
            Err(SignError::NotEncrypted)
        ));
        assert!(matches!(
            SecretKey::parse_unencrypted(&text),
            Err(SignError::Encrypted)
        ));
        assert!(matches!(
            SecretKey::parse_encrypted("untrusted comment: x\nnot base64!\n", "pw"),
            Err(SignError::Base64 { line: 2, .. })
        ));
        assert!(matches!(
            SecretKey::parse_encrypted("untrusted comment: x\nRWQAAEIy\n", "pw"),
            Err(SignError::WrongLength {
                expected: 158,
                actual: 6,
                ..
            })
        ));
        assert!(matches!(
            SecretKey::parse_encrypted("untrusted comment: x\n", "pw"),
            Err(SignError::MissingLine { line: 2, .. })
        ));
        let no_prefix = text.replacen("untrusted comment: ", "", 1);
        assert!(matches!(
            SecretKey::parse_encrypted(&no_prefix, "pw"),
            Err(SignError::MissingPrefix { line: 1, .. })
        ));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let sk = SecretKey::from_seed(KeyId([1; 8]), &[0x42; 32]);
        let shown = format!("{sk:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains("0101010101010101"), "{shown}");
        assert!(!shown.contains("42"), "{shown}");
    }

    #[test]
    fn signing_is_deterministic() {
        let sk = SecretKey::generate();
        let a = sk.sign(b"data", "u", "t");
        let b = sk.sign(b"data", "u", "t");
        assert_eq!(a.to_file_string(), b.to_file_string());
        let c = sk.sign(b"datb", "u", "t");
        assert_ne!(a.to_file_string(), c.to_file_string());
    }

    #[test]
    fn comments_are_sanitized_when_signing() {
        let sk = SecretKey::generate();
        let sig = sk.sign(b"data", "two\nlines", "a\r\nb");
        assert_eq!(sig.untrusted_comment(), "two lines");
        assert_eq!(sig.trusted_comment(), "a  b");
        let file = sig.to_file_string();
        assert_eq!(file.lines().count(), 4);
        let back = Signature::parse(&file).unwrap();
        back.verify(&sk.public_key(), b"data").unwrap();
    }

    /// A key encrypted by the minisign tool itself (default parameters:
    /// scrypt N = 2^20, 1 GiB, a few seconds) decrypts, and signing with it
    /// reproduces the signature the tool made, byte for byte.
    #[test]
    fn decrypts_a_key_encrypted_by_minisign() {
        let sk = SecretKey::parse_encrypted(tv::ENC_KEY, tv::ENC_PASSWORD).unwrap();
        let pk = PublicKey::parse(tv::ENC_PUB).unwrap();
        assert_eq!(sk.public_key(), pk);
        assert_eq!(sk.id().to_string(), "E8E610435D3E4EA0");
        let minisig = Signature::parse(tv::ENC_MINISIG).unwrap();
        let ours = sk.sign(
            tv::MESSAGE,
            minisig.untrusted_comment(),
            minisig.trusted_comment(),
        );
        assert_eq!(ours.to_file_string(), tv::ENC_MINISIG);
    }

    #[test]
    fn wrong_passphrase_on_a_minisign_key() {
        // Same 1 GiB derivation as above; kept separate so each failure is clear.
        assert!(matches!(
            SecretKey::parse_encrypted(tv::ENC_KEY, "Correct horse"),
            Err(SignError::WrongPassphrase)
        ));
    }

    #[test]
    fn reads_an_unencrypted_minisign_key_and_signs_like_minisign() {
        let sk = SecretKey::parse_unencrypted(tv::KAT_KEY).unwrap();
        assert_eq!(sk.public_key(), PublicKey::parse(tv::KAT_PUB).unwrap());
        assert!(matches!(
            SecretKey::parse_encrypted(tv::KAT_KEY, "pw"),
            Err(SignError::NotEncrypted)
        ));
        let theirs = Signature::parse(tv::KAT_PREHASHED_MINISIG).unwrap();
        let ours = sk.sign(
            tv::MESSAGE,
            theirs.untrusted_comment(),
            theirs.trusted_comment(),
        );
        assert_eq!(ours.to_file_string(), tv::KAT_PREHASHED_MINISIG);
    }

    #[test]
    fn inconsistent_secret_key_is_rejected() {
        let sk = SecretKey::parse_unencrypted(tv::KAT_KEY).unwrap();
        let (mut file, _) = decode_file(tv::KAT_KEY).unwrap();
        // Flip a bit of the embedded public key (bytes 32..64 of sk).
        file[KEYNUM_SK_OFFSET + 8 + 40] ^= 1;
        let text = format!("untrusted comment: x\n{}\n", text::encode(file.as_slice()));
        assert!(matches!(
            SecretKey::parse_unencrypted(&text),
            Err(SignError::InconsistentSecretKey)
        ));
        // A non-zero checksum on an unencrypted key is checked.
        let (mut file, _) = decode_file(tv::KAT_KEY).unwrap();
        let (id, seckey, _) = split_keynum_sk(&file);
        let chk = checksum(&id, &seckey);
        file[KEYNUM_SK_OFFSET + 72..].copy_from_slice(&chk);
        let good = format!("untrusted comment: x\n{}\n", text::encode(file.as_slice()));
        assert_eq!(
            SecretKey::parse_unencrypted(&good).unwrap().public_key(),
            sk.public_key()
        );
        file[KEYNUM_SK_OFFSET + 72] ^= 1;
        let bad = format!("untrusted comment: x\n{}\n", text::encode(file.as_slice()));
        assert!(matches!(
            SecretKey::parse_unencrypted(&bad),
            Err(SignError::CorruptSecretKey)
        ));
    }

    #[test]
    fn from_encrypted_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("release.key");
        let sk = SecretKey::generate();
        std::fs::write(&path, sk.to_encrypted_file_string("pw", FAST).unwrap()).unwrap();
        assert_eq!(
            SecretKey::from_encrypted_file(&path, "pw").unwrap().id(),
            sk.id()
        );
        let err = SecretKey::from_encrypted_file(&path, "nope").unwrap_err();
        assert!(matches!(err.root(), SignError::WrongPassphrase));
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }
}
