//! The online side: what `bundle` does on the release engineer's build host.
//!
//! - [`spec`]: every input file (images.toml, charts.toml, tools.toml, releases.toml) and
//!   manifests.lock, with file:line errors.
//! - [`store`]: the content-addressed blob cache and plain-file downloads into it.
//! - [`build`]: the pipeline from the lock to a signed bundle: resolve, fetch, check what the
//!   charts render, stage the OCI layout, pack.
//! - [`chart`]: Helm charts: deterministic packaging, OCI artifacts, the static repository,
//!   upstream resolution.
//! - [`discover`]: `helm template` of every release and profile, and the image references in
//!   what it renders.
//! - [`clamav`]: signature database validation and collection.
//! - [`tools`]: the pinned helm and kubectl binaries.
//! - [`ca`]: the site root CA (generate or import, age-encrypted key).
//! - [`sbom`]: the bundle's bill of materials (CycloneDX) and `bundle diff`.

pub mod build;
pub mod ca;
pub mod chart;
pub mod clamav;
pub mod discover;
pub mod files;
pub mod sbom;
pub mod spec;
pub mod store;
pub mod tools;
