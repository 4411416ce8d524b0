//! Errors of the online pipeline, each naming the image (and where images.toml lists it).

use crate::spec::SpecError;
use crate::store::StoreError;
use bundle_file::BundleError;
use registry::RegistryError;

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
    /// A file of files.toml cannot be locked or carried.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// The bill of materials cannot be written.
    #[error("the bill of materials: {0}")]
    Sbom(#[from] crate::sbom::SbomError),
    /// The old bundle of `--since` cannot be read.
    #[error("the base bundle {path} (--since): {message}")]
    Base { path: String, message: String },
    /// `--locked` and images.toml disagree with manifests.lock.
    #[error("manifests.lock does not match images.toml (run `bundle lock`):\n{0}")]
    LockMismatch(String),
    /// images.toml or manifests.lock is not acceptable.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The blob cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A cached blob did not hash to its name while it was packed; it was removed from the
    /// cache, and nothing was written at the output.
    #[error(
        "the cached blob {digest} ({file}) hashes to sha256:{actual}: removed from the cache; \
         nothing was written; run the build again to fetch it anew"
    )]
    CorruptedCache {
        /// The blob's digest.
        digest: String,
        /// Its file in the cache.
        file: String,
        /// What its content hashes to.
        actual: String,
    },
    /// Packing the bundle failed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A tool cannot be locked or fetched.
    #[error(transparent)]
    Tool(#[from] crate::tools::ToolError),
    /// A time the build writes cannot be expressed.
    #[error(transparent)]
    Timestamp(#[from] oci::time::TimestampError),
    /// The ClamAV signature set cannot be taken.
    #[error(transparent)]
    Clamav(#[from] crate::clamav::collect::CollectError),
    /// A chart cannot be packaged, resolved or fetched.
    #[error(transparent)]
    Chart(Box<crate::chart::ChartError>),
    /// The releases cannot be rendered, or render images images.toml lacks.
    #[error(transparent)]
    Discover(#[from] crate::discover::DiscoverError),
    /// The stack chart's capacity cannot be computed.
    #[error("capacity of {}", chart.display())]
    Capacity {
        /// The chart.
        chart: std::path::PathBuf,
        /// Why.
        #[source]
        source: capacity::CapacityError,
    },
    /// A scale profile's connection pools exceed what PostgreSQL allows, one line each.
    #[error("{0}")]
    CapacityFails(String),
    /// files.toml's `image` is not an image of images.toml.
    #[error(
        "{path}:{line}: image {image:?} (the download page's web image) is not an image of \
         images.toml"
    )]
    FilesImage {
        /// files.toml.
        path: String,
        /// The line of `image`.
        line: usize,
        /// The image as written.
        image: String,
    },
    /// A lock entry disagrees with the manifests its digests name (a hand-edited lock).
    #[error("{location}: {message} (run `bundle lock` again)")]
    LockDisagrees {
        /// The entry, `manifests.lock:LINE`.
        location: String,
        /// What disagrees.
        message: String,
    },
    /// The CA directory cannot be carried.
    #[error(transparent)]
    Ca(#[from] crate::ca::CaError),
    /// Fetching or packing failed.
    #[error("building {bundle}")]
    Building {
        /// The bundle file.
        bundle: String,
        /// Why.
        #[source]
        source: Box<BuildError>,
    },
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
