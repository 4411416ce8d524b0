//! The bundle as a whole: `bundle.json`, its signatures and its members inside the archive.
//! Packing a staged directory, opening, verifying, countersigning, inspecting, extracting.

mod error;
pub mod extract;
pub mod inspect;
pub mod open;
pub mod pack;
pub mod signing;
pub mod split;
pub mod stream;
pub mod trust;
pub mod verify;

#[cfg(test)]
mod tests;

pub use error::{BundleError, SignatureError};
pub use open::{Bundle, FoundSignature, Located};
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
