//! What can go wrong before any arithmetic: files, YAML, and values that are not numbers.

use std::path::PathBuf;

/// Why a capacity check could not be computed (a check that fails is a [`super::Report`]).
#[derive(Debug, thiserror::Error)]
pub enum CapacityError {
    /// A values file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A values file is not YAML.
    #[error("{path} is not valid YAML")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_norway::Error,
    },
    /// The layered values lack a field the check needs, or give it the wrong type.
    #[error("profile {profile}: the effective values do not fit the chart's layout")]
    Values {
        /// The profile whose values were layered.
        profile: String,
        /// The deserialiser's error.
        source: serde_norway::Error,
    },
    /// A CPU or memory quantity is not one Kubernetes accepts.
    #[error("profile {profile}: {field} = `{value}` is not a Kubernetes {kind} quantity")]
    Quantity {
        /// The profile whose values were layered.
        profile: String,
        /// Where the quantity is, as a values path.
        field: String,
        /// The text found.
        value: String,
        /// `cpu` or `memory`.
        kind: &'static str,
    },
    /// Neither `--profile` nor the site file names a profile.
    #[error("{site} names no profile (`profile:`) and none was given")]
    NoProfile {
        /// The site file.
        site: PathBuf,
    },
    /// The profile name is not one of the chart's `profiles/<name>.yaml`.
    #[error("profile `{profile}` is not in {dir} (have: {known})")]
    UnknownProfile {
        /// The name asked for.
        profile: String,
        /// The chart's profiles directory.
        dir: PathBuf,
        /// The profiles there, comma-separated.
        known: String,
    },
    /// The site file does not declare `nodes`.
    #[error("{site} declares no nodes (nodes.count, nodes.cpu, nodes.memoryGiB)")]
    NoNodes {
        /// The site file.
        site: PathBuf,
    },
}
