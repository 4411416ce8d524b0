//! Why a load, or one image of it, failed.

use bundle_file::BundleError;
use oci::Digest;
use registry::RegistryError;

use crate::layout::LayoutError;

/// Why a load, or one image of it, failed; [`LoadError::In`] says what was being done.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bundle cannot be read, or failed its member check.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The bundle's OCI layout cannot be read.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The bundle's layout is not something the load can push; the text says what.
    #[error("{0}")]
    Unloadable(String),
    /// An image reference does not parse.
    #[error(transparent)]
    Reference(#[from] oci::ReferenceError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// An update bundle's base blob is not in the target.
    #[error(
        "this update bundle builds on {image}, whose layer {digest} is not in {repository}; \
         load the full bundle first"
    )]
    MissingBase {
        /// The image the bundle builds on.
        image: String,
        /// The missing blob.
        digest: Digest,
        /// The target repository.
        repository: String,
    },
    /// A delta's blobs left to the site are not in the target.
    #[error(
        "this delta builds on {base}: {missing} of the blobs it leaves to the site are not in \
         the registry (first: {digest} in {repository}); load and deploy {base} first"
    )]
    MissingDeltaBase {
        /// The bundle the delta was built against.
        base: String,
        /// How many left-out blobs are missing.
        missing: usize,
        /// The first missing blob.
        digest: Digest,
        /// Its target repository.
        repository: String,
    },
    /// Not tried: the registry could not be reached for an earlier blob or manifest.
    #[error("not tried: registry {registry} cannot be reached (see the first failure)")]
    NotTried {
        /// The registry.
        registry: String,
    },
    /// What was being done when `source` happened.
    #[error("{context}")]
    In {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: Box<LoadError>,
    },
}

/// Adds what was being done to a load error.
pub(crate) trait Within<T> {
    /// `self`'s error inside [`LoadError::In`] with `context()`.
    fn within(self, context: impl FnOnce() -> String) -> Result<T, LoadError>;
}

impl<T, E: Into<LoadError>> Within<T> for Result<T, E> {
    fn within(self, context: impl FnOnce() -> String) -> Result<T, LoadError> {
        self.map_err(|e| LoadError::In {
            context: context(),
            source: Box::new(e.into()),
        })
    }
}
