//! Image pinning: every image a rendered release names becomes
//! `REGISTRY[/PREFIX]/<repository>@sha256:<digest the bundle carries>`, or the release is
//! refused. Helm runs the installer itself as a post-renderer (a `postrenderer/v1` plugin,
//! [`plugin`]), so what reaches the cluster names only what `installer load` pushed.
//!
//! - [`BundleImages`]: the bundle's images from its `index.json`.
//! - [`post_render`]: rewrites a rendered manifest stream, by the field rules of
//!   `bundle find-images` (containers, init containers, CR image fields, image flags and
//!   variables).
//! - [`plugin`]: the Helm plugin directory that calls `installer post-render`.

mod images;
pub mod plugin;
mod rewrite;

use std::fmt;

use oci::Digest;

pub use images::{BundleImages, NotCarried};
pub use rewrite::{post_render, Pinned};

/// One image field the pinning refuses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// The release.
    pub release: String,
    /// The template the object came from.
    pub template: String,
    /// `Kind/name` of the object.
    pub object: String,
    /// Field path.
    pub field: String,
    /// The value as rendered.
    pub image: String,
    /// Why it cannot be pinned.
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "release {}, {} ({}), field {}: {}: {}",
            self.release, self.object, self.template, self.field, self.image, self.reason
        )
    }
}

/// Why a release cannot be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The bundle's `index.json` cannot be read or does not match `bundle.json`.
    #[error("reading the bundle's index.json")]
    Bundle(#[from] bundle_file::BundleError),
    /// `index.json` is not an OCI index.
    #[error("index.json of the bundle is not an OCI index")]
    Index(#[source] serde_json::Error),
    /// An `index.json` entry has no name.
    #[error("index.json entry {0} has no image name")]
    Unnamed(Digest),
    /// An `index.json` entry's name is not a reference.
    #[error("index.json names {name:?}, which is not an image reference: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A rendered document is not YAML.
    #[error("release {release}, template {template}: {message}")]
    Yaml {
        /// The release.
        release: String,
        /// The template.
        template: String,
        /// The parser's message.
        message: String,
    },
    /// Images the bundle does not carry, every one.
    #[error("{} image(s) not in the bundle:\n{}", .0.len(), lines(.0))]
    Refused(Vec<Refusal>),
}

/// One refusal per line, indented.
fn lines(refusals: &[Refusal]) -> String {
    refusals
        .iter()
        .map(|r| format!("  - {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}
