//! The one module that talks to the Kubernetes API, through `kubectl`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

/// Field manager of everything the installer applies (server-side apply).
pub const FIELD_MANAGER: &str = "messenger-installer";

/// How long kubectl waits for one API request.
const REQUEST_TIMEOUT: &str = "30s";

/// Which cluster to talk to, and with which kubectl.
#[derive(Debug, Clone, clap::Args)]
pub struct KubeArgs {
    /// kubeconfig file (default: kubectl's, $KUBECONFIG or ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubectl binary.
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    pub kubectl: PathBuf,
}

impl KubeArgs {
    /// Server-side applies `manifest` (YAML or JSON), given on stdin so that Secrets never reach
    /// argv; the installer owns these fields (conflicts are forced). Returns kubectl's summary.
    pub fn apply(&self, manifest: &str) -> Result<String> {
        let mut child = self
            .command()
            .args(["apply", "--server-side", "--force-conflicts"])
            .args(["--field-manager", FIELD_MANAGER, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| self.spawn_error())?;
        if let Some(mut stdin) = child.stdin.take() {
            // kubectl may exit before reading (bad kubeconfig): its status says why.
            match stdin.write_all(manifest.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing to kubectl");
                }
                _ => {}
            }
        }
        let output = child.wait_with_output().context("waiting for kubectl")?;
        if !output.status.success() {
            bail!(
                "kubectl apply to {} failed: {}",
                self.server(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
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

    fn spawn_error(&self) -> String {
        format!(
            "running {} (install kubectl or give --kubectl PATH)",
            self.kubectl.display()
        )
    }
}
