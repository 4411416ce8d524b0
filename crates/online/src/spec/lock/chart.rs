//! What an upstream chart resolved to: one `[[chart]]` table of `manifests.lock`.
//!
//! ```toml
//! [[chart]]
//! name = "cert-manager"
//! version = "v1.19.1"
//! repo = "https://charts.jetstack.io"                          # or oci = "oci://..."
//! url = "https://charts.jetstack.io/charts/cert-manager-v1.19.1.tgz"   # repo only
//! manifest_digest = "sha256:..."                               # oci only
//! digest = "sha256:..."                                        # the .tgz
//! size = 91873
//! ```

use crate::spec::error::{Location, SpecError};
use oci::Digest;

use crate::spec::charts::{oci_tag as tag, ChartSource, UpstreamChart};

/// A resolved upstream chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedChart {
    /// The chart's name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// Where it was found.
    pub source: LockedSource,
    /// SHA-256 of the `.tgz`.
    pub digest: Digest,
    /// Size of the `.tgz` in bytes.
    pub size: u64,
}

/// Where a locked chart is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockedSource {
    /// A classic repository.
    Repo {
        /// The repository URL.
        repo: String,
        /// The `.tgz` URL its index gave.
        url: String,
    },
    /// An OCI repository.
    Oci {
        /// `oci://registry/repository`.
        repository: String,
        /// The digest of the artifact's manifest.
        manifest_digest: Digest,
    },
}

impl LockedChart {
    /// The chart as a TOML table (keys as in the module documentation).
    pub fn to_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        let mut put = |key: &str, value: toml::Value| {
            table.insert(key.to_string(), value);
        };
        put("name", self.name.clone().into());
        put("version", self.version.clone().into());
        match &self.source {
            LockedSource::Repo { repo, url } => {
                put("repo", repo.clone().into());
                put("url", url.clone().into());
            }
            LockedSource::Oci {
                repository,
                manifest_digest,
            } => {
                put("oci", repository.clone().into());
                put("manifest_digest", manifest_digest.to_string().into());
            }
        }
        put("digest", self.digest.to_string().into());
        put(
            "size",
            toml::Value::Integer(self.size.min(i64::MAX as u64) as i64),
        );
        table
    }

    /// Reads a table written by [`LockedChart::to_table`]; `location` (the table's header)
    /// is named in errors.
    pub fn from_table(table: &toml::Table, location: &Location) -> Result<LockedChart, SpecError> {
        let invalid = |message: String| SpecError::invalid(location.clone(), message);
        let text = |key: &str| -> Result<Option<String>, SpecError> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid(format!("chart key {key} must be a string"))),
            }
        };
        let required = |key: &str| -> Result<String, SpecError> {
            text(key)?.ok_or_else(|| invalid(format!("chart table lacks {key}")))
        };
        let digest = |key: &str| -> Result<Digest, SpecError> {
            let value = required(key)?;
            Digest::parse(&value).map_err(|e| invalid(format!("chart {key}: {}", e.reason)))
        };
        let name = required("name")?;
        let version = required("version")?;
        let allowed: &[&str] = match (table.contains_key("repo"), table.contains_key("oci")) {
            (true, false) => &["name", "version", "repo", "url", "digest", "size"],
            (false, true) => &[
                "name",
                "version",
                "oci",
                "manifest_digest",
                "digest",
                "size",
            ],
            _ => {
                return Err(invalid(format!(
                    "chart {name} needs exactly one of repo and oci"
                )))
            }
        };
        if let Some(key) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(invalid(format!("chart {name}: unknown key {key}")));
        }
        let source = if table.contains_key("repo") {
            LockedSource::Repo {
                repo: required("repo")?,
                url: required("url")?,
            }
        } else {
            LockedSource::Oci {
                repository: required("oci")?,
                manifest_digest: digest("manifest_digest")?,
            }
        };
        let size = match table.get("size") {
            Some(toml::Value::Integer(n)) if *n >= 0 => *n as u64,
            _ => {
                return Err(invalid(format!(
                    "chart {name}: size must be a non-negative integer"
                )))
            }
        };
        Ok(LockedChart {
            name,
            version,
            source,
            digest: digest("digest")?,
            size,
        })
    }

    /// Whether this lock entry still answers `spec`: same name and source, and a version the
    /// spec accepts (in the range of a repository chart, equal for an OCI chart).
    pub fn satisfies(&self, spec: &UpstreamChart) -> bool {
        if self.name != spec.name {
            return false;
        }
        match (&self.source, &spec.source) {
            (LockedSource::Repo { repo, .. }, ChartSource::Repo { url, range }) => {
                repo == url
                    && crate::spec::charts::parse_version(&self.version)
                        .is_some_and(|v| range.matches(&v))
            }
            (LockedSource::Oci { repository, .. }, ChartSource::Oci { repository: wanted }) => {
                repository == wanted && tag(&self.version) == tag(&spec.version)
            }
            _ => false,
        }
    }

    /// Where the chart comes from, for messages: the `.tgz` URL or `oci://...@manifest`.
    pub fn origin(&self) -> String {
        match &self.source {
            LockedSource::Repo { url, .. } => url.clone(),
            LockedSource::Oci {
                repository,
                manifest_digest,
            } => format!("{repository}@{manifest_digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn oci() -> LockedChart {
        LockedChart {
            name: "gateway-helm".into(),
            version: "v1.9.0".into(),
            source: LockedSource::Oci {
                repository: "oci://docker.io/envoyproxy/gateway-helm".into(),
                manifest_digest: Digest::of(b"m"),
            },
            digest: Digest::of(b"t"),
            size: 42,
        }
    }

    #[test]
    fn tables_round_trip() {
        let here = Location::line(Path::new("manifests.lock"), 7);
        let repo = LockedChart {
            source: LockedSource::Repo {
                repo: "https://charts.jetstack.io".into(),
                url: "https://charts.jetstack.io/charts/cert-manager-v1.19.1.tgz".into(),
            },
            name: "cert-manager".into(),
            ..oci()
        };
        for chart in [oci(), repo] {
            assert_eq!(
                LockedChart::from_table(&chart.to_table(), &here).unwrap(),
                chart
            );
        }
    }

    #[test]
    fn bad_tables_are_refused_at_their_location() {
        let here = Location::line(Path::new("manifests.lock"), 7);
        let mut table = oci().to_table();
        table.insert("digest".into(), "sha256:zz".into());
        let error = LockedChart::from_table(&table, &here)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("manifests.lock:7: chart digest"),
            "{error}"
        );
        let mut table = oci().to_table();
        table.insert("url".into(), "https://x".into());
        let error = LockedChart::from_table(&table, &here)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown key url"), "{error}");
        let mut table = oci().to_table();
        table.remove("size");
        assert!(LockedChart::from_table(&table, &here).is_err());
    }

    #[test]
    fn a_lock_entry_satisfies_the_spec_it_came_from() {
        let spec = |version: &str| UpstreamChart {
            name: "gateway-helm".into(),
            source: ChartSource::Oci {
                repository: "oci://docker.io/envoyproxy/gateway-helm".into(),
            },
            version: version.into(),
            line: 1,
        };
        assert!(oci().satisfies(&spec("v1.9.0")));
        assert!(!oci().satisfies(&spec("v1.9.1")));
    }
}
