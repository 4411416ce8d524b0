//! The one module that talks to the Kubernetes API, through `kubectl`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Field manager of everything the installer applies (server-side apply).
pub const FIELD_MANAGER: &str = "messenger-installer";

/// How long kubectl waits for one API request.
const REQUEST_TIMEOUT: &str = "30s";

/// Why a request to the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// kubectl cannot be started.
    #[error("running {} (install kubectl or give --kubectl PATH)", binary.display())]
    Spawn {
        /// The binary tried.
        binary: PathBuf,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the kubectl process failed.
    #[error("{what} kubectl")]
    Pipe {
        /// `writing to` or `waiting for`.
        what: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// kubectl ran and refused.
    #[error("kubectl apply to {server} failed: {stderr}")]
    Apply {
        /// The API server the kubeconfig points at.
        server: String,
        /// What kubectl said.
        stderr: String,
    },
}

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
