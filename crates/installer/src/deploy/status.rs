//! `installer status`: what the journal says of the last deploy, next to what the cluster
//! runs now: each step's outcome, each release's revision (recorded and current), its pinned
//! images, and the health of the workloads helm made for it.

use serde::Serialize;

use super::journal::{Journal, StepState};
use super::DeployError;
use crate::kube::{readiness, Cluster, ObjectRef, Readiness};

/// The annotation helm puts on every object of a release.
const RELEASE_ANNOTATION: &str = "meta.helm.sh/release-name";

/// The workload kinds whose health is shown.
const WORKLOADS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];

/// The site as the journal and the cluster show it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The journal in the cluster.
    pub journal: Journal,
    /// Every release the journal records, in install order.
    pub releases: Vec<ReleaseStatus>,
}

/// One release.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseStatus {
    /// Its step.
    pub step: String,
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Chart name and version.
    pub chart: String,
    /// The revision the journal records.
    pub recorded_revision: u32,
    /// The revision deployed now (`None`: not installed).
    pub current_revision: Option<u32>,
    /// The pinned images it runs.
    pub images: Vec<String>,
    /// Its workloads and whether each is ready.
    pub workloads: Vec<WorkloadHealth>,
}

/// One workload's health.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadHealth {
    /// `namespace/Kind/name`.
    pub object: String,
    /// Ready.
    pub ready: bool,
    /// Why not (empty when ready).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

impl Status {
    /// Whether every step is done (or skipped), every release at its recorded revision and
    /// every workload ready.
    pub fn healthy(&self) -> bool {
        self.journal
            .steps
            .iter()
            .all(|s| matches!(s.state, StepState::Done | StepState::Skipped))
            && self.releases.iter().all(|r| {
                r.current_revision == Some(r.recorded_revision)
                    && r.workloads.iter().all(|w| w.ready)
            })
    }
}

/// The status of the site the cluster's journal records; `None` without a journal.
pub fn status(cluster: &dyn Cluster) -> Result<Option<Status>, DeployError> {
    let Some(journal) = Journal::read(cluster)? else {
        return Ok(None);
    };
    let mut releases = Vec::new();
    for step in &journal.steps {
        for release in &step.releases {
            let current_revision = cluster.release_revision(&release.name, &release.namespace)?;
            let mut workloads = Vec::new();
            for kind in WORKLOADS {
                for object in cluster.list(kind, Some(&release.namespace))? {
                    let annotation = &object["metadata"]["annotations"][RELEASE_ANNOTATION];
                    if annotation.as_str() != Some(release.name.as_str()) {
                        continue;
                    }
                    let Some(reference) = ObjectRef::of(&object, Some(&release.namespace)) else {
                        continue;
                    };
                    let (ready, why) = match readiness(&object) {
                        Readiness::Ready => (true, String::new()),
                        Readiness::Pending(why) => (false, why),
                        Readiness::Failed(why) => (false, format!("failed: {why}")),
                    };
                    workloads.push(WorkloadHealth {
                        object: reference.to_string(),
                        ready,
                        why,
                    });
                }
            }
            releases.push(ReleaseStatus {
                step: step.name.clone(),
                name: release.name.clone(),
                namespace: release.namespace.clone(),
                chart: release.chart.clone(),
                recorded_revision: release.revision,
                current_revision,
                images: release.images.clone(),
                workloads,
            });
        }
    }
    Ok(Some(Status { journal, releases }))
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let journal = &self.journal;
        writeln!(
            f,
            "bundle {} (bundle.json {})",
            journal.bundle, journal.bundle_digest
        )?;
        for step in &journal.steps {
            let state = serde_json::to_value(step.state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let detail = step.detail.lines().next().unwrap_or("");
            writeln!(f, "  {:<11} {state:<11} {detail}", step.name)?;
        }
        for release in &self.releases {
            let current = match release.current_revision {
                Some(r) if r == release.recorded_revision => format!("revision {r}"),
                Some(r) => format!(
                    "revision {r} (the journal recorded {})",
                    release.recorded_revision
                ),
                None => "NOT INSTALLED".to_string(),
            };
            writeln!(
                f,
                "release {}/{} {}: {current}",
                release.namespace, release.name, release.chart
            )?;
            for image in &release.images {
                writeln!(f, "    image {image}")?;
            }
            for workload in &release.workloads {
                match workload.ready {
                    true => writeln!(f, "    ready     {}", workload.object)?,
                    false => writeln!(f, "    NOT READY {}: {}", workload.object, workload.why)?,
                }
            }
        }
        Ok(())
    }
}
