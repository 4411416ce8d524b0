//! The options of every command that talks to the cluster.

use installer::kube::Kubectl;
use std::path::PathBuf;

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
    /// The cluster client these options name.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            kubectl: self.kubectl.clone(),
        }
    }
}
