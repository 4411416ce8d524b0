//! Errors of the online pipeline, each naming the image (and where images.toml lists it).

use crate::container::BundleError;
use crate::registry::RegistryError;
use crate::spec::SpecError;
use crate::store::StoreError;

/// What can stop `bundle lock` or `bundle build`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The registry refused or failed a request for an image.
    #[error("{location}: {image}")]
    Registry {
        location: String,
        image: String,
        #[source]
        source: Box<RegistryError>,
    },
    /// The image's index has no manifest for a requested platform.
    #[error("{location}: {image} has no {platform} image (the registry offers {available})")]
    MissingPlatform {
        location: String,
        image: String,
        platform: String,
        available: String,
    },
    /// A manifest or index that cannot be used.
    #[error("{image}: {message}")]
    BadManifest { image: String, message: String },
    /// `--locked` and images.toml disagree with manifests.lock.
    #[error("manifests.lock does not match images.toml (run `bundle lock`):\n{0}")]
    LockMismatch(String),
    /// images.toml or manifests.lock is not acceptable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The blob cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Packing the bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A tool cannot be locked or fetched.
    #[error(transparent)]
    Tool(#[from] crate::tools::ToolError),
    /// The ClamAV signature set cannot be taken.
    #[error(transparent)]
    Clamav(#[from] crate::clamav::collect::CollectError),
    /// A chart cannot be packaged, resolved or fetched.
    #[error(transparent)]
    Chart(Box<crate::chart::ChartError>),
    /// I/O on a named path.
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::chart::ChartError> for BuildError {
    fn from(error: crate::chart::ChartError) -> Self {
        BuildError::Chart(Box::new(error))
    }
}

impl BuildError {
    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        BuildError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
