//! The one module that talks to the Kubernetes API: the [`Cluster`] trait, its real
//! implementation ([`KubeCluster`]: kubectl for objects, the bundle's helm for releases) and
//! an in-memory one ([`MemoryCluster`]) on which the deploy's journal, resume, rollback and
//! upgrade rules are tested.

mod error;
mod kubectl;
mod memory;
mod readiness;

use serde_json::Value;

use crate::deploy::render::ReleaseInput;

pub use error::KubeError;
pub use kubectl::{KubeCluster, Kubectl, FIELD_MANAGER};
pub use memory::MemoryCluster;
pub use readiness::{readiness, Readiness};

/// An object by kind, namespace (none for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, if namespaced.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// Parses `namespace/Kind/name` or `Kind/name` (as plans write them).
    pub fn parse(text: &str) -> Option<ObjectRef> {
        let parts: Vec<&str> = text.split('/').collect();
        let (namespace, kind, name) = match parts.as_slice() {
            [ns, kind, name] => (Some(ns.to_string()), *kind, *name),
            [kind, name] => (None, *kind, *name),
            _ => return None,
        };
        (!kind.is_empty() && !name.is_empty()).then(|| ObjectRef {
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }

    /// The reference of a manifest's object; `default_namespace` when it names none.
    pub fn of(object: &Value, default_namespace: Option<&str>) -> Option<ObjectRef> {
        let metadata = &object["metadata"];
        Some(ObjectRef {
            kind: object["kind"].as_str()?.to_string(),
            namespace: metadata["namespace"]
                .as_str()
                .or(default_namespace)
                .map(String::from),
            name: metadata["name"].as_str()?.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// What the installer asks of a cluster. Every call the deploy makes goes through it.
pub trait Cluster {
    /// The API server's version, `v1.33.2`.
    fn server_version(&self) -> Result<String, KubeError>;
    /// One object as the API returns it, or `None` if there is none.
    fn get(&self, object: &ObjectRef) -> Result<Option<Value>, KubeError>;
    /// Every object of `kind` (in `namespace`, or cluster-wide).
    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<Value>, KubeError>;
    /// Server-side applies `manifest` (JSON or YAML, one or more objects), given on stdin so
    /// that Secrets never reach a command line.
    fn apply(&self, manifest: &str) -> Result<(), KubeError>;
    /// The latest events about `object`, oldest first, as one line each.
    fn events(&self, object: &ObjectRef) -> Result<Vec<String>, KubeError>;
    /// The deployed revision of a release, `None` if it is not installed.
    fn release_revision(&self, name: &str, namespace: &str) -> Result<Option<u32>, KubeError>;
    /// Installs or upgrades a release (the objects `manifests` shows, as rendered and pinned)
    /// and returns its new revision.
    fn install_release(&self, release: &ReleaseInput, manifests: &str) -> Result<u32, KubeError>;
    /// Returns a release to `revision`.
    fn rollback_release(&self, name: &str, namespace: &str, revision: u32)
        -> Result<(), KubeError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_refs_parse_and_print() {
        let r = ObjectRef::parse("matrix/Deployment/web").unwrap();
        assert_eq!(r.namespace.as_deref(), Some("matrix"));
        assert_eq!(r.to_string(), "matrix/Deployment/web");
        let c = ObjectRef::parse("ClusterIssuer/site-ca").unwrap();
        assert_eq!(c.namespace, None);
        assert!(ObjectRef::parse("a/b/c/d").is_none());
        assert!(ObjectRef::parse("Kind/").is_none());
    }
}
