//! Whether an object the deploy waits for is ready, read from its `status` as the API returns
//! it: Deployments, StatefulSets, DaemonSets, Jobs, CloudNativePG Clusters, cert-manager
//! Certificates and Gateway API Gateways.

use serde_json::Value;

/// What an object's status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready.
    Ready,
    /// Not yet: why.
    Pending(String),
    /// Will not become ready without help: why.
    Failed(String),
}

/// The readiness of `object`.
pub fn readiness(object: &Value) -> Readiness {
    let status = &object["status"];
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = int(&object["metadata"]["generation"]);
    let observed = int(&status["observedGeneration"]);
    if generation > 0 && observed < generation && object["kind"] != "Cluster" {
        return Readiness::Pending(format!(
            "the controller has not seen generation {generation} yet"
        ));
    }
    match object["kind"].as_str().unwrap_or("") {
        "Deployment" => {
            let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
            let (updated, available) = (
                int(&status["updatedReplicas"]),
                int(&status["availableReplicas"]),
            );
            if let Some(reason) = condition(status, "Progressing", "False") {
                return Readiness::Failed(format!("not progressing: {reason}"));
            }
            counted(want, [("updated", updated), ("available", available)])
        }
        "StatefulSet" => {
            let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
            counted(
                want,
                [
                    ("updated", int(&status["updatedReplicas"])),
                    ("ready", int(&status["readyReplicas"])),
                ],
            )
        }
        "DaemonSet" => {
            let want = int(&status["desiredNumberScheduled"]);
            counted(
                want,
                [
                    ("updated", int(&status["updatedNumberScheduled"])),
                    ("ready", int(&status["numberReady"])),
                ],
            )
        }
        "Job" => {
            if let Some(reason) = condition(status, "Failed", "True") {
                Readiness::Failed(format!("the job failed: {reason}"))
            } else if condition(status, "Complete", "True").is_some() {
                Readiness::Ready
            } else {
                Readiness::Pending(format!(
                    "{} pod(s) running, {} failed",
                    int(&status["active"]),
                    int(&status["failed"])
                ))
            }
        }
        "Cluster" => {
            let want = object["spec"]["instances"].as_i64().unwrap_or(1);
            let ready = int(&status["readyInstances"]);
            let phase = status["phase"].as_str().unwrap_or("no phase yet");
            if phase == "Cluster in healthy state" && ready >= want {
                Readiness::Ready
            } else {
                Readiness::Pending(format!("{phase}; {ready}/{want} instances ready"))
            }
        }
        "Certificate" => by_condition(status, "Ready"),
        "Gateway" => by_condition(status, "Programmed"),
        other => Readiness::Failed(format!("the installer does not wait for kind {other}")),
    }
}

/// Ready when every count reaches `want`; else pending, naming the counts.
fn counted<const N: usize>(want: i64, counts: [(&str, i64); N]) -> Readiness {
    if counts.iter().all(|(_, n)| *n >= want) {
        return Readiness::Ready;
    }
    let text: Vec<String> = counts
        .iter()
        .map(|(what, n)| format!("{n}/{want} {what}"))
        .collect();
    Readiness::Pending(text.join(", "))
}

/// Ready when condition `kind` is `True`.
fn by_condition(status: &Value, kind: &str) -> Readiness {
    if condition(status, kind, "True").is_some() {
        return Readiness::Ready;
    }
    match condition(status, kind, "False") {
        Some(reason) => Readiness::Pending(format!("{kind} is False: {reason}")),
        None => Readiness::Pending(format!("no {kind} condition yet")),
    }
}

/// The reason and message of condition `kind` when its status is `value`.
fn condition(status: &Value, kind: &str, value: &str) -> Option<String> {
    let found = status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == value)?;
    Some(
        format!(
            "{} {}",
            found["reason"].as_str().unwrap_or(""),
            found["message"].as_str().unwrap_or("")
        )
        .trim()
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workloads_count_replicas() {
        let d = json!({"kind": "Deployment", "metadata": {"generation": 2},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "availableReplicas": 1}});
        assert_eq!(
            readiness(&d),
            Readiness::Pending("2/2 updated, 1/2 available".into())
        );
        let mut ready = d.clone();
        ready["status"]["availableReplicas"] = json!(2);
        assert_eq!(readiness(&ready), Readiness::Ready);
        let mut stale = ready.clone();
        stale["metadata"]["generation"] = json!(3);
        assert!(matches!(readiness(&stale), Readiness::Pending(_)));
        let mut stuck = d.clone();
        stuck["status"]["conditions"] = json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out"}]);
        assert!(
            matches!(readiness(&stuck), Readiness::Failed(m) if m.contains("ProgressDeadlineExceeded"))
        );
        let sts = json!({"kind": "StatefulSet", "spec": {"replicas": 3},
            "status": {"updatedReplicas": 3, "readyReplicas": 3}});
        assert_eq!(readiness(&sts), Readiness::Ready);
        let ds = json!({"kind": "DaemonSet", "status": {"desiredNumberScheduled": 2,
            "updatedNumberScheduled": 2, "numberReady": 0}});
        assert!(matches!(readiness(&ds), Readiness::Pending(_)));
    }

    #[test]
    fn jobs_clusters_certificates_and_gateways() {
        let job = |c: Value| json!({"kind": "Job", "status": {"conditions": [c]}});
        assert_eq!(
            readiness(&job(json!({"type": "Complete", "status": "True"}))),
            Readiness::Ready
        );
        assert!(matches!(
            readiness(&job(json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}))),
            Readiness::Failed(m) if m.contains("BackoffLimitExceeded")
        ));
        let cluster = json!({"kind": "Cluster", "spec": {"instances": 3},
            "status": {"phase": "Cluster in healthy state", "readyInstances": 3}});
        assert_eq!(readiness(&cluster), Readiness::Ready);
        let creating = json!({"kind": "Cluster", "spec": {"instances": 3},
            "status": {"phase": "Setting up primary", "readyInstances": 0}});
        assert!(
            matches!(readiness(&creating), Readiness::Pending(m) if m.contains("Setting up primary"))
        );
        let cert = json!({"kind": "Certificate", "status": {"conditions": [
            {"type": "Ready", "status": "False", "reason": "Issuing"}]}});
        assert!(matches!(readiness(&cert), Readiness::Pending(m) if m.contains("Issuing")));
        let gw = json!({"kind": "Gateway", "status": {"conditions": [
            {"type": "Programmed", "status": "True"}]}});
        assert_eq!(readiness(&gw), Readiness::Ready);
    }
}
