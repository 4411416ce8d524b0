//! The part of the chart's effective values the checks read, typed.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A YAML scalar as text: `cpu: 1`, `cpu: 1.5` and `cpu: "500m"` alike.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "Scalar")]
pub struct Text(pub String);

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Integer(u64),
    Float(f64),
}

impl From<Scalar> for Text {
    fn from(scalar: Scalar) -> Self {
        Text(match scalar {
            Scalar::Text(text) => text,
            Scalar::Integer(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
        })
    }
}

/// The effective values (chart defaults, site file, profile).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Values {
    pub nodes: Option<Nodes>,
    pub sizing: Sizing,
    pub federation: Enabled,
    pub turn: Turn,
    pub gateway: Gateway,
    pub object_storage: ObjectStorage,
    pub synapse: Synapse,
    pub haproxy: Haproxy,
    pub element: Scaled,
    pub synapse_admin: Scaled,
    pub coturn: Sized,
    pub postgres: Postgres,
    pub pooler: Pooler,
    pub valkey: Valkey,
    pub garage: Scaled,
    /// Group calls (`calls.enabled`); absent in values older than them.
    #[serde(default)]
    pub calls: Option<Enabled>,
    /// LiveKit's pods (`livekit`), counted when calls are on.
    #[serde(default)]
    pub livekit: Option<Scaled>,
    /// lk-jwt-service's one pod (`lkJwtService`), counted when calls are on.
    #[serde(default)]
    pub lk_jwt_service: Option<Sized>,
    /// ClamAV (`antivirus`): clamd and matrix-content-scanner pods; absent in values older
    /// than them.
    #[serde(default)]
    pub antivirus: Option<Antivirus>,
    /// Monitoring (`monitoring.enabled`): the redis_exporter sidecar in every Valkey and
    /// Sentinel pod; absent in values older than it.
    #[serde(default)]
    pub monitoring: Option<Enabled>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nodes {
    pub count: u64,
    pub cpu: u64,
    #[serde(rename = "memoryGiB")]
    pub memory_gib: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sizing {
    pub postgres_reserve: u64,
}

#[derive(Debug, Deserialize)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    pub enabled: bool,
    #[serde(default, rename = "externalIPs")]
    pub external_ips: Vec<serde_norway::Value>,
}

/// `gateway`: the Envoy proxies the chart has Envoy Gateway start (an EnvoyProxy) when
/// `envoy.manage` is on.
#[derive(Debug, Deserialize)]
pub struct Gateway {
    pub envoy: Envoy,
}

#[derive(Debug, Deserialize)]
pub struct Envoy {
    pub manage: bool,
    pub replicas: u64,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
pub struct ObjectStorage {
    pub mode: String,
}

#[derive(Debug, Deserialize)]
pub struct Synapse {
    pub main: Process,
    pub workers: BTreeMap<String, Worker>,
}

#[derive(Debug, Deserialize)]
pub struct Process {
    pub db: Db,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub replicas: u64,
    #[serde(default)]
    pub federation_only: bool,
    pub db: Db,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Db {
    pub cp_max: u64,
}

#[derive(Debug, Deserialize)]
pub struct Resources {
    pub requests: Requests,
    #[serde(default)]
    pub limits: Option<Limits>,
}

#[derive(Debug, Deserialize)]
pub struct Limits {
    pub memory: Option<Text>,
}

/// `haproxy`: its pods, and what sizes each one's memory (`maxconn`, the memory limit).
#[derive(Debug, Deserialize)]
pub struct Haproxy {
    pub replicas: u64,
    pub maxconn: u64,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
pub struct Requests {
    pub cpu: Text,
    pub memory: Text,
}

#[derive(Debug, Deserialize)]
pub struct Scaled {
    pub replicas: u64,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
pub struct Sized {
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Postgres {
    pub instances: u64,
    pub max_connections: u64,
    pub work_mem: String,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
pub struct Pooler {
    pub instances: u64,
    pub resources: Resources,
}

#[derive(Debug, Deserialize)]
pub struct Valkey {
    pub replicas: u64,
    pub maxmemory: String,
    pub resources: Resources,
    pub sentinel: Scaled,
    pub proxy: Scaled,
}

/// `antivirus`: whether it is on, and its two scaled Deployments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Antivirus {
    pub enabled: bool,
    pub clamd: Scaled,
    pub content_scanner: Scaled,
}
