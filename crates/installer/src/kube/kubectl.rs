//! The real cluster: kubectl for objects, helm for releases.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::{Cluster, KubeError, ObjectRef};
use crate::deploy::render::{Helm, ReleaseInput};
use crate::deploy::DeployError;

/// Field manager of everything the installer applies (server-side apply).
pub const FIELD_MANAGER: &str = "messenger-installer";

/// How long kubectl waits for one API request.
const REQUEST_TIMEOUT: &str = "30s";

/// Which cluster to talk to, and with which kubectl.
#[derive(Debug, Clone)]
pub struct Kubectl {
    /// kubeconfig file (default: kubectl's, $KUBECONFIG or ~/.kube/config).
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: its current context).
    pub context: Option<String>,
    /// The kubectl binary.
    pub kubectl: PathBuf,
}

impl Kubectl {
    /// Server-side applies `manifest` (YAML or JSON), given on stdin so that Secrets never reach
    /// argv; the installer owns these fields (conflicts are forced). Returns kubectl's summary.
    pub fn apply(&self, manifest: &str) -> Result<String, KubeError> {
        let mut child = self
            .command()
            .args(["apply", "--server-side", "--force-conflicts"])
            .args(["--field-manager", FIELD_MANAGER, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| KubeError::Spawn {
                binary: self.kubectl.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // kubectl may exit before reading (bad kubeconfig): its status says why.
            match stdin.write_all(manifest.as_bytes()) {
                Err(source) if source.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(KubeError::Pipe {
                        what: "writing to",
                        source,
                    });
                }
                _ => {}
            }
        }
        let output = child.wait_with_output().map_err(|source| KubeError::Pipe {
            what: "waiting for",
            source,
        })?;
        if !output.status.success() {
            return Err(KubeError::Apply {
                server: self.server(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// `kubectl ARGS` (for `what`, in messages); its stdout.
    fn run(&self, args: &[&str], what: &str) -> Result<Vec<u8>, KubeError> {
        let output = self
            .command()
            .args(args)
            .output()
            .map_err(|source| KubeError::Spawn {
                binary: self.kubectl.clone(),
                source,
            })?;
        if !output.status.success() {
            return Err(KubeError::Request {
                what: what.to_string(),
                server: self.server(),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(output.stdout)
    }

    /// `kubectl ARGS -o json`, parsed.
    fn json(&self, args: &[&str], what: &str) -> Result<Option<Value>, KubeError> {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let stdout = self.run(&all, what)?;
        if stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&stdout)
            .map(Some)
            .map_err(|e| KubeError::Answer {
                what: what.to_string(),
                message: e.to_string(),
            })
    }

    /// kubectl with the kubeconfig, context and request timeout.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.kubectl);
        if let Some(path) = &self.kubeconfig {
            command.arg("--kubeconfig").arg(path);
        }
        if let Some(context) = &self.context {
            command.args(["--context", context]);
        }
        command.args(["--request-timeout", REQUEST_TIMEOUT]);
        command
    }

    /// The API server the kubeconfig and context point at, for error messages.
    fn server(&self) -> String {
        let output = self
            .command()
            .args(["config", "view", "--minify", "-o"])
            .arg("jsonpath={.clusters[0].cluster.server}")
            .output();
        match output {
            Ok(o) if o.status.success() && !o.stdout.is_empty() => {
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            }
            _ => "the cluster (its server is not in the kubeconfig)".to_string(),
        }
    }
}

/// The real cluster: objects through kubectl, releases through helm (with the pinning
/// post-renderer), both with the same kubeconfig and context.
pub struct KubeCluster {
    /// kubectl and the cluster it talks to.
    pub kubectl: Kubectl,
    /// helm, ready to render.
    pub helm: Helm,
}

/// `-n NS` when namespaced.
fn namespace_args(namespace: Option<&str>) -> Vec<&str> {
    match namespace {
        Some(ns) => vec!["--namespace", ns],
        None => Vec::new(),
    }
}

/// A helm failure as a cluster error.
fn helm_error(what: String, e: DeployError) -> KubeError {
    KubeError::Request {
        what,
        server: "the cluster".to_string(),
        message: e.to_string(),
    }
}

impl Cluster for KubeCluster {
    fn server_version(&self) -> Result<String, KubeError> {
        let what = "kubectl version";
        let doc = self.kubectl.json(&["version"], what)?.unwrap_or_default();
        doc["serverVersion"]["gitVersion"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| KubeError::Answer {
                what: what.to_string(),
                message: "no serverVersion.gitVersion".to_string(),
            })
    }

    fn get(&self, object: &ObjectRef) -> Result<Option<Value>, KubeError> {
        let mut args = vec!["get", &object.kind, &object.name, "--ignore-not-found"];
        args.extend(namespace_args(object.namespace.as_deref()));
        self.kubectl.json(&args, &format!("kubectl get {object}"))
    }

    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<Value>, KubeError> {
        let mut args = vec!["get", kind];
        args.extend(namespace_args(namespace));
        let doc = self
            .kubectl
            .json(&args, &format!("kubectl get {kind}"))?
            .unwrap_or_default();
        Ok(doc["items"].as_array().cloned().unwrap_or_default())
    }

    fn apply(&self, manifest: &str) -> Result<(), KubeError> {
        self.kubectl.apply(manifest).map(|_| ())
    }

    fn events(&self, object: &ObjectRef) -> Result<Vec<String>, KubeError> {
        let selector = format!(
            "involvedObject.kind={},involvedObject.name={}",
            object.kind, object.name
        );
        let mut args = vec!["get", "events", "--field-selector", &selector];
        args.extend(namespace_args(object.namespace.as_deref()));
        let doc = self
            .kubectl
            .json(&args, &format!("kubectl get events of {object}"))?
            .unwrap_or_default();
        let mut events: Vec<(String, String)> = doc["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|e| {
                        let at = e["lastTimestamp"].as_str().unwrap_or("").to_string();
                        let line = format!(
                            "{at} {} {}: {}",
                            e["type"].as_str().unwrap_or(""),
                            e["reason"].as_str().unwrap_or(""),
                            e["message"].as_str().unwrap_or("")
                        );
                        (at, line)
                    })
                    .collect()
            })
            .unwrap_or_default();
        events.sort();
        Ok(events.into_iter().map(|(_, line)| line).collect())
    }

    fn release_revision(&self, name: &str, namespace: &str) -> Result<Option<u32>, KubeError> {
        self.helm
            .revision(name, namespace, &self.kubectl)
            .map_err(|e| helm_error(format!("helm list {namespace}/{name}"), e))
    }

    fn install_release(&self, release: &ReleaseInput, _manifests: &str) -> Result<u32, KubeError> {
        self.helm
            .upgrade_install(release, &self.kubectl)
            .map_err(|e| helm_error(format!("helm upgrade --install {}", release.name), e))
    }

    fn rollback_release(
        &self,
        name: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), KubeError> {
        self.helm
            .rollback(name, namespace, revision, &self.kubectl)
            .map_err(|e| helm_error(format!("helm rollback {name} {revision}"), e))
    }
}
