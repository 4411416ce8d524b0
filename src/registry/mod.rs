//! OCI distribution: image references and digests, and the registry client.

pub mod reference;

pub use reference::{Digest, Reference, ReferenceError};
