//! Minisign-compatible keys and signatures, in pure Rust.
//!
//! Reads and writes the three text formats of the
//! [minisign](https://jedisct1.github.io/minisign/) tool byte for byte:
//!
//! - public keys (`minisign.pub`): [`PublicKey`], see [`public_key`];
//! - secret keys encrypted with scrypt (`minisign.key`): [`SecretKey`], see
//!   [`secret_key`] and [`kdf`];
//! - signatures (`FILE.minisig`): [`Signature`], see [`signature`].
//!
//! Signatures are always made with minisign's prehashed `ED` algorithm
//! (Ed25519 over the BLAKE2b-512 hash of the data, plus a second "global"
//! Ed25519 signature over the first signature and the trusted comment).
//! Signing is deterministic: the same key, data and comments give the same
//! file, identical to the one the minisign tool would write. Only prehashed
//! signatures are verified; legacy ones are parsed but refused.
//!
//! ```
//! use bundle_file::sign::{KdfParams, PublicKey, SecretKey, Signature};
//!
//! let secret = SecretKey::generate();
//! let pub_file = secret.public_key().to_file_string();
//! // Real keys use KdfParams::MINISIGN_DEFAULT (1 GiB of scrypt memory).
//! let cheap = KdfParams { opslimit: 32_768, memlimit: 16 << 20 };
//! let key_file = secret.to_encrypted_file_string("passphrase", cheap)?;
//!
//! let secret = SecretKey::parse_encrypted(&key_file, "passphrase")?;
//! let sig = secret.sign(b"data", "signature from bundle", "file:data");
//! let sig = Signature::parse(&sig.to_file_string())?;
//! sig.verify(&PublicKey::parse(&pub_file)?, b"data")?;
//! assert_eq!(sig.trusted_comment(), "file:data");
//! # Ok::<(), bundle_file::sign::SignError>(())
//! ```

pub mod digest;
pub mod error;
pub mod kdf;
pub mod key_id;
pub mod public_key;
pub mod secret_key;
pub mod signature;
mod text;

#[cfg(test)]
mod test_vectors;

pub use digest::{MessageDigest, MessageHasher};
pub use error::{CommentKind, FileKind, SignError};
pub use kdf::{KdfParams, ScryptCost};
pub use key_id::KeyId;
pub use public_key::PublicKey;
pub use secret_key::SecretKey;
pub use signature::{check_comments, Signature, SignatureAlgorithm};
pub use text::{MAX_TRUSTED_COMMENT_BYTES, MAX_UNTRUSTED_COMMENT_BYTES};
