//! `installer deploy`: from a verified bundle and one site file to a deployed stack.
//!
//! - [`steps`]: the steps, in order, and what each wait step waits for.
//! - [`site`]: the site file, its profile and switches.
//! - [`charts`]: the bundle's charts, written out for helm.
//! - [`render`]: helm with the installer as pinning post-renderer.
//! - [`namespaces`]: the releases' namespaces and their Pod Security levels.
//! - [`plan`]: every step with its releases, values and waits, from `releases.toml` (compiled
//!   in, [`RELEASES_TOML`]), the site file and the bundle.
//! - [`journal`]: each step's outcome and the releases' revisions, kept in the cluster.
//! - [`run`]: runs the plan on a [`crate::kube::Cluster`]: resume, upgrade rules, rollback.
//! - [`dry_run`]: the plan and every release's final manifests, written to a directory.
//! - [`status`]: the journal next to what the cluster runs now.

pub mod built_images;
pub mod charts;
pub mod dry_run;
mod error;
pub mod journal;
pub mod namespaces;
pub mod plan;
pub mod preflight;
pub mod render;
pub mod run;
pub mod site;
pub mod status;
pub mod steps;
pub mod upstream_values;

use std::path::Path;

pub use error::DeployError;
use online::spec::RenderPlan;

/// The releases the installer deploys: the repository's `releases.toml`, as this installer
/// was built with it (the same file `bundle build` renders to find the images).
pub const RELEASES_TOML: &str = include_str!("../../../../releases.toml");

/// [`RELEASES_TOML`], parsed.
pub fn releases() -> Result<RenderPlan, DeployError> {
    RenderPlan::parse(RELEASES_TOML, Path::new("releases.toml")).map_err(|e| DeployError::Bundle {
        what: "releases.toml".into(),
        message: e.to_string(),
    })
}
