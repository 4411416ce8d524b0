//! The release engineer's input files and what they resolve to, with line-accurate errors.
//!
//! - [`images`]: `images.toml`, every image the stack runs, by name and tag (or digest), with
//!   the platforms to carry and per-registry settings (plain HTTP, mirrors).
//! - [`lock`]: `manifests.lock`, what `bundle lock` resolved `images.toml` to (index and
//!   per-platform manifest digests and sizes), written deterministically so that it diffs
//!   well and builds from it are reproducible; `bundle build --locked` checks it against
//!   `images.toml` with [`Lock::check_against`].
//! - [`platform`]: `os/arch[/variant]` target platforms.
//!
//! Every parse or validation error is a [`SpecError`] whose [`Location`] names the file, the
//! line and, where it helps, the column: `images.toml:12:7: unknown field ...`.

pub mod clamav;
pub mod error;
pub mod images;
pub mod lock;
pub mod platform;

pub use clamav::ClamavSpec;
pub use error::{Location, SpecError};
pub use images::{ImageSpec, ImagesFile, RegistrySettingsSpec};
pub use lock::{
    Descriptor, FilteredIndex, Lock, LockedImage, LockedPlatform, Mismatch, MismatchKind, Root,
};
pub use platform::{Platform, PlatformError};
