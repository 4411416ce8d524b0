//! A cluster in memory: objects, release revisions and a log of what was asked, with faults
//! to inject (a call that fails, as if the installer were killed there; objects that never
//! become ready). The deploy's journal, resume, rollback and upgrade rules are tested on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};

use super::{Cluster, KubeError, ObjectRef};
use crate::deploy::render::ReleaseInput;

#[derive(Default)]
struct State {
    version: String,
    objects: BTreeMap<ObjectRef, Value>,
    /// Release (name, namespace) -> revisions, oldest first.
    releases: BTreeMap<(String, String), Vec<u32>>,
    calls: Vec<String>,
    fail_on: Vec<String>,
    unready: BTreeSet<String>,
}

/// An in-memory [`Cluster`].
pub struct MemoryCluster {
    state: Mutex<State>,
}

impl MemoryCluster {
    /// An empty cluster whose API server reports `version`.
    pub fn new(version: &str) -> MemoryCluster {
        MemoryCluster {
            state: Mutex::new(State {
                version: version.to_string(),
                ..State::default()
            }),
        }
    }

    /// A cluster from recorded API answers in `dir`: `version.json` as `kubectl version -o
    /// json` prints it (or its `serverVersion` alone, as `/version` answers), and every other
    /// `*.json` file a list as `kubectl get KIND -o json` prints it (`{"kind": "List",
    /// "items": [...]}`), each item inserted as it is.
    pub fn from_fixture(dir: &Path) -> Result<MemoryCluster, KubeError> {
        let read = |path: &Path| -> Result<Value, KubeError> {
            let bad = |message: String| KubeError::Answer {
                what: path.display().to_string(),
                message,
            };
            let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
        };
        let version_file = dir.join("version.json");
        let version = read(&version_file)?;
        let server = version.get("serverVersion").unwrap_or(&version);
        let git_version = server["gitVersion"]
            .as_str()
            .ok_or_else(|| KubeError::Answer {
                what: version_file.display().to_string(),
                message: "no serverVersion.gitVersion".into(),
            })?;
        let cluster = MemoryCluster::new(git_version);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| KubeError::Answer {
                what: dir.display().to_string(),
                message: e.to_string(),
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|e| e == "json") && *path != version_file)
            .collect();
        files.sort();
        for path in files {
            let list = read(&path)?;
            let items = list["items"].as_array().ok_or_else(|| KubeError::Answer {
                what: path.display().to_string(),
                message: "not a list (no items)".into(),
            })?;
            for item in items {
                cluster.insert(item.clone());
            }
        }
        Ok(cluster)
    }

    /// From now on the API server reports `version`.
    pub fn set_server_version(&self, version: &str) {
        self.state().version = version.to_string();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an object as it is (nodes, storage classes: what the cluster already has).
    pub fn insert(&self, object: Value) {
        if let Some(r) = ObjectRef::of(&object, None) {
            self.state().objects.insert(r, object);
        }
    }

    /// The next call whose log line starts with `prefix` fails, once.
    pub fn fail_on(&self, prefix: &str) {
        self.state().fail_on.push(prefix.to_string());
    }

    /// Objects named `name` never report ready.
    pub fn never_ready(&self, name: &str) {
        self.state().unready.insert(name.to_string());
    }

    /// Every changing call so far (`apply Kind/name`, `install NAME`, `rollback NAME N`).
    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// The revisions of a release, oldest first.
    pub fn revisions(&self, name: &str, namespace: &str) -> Vec<u32> {
        self.state()
            .releases
            .get(&(name.to_string(), namespace.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Logs `call`, or fails it if a fault waits for it.
    fn call(&self, call: String) -> Result<(), KubeError> {
        let mut state = self.state();
        if let Some(at) = state
            .fail_on
            .iter()
            .position(|p| call.starts_with(p.as_str()))
        {
            state.fail_on.remove(at);
            return Err(KubeError::Request {
                what: call,
                server: "memory".into(),
                message: "injected failure".into(),
            });
        }
        state.calls.push(call);
        Ok(())
    }

    /// Stores every object of `manifest`, ready unless marked otherwise; with `release`,
    /// annotated as helm annotates the objects of a release.
    fn store(
        &self,
        manifest: &str,
        namespace: Option<&str>,
        release: Option<&str>,
    ) -> Result<Vec<ObjectRef>, KubeError> {
        let docs = online::discover::documents(manifest).map_err(|bad| KubeError::Answer {
            what: "apply".into(),
            message: bad.message,
        })?;
        let mut stored = Vec::new();
        for doc in docs {
            let mut object = serde_json::to_value(&doc.value).map_err(|e| KubeError::Answer {
                what: "apply".into(),
                message: e.to_string(),
            })?;
            let Some(r) = ObjectRef::of(&object, namespace) else {
                continue;
            };
            if let (Some(release), Some(namespace)) = (release, namespace) {
                object["metadata"]["annotations"]["meta.helm.sh/release-name"] = json!(release);
                object["metadata"]["annotations"]["meta.helm.sh/release-namespace"] =
                    json!(namespace);
            }
            let mut state = self.state();
            if !state.unready.contains(&r.name) {
                object["status"] = ready_status(&object);
            }
            // Server-side apply: the fields given are set, the others kept.
            match state.objects.get_mut(&r) {
                Some(existing) => merge(existing, object),
                None => {
                    state.objects.insert(r.clone(), object);
                }
            }
            stored.push(r);
        }
        Ok(stored)
    }
}

/// `over` merged into `base` as a server-side apply of a partial object merges: objects key
/// by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// A status the readiness rules read as ready.
fn ready_status(object: &Value) -> Value {
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let done = |kind: &str| json!({"conditions": [{"type": kind, "status": "True"}]});
    match object["kind"].as_str().unwrap_or("") {
        "Deployment" | "StatefulSet" => json!({"replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas}),
        "DaemonSet" => json!({"desiredNumberScheduled": 1, "updatedNumberScheduled": 1,
            "numberReady": 1}),
        "Job" => done("Complete"),
        "Cluster" => json!({"phase": "Cluster in healthy state",
            "readyInstances": object["spec"]["instances"].as_i64().unwrap_or(1)}),
        "Certificate" => done("Ready"),
        "Gateway" => done("Programmed"),
        _ => json!({}),
    }
}

impl Cluster for MemoryCluster {
    fn server_version(&self) -> Result<String, KubeError> {
        Ok(self.state().version.clone())
    }

    fn get(&self, object: &ObjectRef) -> Result<Option<Value>, KubeError> {
        Ok(self.state().objects.get(object).cloned())
    }

    fn list(&self, kind: &str, namespace: Option<&str>) -> Result<Vec<Value>, KubeError> {
        Ok(self
            .state()
            .objects
            .iter()
            .filter(|(r, _)| {
                r.kind == kind && (namespace.is_none() || r.namespace.as_deref() == namespace)
            })
            .map(|(_, v)| v.clone())
            .collect())
    }

    fn apply(&self, manifest: &str) -> Result<(), KubeError> {
        let docs = online::discover::documents(manifest).map_err(|bad| KubeError::Answer {
            what: "apply".into(),
            message: bad.message,
        })?;
        let names: Vec<String> = docs
            .iter()
            .map(|d| online::discover::object_name(&d.value))
            .collect();
        self.call(format!("apply {}", names.join(" ")))?;
        self.store(manifest, None, None).map(|_| ())
    }

    fn events(&self, object: &ObjectRef) -> Result<Vec<String>, KubeError> {
        let unready = self.state().unready.contains(&object.name);
        Ok(if unready {
            vec![format!(
                "Warning FailedScheduling: {} has no node to run on",
                object.name
            )]
        } else {
            Vec::new()
        })
    }

    fn release_revision(&self, name: &str, namespace: &str) -> Result<Option<u32>, KubeError> {
        Ok(self.revisions(name, namespace).last().copied())
    }

    fn install_release(&self, release: &ReleaseInput, manifests: &str) -> Result<u32, KubeError> {
        self.call(format!("install {}", release.name))?;
        self.store(manifests, Some(&release.namespace), Some(&release.name))?;
        let mut state = self.state();
        let revisions = state
            .releases
            .entry((release.name.clone(), release.namespace.clone()))
            .or_default();
        let next = revisions.last().copied().unwrap_or(0) + 1;
        revisions.push(next);
        Ok(next)
    }

    fn rollback_release(
        &self,
        name: &str,
        namespace: &str,
        revision: u32,
    ) -> Result<(), KubeError> {
        self.call(format!("rollback {name} {revision}"))?;
        let mut state = self.state();
        let revisions = state
            .releases
            .entry((name.to_string(), namespace.to_string()))
            .or_default();
        // helm records a rollback as a new revision.
        let next = revisions.last().copied().unwrap_or(0) + 1;
        revisions.push(next);
        Ok(())
    }
}
