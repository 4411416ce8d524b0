//! Why a deploy (or its plan) fails.

use std::path::{Path, PathBuf};

/// Why a deploy or its plan fails.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The site file cannot be read or is not acceptable.
    #[error("site file {}: {message}", path.display())]
    Site {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A member of the bundle (or the compiled-in releases) is not as the deploy needs it.
    #[error("{what}: {message}")]
    Bundle {
        /// What was read.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// Reading the bundle failed.
    #[error(transparent)]
    Archive(#[from] bundle_file::BundleError),
    /// A delta bundle over a site that does not run its base.
    #[error("{delta} is a delta built on {base}; the site runs {site}: deploy {base} first")]
    DeltaBase {
        /// The delta (`name version`).
        delta: String,
        /// The bundle it was built against.
        base: String,
        /// What the site's deploy journal records, or that there is none.
        site: String,
    },
    /// The bundle carries no chart for a release.
    #[error(
        "release {release} (releases.toml line {line}) needs chart {chart}, which the bundle \
         does not carry (it carries: {carried})"
    )]
    MissingChart {
        /// The chart's name.
        chart: String,
        /// The release.
        release: String,
        /// Its line in releases.toml.
        line: usize,
        /// The charts the bundle carries.
        carried: String,
    },
    /// A name given is not known.
    #[error("unknown {what} {name:?} (known: {known})")]
    Unknown {
        /// What kind of name.
        what: String,
        /// The name.
        name: String,
        /// The names known.
        known: String,
    },
    /// helm refused a release, or the post-renderer refused its images.
    #[error("release {release}: {message}")]
    Helm {
        /// The release.
        release: String,
        /// What helm or the post-renderer said.
        message: String,
    },
    /// Every problem found while planning.
    #[error("the deploy cannot be planned:\n{}", .0.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n"))]
    Plan(Vec<String>),
    /// A program cannot be started.
    #[error("running {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request to the cluster failed.
    #[error(transparent)]
    Cluster(#[from] crate::kube::KubeError),
    /// A step of the deploy failed; the deploy stopped there.
    #[error("step {step} failed: {message}\n(fix the cause and run the same command again to resume, or `installer rollback`)")]
    StepFailed {
        /// The step.
        step: String,
        /// Why, with the objects and events that explain it.
        message: String,
    },
    /// An upgrade the stack cannot take, or nothing to upgrade or roll back.
    #[error("{0}")]
    Upgrade(String),
    /// The pinning plugin cannot be written.
    #[error(transparent)]
    Plugin(#[from] crate::pin::plugin::PluginError),
    /// File I/O.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl DeployError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> DeployError {
        DeployError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
