//! The Helm chart pipeline: deterministic packaging of chart directories ([`package()`]), the
//! chart as a Helm OCI artifact ([`oci`]), a static chart repository ([`repo`]), and pinned
//! upstream charts ([`spec`] for `charts.toml`, [`upstream`] to resolve and fetch them,
//! [`lock`] for what they resolved to). See `docs/charts.md`.

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

/// `seconds` since the epoch as RFC 3339 in UTC (`2026-01-31T12:00:00Z`).
pub(crate) fn rfc3339(seconds: u64) -> Result<String, ChartError> {
    let invalid = || ChartError::Timestamp { seconds };
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(invalid)?;
    time.format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_800_000_000).unwrap(),
            "2027-01-15T08:00:00Z"
        );
        assert!(super::rfc3339(u64::MAX).is_err());
    }
}
