//! Signature updates for the chart's antivirus: roll clamd to a new signature-database image
//! (the one an update bundle, `bundle build --only clamav`, carries and `installer load`
//! pushed), then start the rescan Job the chart renders as a suspended CronJob, for media
//! uploaded since the previous signatures were rolled out.

use crate::kube::{readiness, Cluster, KubeError, ObjectRef, Readiness};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Annotation on the clamd Deployment: when its current signatures were rolled out (Unix
/// milliseconds); the next rescan covers uploads since then.
pub const ROLLED_AT: &str = "messenger.io/signatures-rolled-at-ms";

/// What can stop a signature update.
#[derive(Debug, thiserror::Error)]
pub enum AntivirusError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("{0} not found: is antivirus.enabled on for this release?")]
    Missing(String),
    #[error("{0} has no container named {1}")]
    NoContainer(String, &'static str),
    #[error("{name} did not become ready with the new signatures within {timeout:?}: {detail}")]
    NotReady {
        name: String,
        timeout: Duration,
        detail: String,
    },
}

/// The outcome of [`roll_signatures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rolled {
    /// The image clamd ran before.
    pub previous_image: String,
    /// Uploads since this time (Unix ms) are rescanned; `None`: the Job's own lookback
    /// (no earlier rollout recorded).
    pub since_ms: Option<u64>,
    /// The rescan Job created.
    pub job: String,
}

/// Sets the clamd Deployment's image to `image` (recording `now_ms`), waits up to `timeout`
/// for it to be ready with it, then creates the rescan Job from the chart's CronJob.
pub fn roll_signatures(
    cluster: &dyn Cluster,
    release: &str,
    namespace: &str,
    image: &str,
    now_ms: u64,
    timeout: Duration,
) -> Result<Rolled, AntivirusError> {
    let name = format!("{release}-clamd");
    let deployment_ref = object("Deployment", namespace, &name);
    let deployment = cluster
        .get(&deployment_ref)?
        .ok_or_else(|| AntivirusError::Missing(format!("Deployment {namespace}/{name}")))?;
    let previous_image = container_image(&deployment, "clamd")
        .ok_or_else(|| AntivirusError::NoContainer(name.clone(), "clamd"))?;
    let since_ms = deployment["metadata"]["annotations"][ROLLED_AT]
        .as_str()
        .and_then(|s| s.parse().ok());

    // Only the fields this command owns: the container's image and the annotation.
    let patch = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {ROLLED_AT: now_ms.to_string()},
        },
        "spec": {
            "selector": deployment["spec"]["selector"],
            "template": {
                "metadata": {"labels": deployment["spec"]["template"]["metadata"]["labels"]},
                "spec": {"containers": [{"name": "clamd", "image": image}]},
            },
        },
    });
    cluster.apply(&to_yaml(&patch))?;
    wait_rolled(cluster, &deployment_ref, image, timeout)?;

    let cron_name = format!("{release}-antivirus-rescan");
    let cron = cluster
        .get(&object("CronJob", namespace, &cron_name))?
        .ok_or_else(|| AntivirusError::Missing(format!("CronJob {namespace}/{cron_name}")))?;
    let job = format!("{cron_name}-{now_ms}");
    cluster.apply(&to_yaml(&rescan_job(&cron, &job, namespace, since_ms)))?;
    Ok(Rolled {
        previous_image,
        since_ms,
        job,
    })
}

/// A Job from the CronJob's template (as `kubectl create job --from=cronjob/...`), with
/// RESCAN_SINCE_MS set when `since_ms` is known.
pub fn rescan_job(cron: &Value, name: &str, namespace: &str, since_ms: Option<u64>) -> Value {
    let template = &cron["spec"]["jobTemplate"];
    let mut spec = template["spec"].clone();
    if let (Some(since), Some(containers)) = (
        since_ms,
        spec["template"]["spec"]["containers"].as_array_mut(),
    ) {
        for container in containers {
            if let Some(env) = container["env"].as_array_mut() {
                for var in env.iter_mut() {
                    if var["name"] == "RESCAN_SINCE_MS" {
                        var["value"] = json!(since.to_string());
                    }
                }
            }
        }
    }
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": spec,
    })
}

fn wait_rolled(
    cluster: &dyn Cluster,
    deployment: &ObjectRef,
    image: &str,
    timeout: Duration,
) -> Result<(), AntivirusError> {
    let start = Instant::now();
    loop {
        let current = cluster.get(deployment)?;
        let detail = match &current {
            None => "gone".to_string(),
            Some(d) if container_image(d, "clamd").as_deref() != Some(image) => {
                "image not applied".to_string()
            }
            Some(d) => match readiness(d) {
                Readiness::Ready => return Ok(()),
                other => format!("{other:?}"),
            },
        };
        if start.elapsed() >= timeout {
            return Err(AntivirusError::NotReady {
                name: deployment.name.clone(),
                timeout,
                detail,
            });
        }
        std::thread::sleep(Duration::from_secs(2).min(timeout));
    }
}

fn container_image(deployment: &Value, container: &str) -> Option<String> {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == container)?["image"]
        .as_str()
        .map(str::to_string)
}

fn object(kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        kind: kind.into(),
        namespace: Some(namespace.into()),
        name: name.into(),
    }
}

fn to_yaml(value: &Value) -> String {
    // JSON is YAML; kubectl and the memory cluster read it as a manifest.
    value.to_string()
}
