//! Every OCI fact, once: content digests, image references, platforms, media types, the
//! descriptor, manifest and index models, the image layout's paths and the manifest size
//! limit; and the few primitives under them that every crate shares (a hashing writer,
//! RFC 3339 times, a blob's bytes as pieces, an error chain on one line).
//!
//! Nothing here does I/O beyond the writer it is given.

mod descriptor;
mod digest;
mod error_chain;
pub mod files;
pub mod layout;
pub mod media;
mod pieces;
pub mod platform;
mod reference;
pub mod time;

pub use descriptor::{Descriptor, ImageIndex, ImageManifest, Manifest, ManifestError};
pub use digest::{Digest, DigestWriter};
pub use error_chain::error_chain;
pub use layout::{blob_path, MAX_MANIFEST_SIZE};
pub use pieces::{pieces_of, Pieces};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError, DOCKER_HUB, DOCKER_HUB_API};
