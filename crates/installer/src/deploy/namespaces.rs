//! The namespaces of the releases, each with the Pod Security level its pods need: the
//! strictest (`restricted`) unless a pod rendered into it uses the host (network, PID, IPC,
//! paths) or privileges, then `privileged`; `audit` and `warn` stay `restricted` everywhere,
//! so every exception shows in the API server's warnings and audit log.

use std::collections::BTreeMap;

use online::discover::documents;
use serde_json::json;
use serde_norway::Value;

use super::plan::Rendered;

/// One namespace and its enforced Pod Security level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedNamespace {
    /// Its name.
    pub name: String,
    /// `restricted` or `privileged`.
    pub enforce: &'static str,
    /// Why it is not `restricted`, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub because: Option<String>,
}

/// The namespaces of `rendered` (each release's, and every other one its objects name), in
/// first-use order.
pub fn plan(rendered: &[Rendered]) -> Vec<PlannedNamespace> {
    let mut out: Vec<PlannedNamespace> = Vec::new();
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    let mut add = |name: &str| {
        if !out.iter().any(|n| n.name == name) {
            out.push(PlannedNamespace {
                name: name.to_string(),
                enforce: "restricted",
                because: None,
            });
        }
    };
    for release in rendered {
        let namespace = &release.input.namespace;
        add(namespace);
        for doc in documents(&release.manifests).unwrap_or_default() {
            let ns = doc
                .value
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or(namespace)
                .to_string();
            add(&ns);
            if let Some(reason) = needs_privileged(&doc.value) {
                let name = online::discover::object_name(&doc.value);
                reasons
                    .entry(ns)
                    .or_insert_with(|| format!("{name} {reason}"));
            }
        }
    }
    for namespace in &mut out {
        if let Some(reason) = reasons.remove(&namespace.name) {
            namespace.enforce = "privileged";
            namespace.because = Some(reason);
        }
    }
    out
}

/// The `Namespace` object of `namespace`, as JSON text (which is YAML).
pub fn manifest(namespace: &PlannedNamespace) -> String {
    let label = |mode: &str| format!("pod-security.kubernetes.io/{mode}");
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace.name,
            "labels": {
                label("enforce"): namespace.enforce,
                label("enforce-version"): "latest",
                label("audit"): "restricted",
                label("warn"): "restricted",
            },
        },
    });
    format!("---\n{doc:#}\n")
}

/// Why an object's pods need the `privileged` level, if they do.
fn needs_privileged(object: &Value) -> Option<String> {
    let spec = pod_spec(object)?;
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(key).and_then(Value::as_bool) == Some(true) {
            return Some(format!("uses {key}"));
        }
    }
    let volumes = spec.get("volumes").and_then(Value::as_sequence);
    if volumes.is_some_and(|v| v.iter().any(|v| v.get("hostPath").is_some())) {
        return Some("mounts a hostPath volume".into());
    }
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_sequence))
        .flatten();
    for container in containers {
        let context = container.get("securityContext");
        let privileged = context
            .and_then(|c| c.get("privileged"))
            .and_then(Value::as_bool);
        if privileged == Some(true) {
            return Some("runs a privileged container".into());
        }
    }
    None
}

/// The pod spec of a workload or pod.
fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = object.get("spec")?;
    match object.get("kind")?.as_str()? {
        "Pod" => Some(spec),
        "CronJob" => spec
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => {
            spec.get("template")?.get("spec")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::PlannedRelease;
    use crate::deploy::render::ReleaseInput;

    fn rendered(namespace: &str, manifests: &str) -> Rendered {
        Rendered {
            release: PlannedRelease {
                name: "r".into(),
                namespace: namespace.into(),
                chart: "c-1".into(),
                values: Vec::new(),
                objects: 0,
                images: Vec::new(),
                waits: Vec::new(),
            },
            input: ReleaseInput {
                name: "r".into(),
                namespace: namespace.into(),
                chart: "c.tgz".into(),
                values: Vec::new(),
            },
            manifests: manifests.into(),
        }
    }

    #[test]
    fn host_network_makes_its_namespace_privileged_and_nothing_else() {
        let plain = "kind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: x:1}]\n";
        let host = "kind: Deployment\nmetadata: {name: turn, namespace: calls}\nspec:\n  template:\n    spec:\n      hostNetwork: true\n      containers: [{name: a, image: x:1}]\n";
        let plan = plan(&[
            rendered("matrix", plain),
            rendered("matrix", host),
            rendered("calls", plain),
        ]);
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].name, "matrix");
        assert_eq!(plan[0].enforce, "restricted");
        assert_eq!(plan[1].name, "calls");
        assert_eq!(plan[1].enforce, "privileged");
        assert!(plan[1]
            .because
            .as_deref()
            .unwrap()
            .contains("Deployment/turn uses hostNetwork"));
        let doc: serde_json::Value =
            serde_json::from_str(manifest(&plan[1]).trim_start_matches("---\n")).unwrap();
        assert_eq!(
            doc["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        assert_eq!(
            doc["metadata"]["labels"]["pod-security.kubernetes.io/warn"],
            "restricted"
        );
    }
}
