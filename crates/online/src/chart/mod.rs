//! The Helm chart pipeline: deterministic packaging of chart directories ([`package()`]), the
//! chart as a Helm OCI artifact ([`artifact`]), a static chart repository ([`repo`]), and
//! pinned upstream charts ([`upstream`] resolves and fetches what `charts.toml`,
//! [`crate::spec::charts`], asks for into [`crate::spec::LockedChart`]). See `docs/charts.md`.

pub mod artifact;
pub mod error;
pub mod ignore;
pub mod metadata;
pub mod package;
pub mod repo;
pub mod upstream;
mod yaml;

pub use artifact::ChartArtifact;
pub use error::ChartError;
pub use metadata::ChartMetadata;
pub use package::{package, PackagedChart};
pub use upstream::Upstream;
