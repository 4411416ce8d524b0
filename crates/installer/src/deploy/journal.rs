//! The deploy journal: which bundle and site file a deploy runs, each step's outcome and the
//! release revisions it made. Kept in the cluster (ConfigMap [`JOURNAL_NAME`] in
//! [`JOURNAL_NAMESPACE`]) and mirrored to a local file, so a rerun resumes after the last
//! finished step, `rollback` knows each release's previous revision and `upgrade` knows the
//! versions running.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::DeployError;
use crate::kube::{Cluster, ObjectRef};

/// Format of the journal.
pub const FORMAT: &str = "messenger-deploy-journal/v1";
/// The ConfigMap that holds the journal.
pub const JOURNAL_NAME: &str = "messenger-deploy-journal";
/// Its namespace.
pub const JOURNAL_NAMESPACE: &str = "default";
/// Its key.
const KEY: &str = "journal.json";

/// What a step came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Started, not finished (the installer stopped during it).
    Running,
    /// Finished.
    Done,
    /// Not needed this time.
    Skipped,
    /// Failed; the deploy stopped.
    Failed,
    /// Undone by `installer rollback`.
    RolledBack,
}

/// One release a step installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Chart name and version.
    pub chart: String,
    /// The revision before this deploy, if the release existed.
    pub previous: Option<u32>,
    /// The revision this deploy made.
    pub revision: u32,
    /// The pinned images the release runs.
    pub images: Vec<String>,
}

/// One step's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// Outcome.
    pub state: StepState,
    /// What happened (or why it failed / was skipped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Releases installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<ReleaseRecord>,
}

/// The journal of the last deploy of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// [`FORMAT`].
    pub format: String,
    /// `name version` of the bundle.
    pub bundle: String,
    /// SHA-256 of the bundle's `bundle.json` (which pins every member).
    pub bundle_digest: String,
    /// SHA-256 of the site file.
    pub site_digest: String,
    /// Versions that decide what an upgrade may do (`synapse`, `postgresql`).
    pub versions: BTreeMap<String, String>,
    /// Steps, in order, as far as the deploy got.
    pub steps: Vec<StepRecord>,
}

impl Journal {
    /// A new journal for a deploy of `bundle` with a site file.
    pub fn new(
        bundle: String,
        bundle_digest: String,
        site_digest: String,
        versions: BTreeMap<String, String>,
    ) -> Journal {
        Journal {
            format: FORMAT.to_string(),
            bundle,
            bundle_digest,
            site_digest,
            versions,
            steps: Vec::new(),
        }
    }

    /// Whether this journal records a deploy of the same bundle and site file.
    pub fn same_deploy(&self, other: &Journal) -> bool {
        self.bundle_digest == other.bundle_digest && self.site_digest == other.site_digest
    }

    /// Refuses this deploy of a delta built on `base` unless the site's journal (`installed`)
    /// records `base`, or this very delta (a rerun).
    pub fn check_base(
        &self,
        base: &bundle_file::external::Base,
        installed: Option<&Journal>,
    ) -> Result<(), DeployError> {
        let site = match installed {
            Some(j) if j.bundle_digest == base.bundle_json_sha256 => return Ok(()),
            Some(j) if j.bundle_digest == self.bundle_digest => return Ok(()),
            Some(j) => format!(
                "{} (bundle.json {})",
                j.bundle,
                j.bundle_digest.get(..12).unwrap_or(&j.bundle_digest)
            ),
            None => "nothing (no deploy journal in the cluster)".to_string(),
        };
        Err(DeployError::DeltaBase {
            delta: self.bundle.clone(),
            base: base.to_string(),
            site,
        })
    }

    /// The record of step `name`.
    pub fn step(&self, name: &str) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// Sets the record of step `name`, in place or appended.
    pub fn record(&mut self, record: StepRecord) {
        match self.steps.iter_mut().find(|s| s.name == record.name) {
            Some(existing) => *existing = record,
            None => self.steps.push(record),
        }
    }

    /// The journal in the cluster, if there is one.
    pub fn read(cluster: &dyn Cluster) -> Result<Option<Journal>, DeployError> {
        let object = ObjectRef {
            kind: "ConfigMap".into(),
            namespace: Some(JOURNAL_NAMESPACE.into()),
            name: JOURNAL_NAME.into(),
        };
        let Some(map) = cluster.get(&object).map_err(DeployError::Cluster)? else {
            return Ok(None);
        };
        let text = map["data"][KEY].as_str().unwrap_or("");
        let journal: Journal = serde_json::from_str(text).map_err(|e| DeployError::Bundle {
            what: format!("the journal ({object})"),
            message: e.to_string(),
        })?;
        if journal.format != FORMAT {
            return Err(DeployError::Bundle {
                what: format!("the journal ({object})"),
                message: format!(
                    "format {:?}; this installer reads {FORMAT:?}",
                    journal.format
                ),
            });
        }
        Ok(Some(journal))
    }

    /// Saves the journal to the cluster and to `local` (written whole, then renamed).
    pub fn save(&self, cluster: &dyn Cluster, local: &Path) -> Result<(), DeployError> {
        let text = self.save_local(local)?;
        let map = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": JOURNAL_NAME, "namespace": JOURNAL_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "messenger-installer"}},
            "data": {KEY: text},
        });
        cluster
            .apply(&map.to_string())
            .map_err(DeployError::Cluster)
    }

    /// Saves the journal to `local` only (written whole, then renamed); returns its text.
    pub fn save_local(&self, local: &Path) -> Result<String, DeployError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| DeployError::Bundle {
            what: "the journal".into(),
            message: e.to_string(),
        })?;
        bundle_file::pack::write_atomically(local, |mut file| {
            file.write_all(format!("{text}\n").as_bytes())
                .map_err(|e| bundle_file::BundleError::io(local, e))?;
            Ok(file)
        })?;
        Ok(text)
    }

    /// The journal last saved to `local`, if there is one.
    pub fn read_local(local: &Path) -> Result<Option<Journal>, DeployError> {
        let text = match oci::files::read_capped_to_string(local, oci::files::INPUT_FILE_LIMIT) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DeployError::io(local, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| DeployError::Bundle {
                what: local.display().to_string(),
                message: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bundle_file::external::Base;

    fn journal(bundle: &str, digest: &str) -> Journal {
        Journal::new(bundle.into(), digest.into(), "site".into(), BTreeMap::new())
    }

    fn base() -> Base {
        Base {
            name: "messenger".into(),
            version: "1.0".into(),
            bundle_json_sha256: "aaaa".repeat(16),
        }
    }

    #[test]
    fn a_delta_deploys_over_its_base_or_over_itself() {
        let delta = journal("messenger 1.1", &"bbbb".repeat(16));
        let installed = journal("messenger 1.0", &"aaaa".repeat(16));
        delta.check_base(&base(), Some(&installed)).unwrap();
        delta.check_base(&base(), Some(&delta)).unwrap();
    }

    #[test]
    fn a_delta_over_another_site_or_an_empty_cluster_names_both() {
        let delta = journal("messenger 1.1", &"bbbb".repeat(16));
        let other = journal("messenger 0.9", &"cccc".repeat(16));
        let message = delta
            .check_base(&base(), Some(&other))
            .unwrap_err()
            .to_string();
        for part in [
            "messenger 1.1",
            "messenger 1.0",
            "messenger 0.9",
            "cccccccccccc",
        ] {
            assert!(message.contains(part), "{message}");
        }
        let message = delta.check_base(&base(), None).unwrap_err().to_string();
        assert!(message.contains("no deploy journal"), "{message}");
    }
}
