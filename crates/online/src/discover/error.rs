//! Why images cannot be discovered, or why the discovered images do not match images.toml.

use std::io;
use std::path::PathBuf;

use crate::spec::SpecError;

/// Why discovery or its check failed. Every message names the file, release, chart, template
/// or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The render plan (`releases.toml`) cannot be read or breaks a rule.
    #[error(transparent)]
    Plan(#[from] SpecError),
    /// The helm binary cannot be started.
    #[error(
        "cannot run helm ({}); install it with scripts/install-helm.sh, or name it with \
         --helm or BUNDLE_HELM",
        helm.display()
    )]
    HelmMissing {
        /// The helm binary tried.
        helm: PathBuf,
        /// Why it did not start.
        #[source]
        source: io::Error,
    },
    /// `helm template` failed; `stderr` is what helm said.
    #[error(
        "helm template failed for release {release} (chart {chart}{}): {stderr}",
        profile_note(profile)
    )]
    Render {
        /// The release.
        release: String,
        /// The chart as the plan names it.
        chart: String,
        /// The profile rendered, if any.
        profile: Option<String>,
        /// helm's error output, trimmed.
        stderr: String,
    },
    /// A document of helm's output is not YAML.
    #[error("release {release} (chart {chart}{}), template {template}: rendered YAML does not parse: {message}", profile_note(profile))]
    Yaml {
        /// The release.
        release: String,
        /// The chart as the plan names it.
        chart: String,
        /// The profile rendered, if any.
        profile: Option<String>,
        /// The template named by the document's `# Source:` line.
        template: String,
        /// The parser's message.
        message: String,
    },
    /// A field that must name an image holds something that is not an image reference.
    #[error("{place}: {value:?} is not an image reference: {reason}")]
    InvalidImage {
        /// `release R (chart C), template T, Kind/name, field F`.
        place: String,
        /// The value found.
        value: String,
        /// Why it is not a reference.
        reason: &'static str,
    },
    /// Rendered images are not in images.toml; `details` has one line per place.
    #[error("{count} rendered image(s) not in {}:\n{details}", images.display())]
    Missing {
        /// The image list.
        images: PathBuf,
        /// How many distinct images are missing.
        count: usize,
        /// For each missing image, every place it is rendered, one line each.
        details: String,
    },
}

fn profile_note(profile: &Option<String>) -> String {
    match profile {
        Some(p) => format!(", profile {p}"),
        None => String::new(),
    }
}
