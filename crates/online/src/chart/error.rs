//! Errors of the chart pipeline, each naming the file, chart, version or digest at fault.

use std::path::PathBuf;

use crate::store::cache::StoreError;
use registry::RegistryError;

/// Why a chart cannot be packaged, described, resolved or fetched.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// A file or directory cannot be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `Chart.yaml` does not parse or breaks helm's rules.
    #[error("{}: {message}", path.display())]
    ChartYaml {
        /// The `Chart.yaml` (or the `.tgz` holding it).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `.helmignore` line is not a pattern helm accepts.
    #[error("{}:{line}: {message}", path.display())]
    Helmignore {
        /// The `.helmignore` file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A chart directory holds something a package cannot carry.
    #[error("chart {}: {message}", dir.display())]
    Content {
        /// The chart directory.
        dir: PathBuf,
        /// What is wrong, naming the file.
        message: String,
    },
    /// A `.tgz` is not a helm chart archive.
    #[error("{} is not a chart archive: {message}", path.display())]
    NotAChart {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A Unix time that cannot be written as an RFC 3339 date.
    #[error("timestamp {seconds} is out of range")]
    Timestamp {
        /// The seconds since the epoch.
        seconds: u64,
    },
    /// Two charts of the same name and version given to one repository index.
    #[error("chart {name} version {version} is given twice")]
    Duplicate {
        /// The chart.
        name: String,
        /// Its version.
        version: String,
    },
    /// Downloading a chart archive failed.
    #[error("chart {chart}")]
    Download {
        /// The chart being fetched.
        chart: String,
        /// What failed.
        #[source]
        source: crate::store::DownloadError,
    },
    /// An HTTP request of a chart repository failed.
    #[error("chart {chart}: cannot fetch {url}")]
    Http {
        /// The chart being resolved or fetched.
        chart: String,
        /// The URL.
        url: String,
        /// The network error or bad status.
        #[source]
        source: reqwest::Error,
    },
    /// A repository's `index.yaml` cannot be used.
    #[error("chart {chart}: index {url}: {message}")]
    Index {
        /// The chart being resolved.
        chart: String,
        /// The index URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No version in the repository matches the range asked for.
    #[error("chart {chart}: no version in {repo} matches {range} (available: {available})")]
    NoMatch {
        /// The chart.
        chart: String,
        /// The repository URL.
        repo: String,
        /// The range asked for.
        range: String,
        /// The versions the index lists, highest first (abridged).
        available: String,
    },
    /// Downloaded content does not have the digest the index or the lock gives.
    #[error("chart {chart} version {version} from {source_url}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        /// The chart.
        chart: String,
        /// Its version.
        version: String,
        /// Where it came from.
        source_url: String,
        /// The digest the index or the lock gives.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// The registry failed to serve a chart artifact.
    #[error("chart {chart}")]
    Registry {
        /// The chart.
        chart: String,
        /// The registry error (naming registry and artifact).
        #[source]
        source: RegistryError,
    },
    /// An OCI artifact is not a helm chart as `helm push` writes it.
    #[error("chart {chart}: {reference} is not a helm chart artifact: {message}")]
    NotHelmArtifact {
        /// The chart.
        chart: String,
        /// The reference fetched.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// The blob cache failed.
    #[error("chart {chart}: blob cache")]
    Cache {
        /// The chart.
        chart: String,
        /// The cache error (naming the blob or path).
        #[source]
        source: StoreError,
    },
}

/// A [`ChartError::Io`] for `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ChartError + '_ {
    move |source| ChartError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl From<oci::time::TimestampError> for ChartError {
    fn from(error: oci::time::TimestampError) -> Self {
        ChartError::Timestamp {
            seconds: error.seconds,
        }
    }
}
