//! Why a request to the cluster failed.

use std::path::PathBuf;

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
    /// A request other than apply failed.
    #[error("{what} at {server} failed: {message}")]
    Request {
        /// What was asked (`kubectl get Secret matrix/x`, `helm upgrade messenger`).
        what: String,
        /// The API server.
        server: String,
        /// What the client said.
        message: String,
    },
    /// An answer that does not parse.
    #[error("{what}: unexpected answer: {message}")]
    Answer {
        /// What was asked.
        what: String,
        /// Why it does not parse.
        message: String,
    },
}
