//! The bundle file: a signed, seekable `tar.zst` whose first member, `bundle.json`, is its
//! table of contents.
//!
//! - [`archive`]: the byte format (tar members in independent zstd frames, a seek table),
//!   knowing nothing of bundle.json.
//! - [`sign`]: minisign's key and signature formats.
//! - [`toc`]: bundle.json and `SHA256SUMS`.
//! - the bundle as a whole: [`pack`] a staged directory, [`open`] one, check its signatures
//!   against a [`trust`] policy and [`verify`] every member ([`signed`] does both for a
//!   bundle about to be used), [`signing`] (countersign),
//!   [`inspect`], [`extract`], [`split`] into volumes, and [`stream`] a member's bytes.

pub mod archive;
mod error;
pub mod external;
pub mod extract;
pub mod inspect;
mod member_hashes;
pub mod open;
pub mod pack;
pub mod sign;
pub mod signed;
pub mod signing;
pub mod split;
mod stored_runs;
pub mod stream;
pub mod toc;
pub mod trust;
pub mod verify;
mod writeback;

#[cfg(test)]
mod tests;

pub use error::{BundleError, SignatureError};
pub use open::{Bundle, FoundSignature, Located};
pub use signed::{MemberCheck, SignedBundle};
pub use toc::TableOfContents;
pub use trust::TrustPolicy;

/// Reports progress of long operations; the library never prints, binaries draw bars.
pub trait Progress: Sync {
    /// A phase starts, with the total number of bytes it will process.
    fn start(&self, _phase: &str, _total: u64) {}
    /// `bytes` more were processed.
    fn advance(&self, _bytes: u64) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}
