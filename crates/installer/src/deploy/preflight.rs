//! Preflight: what the deploy needs of the cluster and of the site, checked before anything
//! changes, every problem reported together, each with what to do about it
//! (docs/preflight.md). Read-only: it lists Nodes, StorageClasses and the node Leases and
//! resolves the site's names; it never writes to the cluster.
//!
//! The checks, in the order the findings come:
//!
//! - **api**, **version**: the API answers, and runs a Kubernetes minor version every pinned
//!   chart supports ([`MIN_MINOR`]..=[`MAX_MINOR`]). Without an API the cluster checks are
//!   skipped (one finding), the DNS check still runs.
//! - **storage class**: the site's `storageClass` exists (none named: the cluster's one
//!   default class is proposed) and allows volume expansion.
//! - **nodes**, **cpu**, **memory**, **pod cpu**, **pod memory**: the profile's requests (as
//!   the capacity check computes them) fit the allocatable CPU and memory of the nodes that can
//!   run them, less the capacity check's system reserve.
//! - **node labels**: enough usable nodes carry the labels coturn (and LiveKit, when the site
//!   has `calls`) are pinned to.
//! - **clock**: the nodes' clocks agree with this machine's, from the kubelets' own timestamps.
//! - **dns**: the site's host names resolve, when this machine has a resolver.
//!
//! The bundle's registry is not checked here: the load step does it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};
use serde_norway::Value as Yaml;

use crate::kube::{Cluster, KubeError};

/// The oldest Kubernetes minor version (1.x) the bundle supports, and [`MAX_MINOR`] the
/// newest: the versions every pinned chart supports. cert-manager 1.21: 1.33 to 1.36; Envoy
/// Gateway 1.9: 1.33 to 1.36; CloudNativePG 1.28: 1.32 to 1.34 (each project's published
/// support table). `releases.toml` renders the charts for 1.33 (`kube_version`). Widen the
/// range only with the charts.
pub const MIN_MINOR: u32 = 33;
/// The newest Kubernetes minor version (1.x) the bundle supports; see [`MIN_MINOR`].
pub const MAX_MINOR: u32 = 34;

/// The clock skew between a node and this machine beyond which the preflight fails: TLS
/// certificates the installer and cert-manager issue start "now" on the issuer's clock, and a
/// node far behind sees them as not yet valid.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(120);

/// The reserve kept out of the stack's reach on each node is the capacity check's
/// (`capacity::SYSTEM_RESERVE_PERCENT`, at least `MIN_SYSTEM_RESERVE_CPU` and
/// `MIN_SYSTEM_RESERVE_MIB`), here taken from what the kubelet reports allocatable: for the
/// cluster's DaemonSets and the operators the deploy installs, which the profile's requests
/// do not count.
use capacity::{
    parse_cpu, parse_memory, MIN_SYSTEM_RESERVE_CPU as MIN_RESERVE_CPU,
    MIN_SYSTEM_RESERVE_MIB as MIN_RESERVE_MIB, SYSTEM_RESERVE_PERCENT as RESERVE_PERCENT,
};

/// How often a kubelet writes its Node status when nothing changed (the kubelet's
/// `nodeStatusReportFrequency` default): a Ready condition's `lastHeartbeatTime` may be that
/// old on a healthy node.
const STATUS_REPORT_FREQUENCY: Duration = Duration::from_secs(300);
/// A node Lease's `leaseDurationSeconds` when it gives none (the kubelet's default).
const DEFAULT_LEASE_SECONDS: u64 = 40;
/// Where the kubelets keep their Leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The annotation that makes a StorageClass the default (and its beta spelling, still set
/// by some distributions).
const DEFAULT_CLASS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

const MI: u64 = 1024 * 1024;
const GI: u64 = 1024 * MI;

/// One problem: which check, what is wrong (naming the object) and what the field engineer
/// does about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check: `api`, `version`, `storage class`, `nodes`, `cpu`, `memory`, `pod cpu`,
    /// `pod memory`, `node labels`, `clock` or `dns`.
    pub check: &'static str,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n    fix: {}", self.check, self.problem, self.fix)
    }
}

/// A check that did not run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The check.
    pub check: &'static str,
    /// Why it did not run.
    pub why: String,
}

/// Every finding of one preflight, and the checks that could not run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The problems, in the order of the checks.
    pub findings: Vec<Finding>,
    /// Checks not run (no API, no resolver, no timestamp to compare).
    pub skipped: Vec<Skipped>,
}

impl Report {
    /// Whether nothing was found.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The findings as text, one each (what `deploy::run::Outside::preflight` returns).
    pub fn problems(&self) -> Vec<String> {
        self.findings.iter().map(Finding::to_string).collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        for skipped in &self.skipped {
            writeln!(f, "{}: not checked: {}", skipped.check, skipped.why)?;
        }
        Ok(())
    }
}

/// One pod's request and the workload it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodRequest {
    /// The workload (`postgres`, `synapse main`).
    pub workload: String,
    /// Millicores or bytes.
    pub amount: u64,
}

/// What the profile's pods request, as the capacity check computes it (`capacity::requests`:
/// the totals of its `cpu` and `memory` checks and its largest pod of each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileRequests {
    /// The profile.
    pub profile: String,
    /// CPU of every pod, millicores.
    pub cpu: u64,
    /// Memory of every pod, bytes.
    pub memory: u64,
    /// The largest CPU request of one pod.
    pub largest_cpu: PodRequest,
    /// The largest memory request of one pod.
    pub largest_memory: PodRequest,
}

/// Nodes a part of the stack is pinned to by a node selector of the site file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSelection {
    /// The part: `coturn`, `LiveKit`.
    pub part: &'static str,
    /// The site field of the selector: `turn.nodeSelector`.
    pub field: &'static str,
    /// The labels a node needs.
    pub labels: BTreeMap<String, String>,
    /// The site field of the nodes' addresses: `turn.externalIPs`.
    pub address_field: &'static str,
    /// The nodes' addresses, as the site file gives them.
    pub addresses: Vec<String>,
    /// How many usable nodes need the labels: one per address, at least one.
    pub needed: usize,
}

/// A host name of the site and what it must point at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsName {
    /// The name.
    pub name: String,
    /// What its address must be, for the fix.
    pub points_at: &'static str,
}

/// What the preflight needs of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightSite {
    /// The site's `storageClass`; `None` when it names none.
    pub storage_class: Option<String>,
    /// The profile's requests.
    pub requests: ProfileRequests,
    /// The node selections of coturn (when TURN is on) and LiveKit (when calls are on).
    pub selections: Vec<NodeSelection>,
    /// The site's host names.
    pub dns_names: Vec<DnsName>,
}

impl PreflightSite {
    /// From the site's values (the site file over the chart's `values.yaml`, as the plan
    /// merges them; a missing `hosts` or `turn.enabled` takes the chart's default) and the
    /// profile's requests.
    ///
    /// `calls` is read when the values have it: `calls.enabled`, `calls.nodeSelector` and
    /// `calls.externalIPs`, the same shape as `turn`.
    pub fn from_values(values: &Yaml, requests: ProfileRequests) -> PreflightSite {
        let text = |v: Option<&Yaml>| match v {
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(Yaml::Number(n)) => Some(n.to_string()),
            Some(Yaml::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        let at = |path: &str| path.split('.').try_fold(values, |here, key| here.get(key));
        let storage_class = text(at("storageClass")).filter(|s| !s.is_empty());
        let mut selections = Vec::new();
        for (part, key, default_on) in [("coturn", "turn", true), ("LiveKit", "calls", false)] {
            let Some(section) = values.get(key) else {
                continue;
            };
            let on = section
                .get("enabled")
                .and_then(Yaml::as_bool)
                .unwrap_or(default_on);
            if !on {
                continue;
            }
            let labels = section
                .get("nodeSelector")
                .and_then(Yaml::as_mapping)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((text(Some(k))?, text(Some(v))?)))
                        .collect()
                })
                .unwrap_or_default();
            let list = |field: &str| -> Vec<String> {
                section
                    .get(field)
                    .and_then(Yaml::as_sequence)
                    .map(|s| s.iter().filter_map(|v| text(Some(v))).collect())
                    .unwrap_or_default()
            };
            // Behind NAT, `nodeIPs` are the nodes' own addresses (in the order of
            // `externalIPs`, which clients reach): the nodes are found by those.
            let node_ips = list("nodeIPs");
            let (addresses, address_field) = match (key, node_ips.is_empty()) {
                ("turn", true) => (list("externalIPs"), "turn.externalIPs"),
                ("turn", false) => (node_ips, "turn.nodeIPs"),
                (_, true) => (list("externalIPs"), "calls.externalIPs"),
                (_, false) => (node_ips, "calls.nodeIPs"),
            };
            let field = if key == "turn" {
                "turn.nodeSelector"
            } else {
                "calls.nodeSelector"
            };
            selections.push(NodeSelection {
                part,
                field,
                labels,
                address_field,
                needed: addresses.len().max(1),
                addresses,
            });
        }
        let mut dns_names: Vec<DnsName> = Vec::new();
        let mut add = |name: String, points_at| {
            if !name.is_empty() && !dns_names.iter().any(|d| d.name == name) {
                dns_names.push(DnsName { name, points_at });
            }
        };
        if let Some(server) = text(at("serverName")) {
            add(
                server,
                "the Gateway's address (it serves /.well-known/matrix there)",
            );
        }
        if let Some(domain) = text(at("domain")).filter(|d| !d.is_empty()) {
            let host = |key: &str, default: &str| {
                text(at(&format!("hosts.{key}"))).unwrap_or_else(|| default.to_string())
            };
            add(
                format!("{}.{domain}", host("matrix", "matrix")),
                "the Gateway's address",
            );
            add(
                format!("{}.{domain}", host("element", "chat")),
                "the Gateway's address",
            );
            add(
                format!("{}.{domain}", host("admin", "admin")),
                "the Gateway's address",
            );
            if selections.iter().any(|s| s.part == "coturn") {
                add(
                    format!("{}.{domain}", host("turn", "turn")),
                    "the TURN nodes' addresses (turn.externalIPs)",
                );
            }
            // Group calls: LiveKit's signalling and lk-jwt-service, through the Gateway.
            if selections.iter().any(|s| s.part == "LiveKit") {
                add(
                    format!("{}.{domain}", host("rtc", "rtc")),
                    "the Gateway's address",
                );
            }
        }
        PreflightSite {
            storage_class,
            requests,
            selections,
            dns_names,
        }
    }
}

/// Name resolution, injectable so that tests do not depend on this machine's DNS.
pub trait Resolver {
    /// Why names cannot be checked on this machine (no resolver configured), or `None`.
    fn unavailable(&self) -> Option<String>;
    /// The addresses of `name`, or why it does not resolve.
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String>;
}

/// The machine's resolver, through [`ToSocketAddrs`] (the C library: `/etc/hosts`, then the
/// nameservers of `/etc/resolv.conf`).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn unavailable(&self) -> Option<String> {
        if cfg!(unix) {
            let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let has_nameserver = conf
                .lines()
                .any(|l| l.trim_start().starts_with("nameserver"));
            if !has_nameserver {
                return Some("this machine has no nameserver in /etc/resolv.conf".into());
            }
        }
        None
    }

    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        (name, 0)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .map_err(|e| e.to_string())
    }
}

/// Runs every check on `cluster` for `site`, with `now` as this machine's clock; reports every
/// finding at once.
pub fn check(
    cluster: &dyn Cluster,
    site: &PreflightSite,
    now: SystemTime,
    resolver: &dyn Resolver,
) -> Report {
    let mut report = Report::default();
    match cluster.server_version() {
        Err(e) => {
            report.findings.push(Finding {
                check: "api",
                problem: format!("the Kubernetes API does not answer: {e}"),
                fix: "check that the kubeconfig the installer uses (KUBECONFIG, --kubeconfig) \
                      names this cluster's API server and valid credentials, and that this \
                      machine reaches its address and port (6443 by default); `kubectl get \
                      --raw /version` shows the same error"
                    .into(),
            });
            for check in ["storage class", "nodes", "node labels", "clock"] {
                report.skipped.push(Skipped {
                    check,
                    why: "the Kubernetes API does not answer".into(),
                });
            }
        }
        Ok(version) => {
            report.findings.extend(version_finding(&version));
            storage(cluster, site, &mut report);
            match cluster.list("Node", None) {
                Err(e) => report.findings.push(Finding {
                    check: "nodes",
                    problem: format!("the Nodes cannot be listed: {e}"),
                    fix: "run the installer with credentials that may list Nodes \
                          (cluster-admin for the install)"
                        .into(),
                }),
                Ok(objects) => {
                    let nodes: Vec<Node> = objects.iter().map(Node::of).collect();
                    capacity(&nodes, &site.requests, &mut report);
                    labels(&nodes, &objects, &site.selections, &mut report);
                    clock(cluster, &nodes, now, &mut report);
                }
            }
        }
    }
    dns(site, resolver, &mut report);
    report
}

/// `(major, minor)` of a `gitVersion`: `v1.33.4-eks-e386d34` → (1, 33).
fn major_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.strip_prefix('v').unwrap_or(version).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

fn version_finding(version: &str) -> Option<Finding> {
    let supported = format!("1.{MIN_MINOR} to 1.{MAX_MINOR}");
    let why = "the versions cert-manager 1.21, Envoy Gateway 1.9 and CloudNativePG 1.28 all \
               support";
    match major_minor(version) {
        Some((1, minor)) if (MIN_MINOR..=MAX_MINOR).contains(&minor) => None,
        Some((1, minor)) if minor < MIN_MINOR => Some(Finding {
            check: "version",
            problem: format!(
                "the API server runs Kubernetes {version}; this bundle supports {supported} \
                 ({why})"
            ),
            fix: format!(
                "upgrade the cluster to 1.{MIN_MINOR} (one minor version at a time, as the \
                 distribution documents), or deploy a bundle built for 1.{minor}"
            ),
        }),
        Some(_) => Some(Finding {
            check: "version",
            problem: format!(
                "the API server runs Kubernetes {version}; this bundle supports {supported} \
                 ({why})"
            ),
            fix: format!(
                "deploy a newer bundle whose charts support this version, or use a cluster \
                 at 1.{MAX_MINOR} or older"
            ),
        }),
        None => Some(Finding {
            check: "version",
            problem: format!("the API server reports version `{version}`, not v1.MINOR.PATCH"),
            fix: format!(
                "check that the kubeconfig points at a Kubernetes API server ({supported})"
            ),
        }),
    }
}

// ---------------------------------------------------------------------------------------
// storage class

fn storage(cluster: &dyn Cluster, site: &PreflightSite, report: &mut Report) {
    const CHECK: &str = "storage class";
    let classes = match cluster.list("StorageClass", None) {
        Ok(classes) => classes,
        Err(e) => {
            report.findings.push(Finding {
                check: CHECK,
                problem: format!("the StorageClasses cannot be listed: {e}"),
                fix: "run the installer with credentials that may list StorageClasses \
                      (cluster-admin for the install)"
                    .into(),
            });
            return;
        }
    };
    let name = |c: &Value| c["metadata"]["name"].as_str().unwrap_or("").to_string();
    let is_default = |c: &Value| {
        DEFAULT_CLASS
            .iter()
            .any(|a| c["metadata"]["annotations"][a].as_str() == Some("true"))
    };
    let describe = |c: &Value| {
        let provisioner = c["provisioner"].as_str().unwrap_or("no provisioner");
        if is_default(c) {
            format!("{} (default, {provisioner})", name(c))
        } else {
            format!("{} ({provisioner})", name(c))
        }
    };
    let all = if classes.is_empty() {
        "none".to_string()
    } else {
        classes.iter().map(describe).collect::<Vec<_>>().join(", ")
    };
    let defaults: Vec<&Value> = classes.iter().filter(|c| is_default(c)).collect();
    let target = match &site.storage_class {
        Some(wanted) => match classes.iter().find(|c| name(c) == *wanted) {
            Some(class) => Some(class),
            None => {
                let fix = match defaults.as_slice() {
                    [one] => format!(
                        "set storageClass in the site file to one the cluster has (its \
                         default is {}), or create StorageClass {wanted} as the site's \
                         storage driver documents",
                        name(one)
                    ),
                    _ => format!(
                        "set storageClass in the site file to one the cluster has, or create \
                         StorageClass {wanted} as the site's storage driver documents"
                    ),
                };
                report.findings.push(Finding {
                    check: CHECK,
                    problem: format!(
                        "StorageClass {wanted} (site storageClass) does not exist; the \
                         cluster has: {all}"
                    ),
                    fix,
                });
                None
            }
        },
        None => match defaults.as_slice() {
            [one] => {
                report.findings.push(Finding {
                    check: CHECK,
                    problem: format!(
                        "the site file names no storageClass; the cluster's default \
                         StorageClass is {}",
                        describe(one)
                    ),
                    fix: format!(
                        "set `storageClass: {}` in the site file (every volume of the stack \
                         uses it)",
                        name(one)
                    ),
                });
                Some(*one)
            }
            [] => {
                report.findings.push(Finding {
                    check: CHECK,
                    problem: format!(
                        "the site file names no storageClass and the cluster has no default \
                         StorageClass; it has: {all}"
                    ),
                    fix: "set storageClass in the site file to the class for the stack's \
                          volumes"
                        .into(),
                });
                None
            }
            several => {
                report.findings.push(Finding {
                    check: CHECK,
                    problem: format!(
                        "the site file names no storageClass and the cluster marks several \
                         StorageClasses default: {}",
                        several
                            .iter()
                            .map(|c| name(c))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    fix: "set storageClass in the site file to the one for the stack's \
                          volumes"
                        .into(),
                });
                None
            }
        },
    };
    if let Some(class) = target {
        if class["allowVolumeExpansion"].as_bool() != Some(true) {
            let class_name = name(class);
            let provisioner = class["provisioner"].as_str().unwrap_or("no provisioner");
            report.findings.push(Finding {
                check: CHECK,
                problem: format!(
                    "StorageClass {class_name} ({provisioner}) does not allow volume expansion \
                     (allowVolumeExpansion is not true): the PostgreSQL, media, Valkey and \
                     Garage volumes cannot grow after the install"
                ),
                fix: format!(
                    "use a class whose driver resizes volumes (allowVolumeExpansion: true); \
                     if {provisioner} can resize, `kubectl patch storageclass {class_name} \
                     -p '{{\"allowVolumeExpansion\": true}}'` (local-path and other host-path \
                     provisioners cannot)"
                ),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------
// nodes

/// What the checks read of a Node.
struct Node {
    name: String,
    ready: bool,
    unschedulable: bool,
    /// Taints that keep the stack's pods off (NoSchedule, NoExecute), as `key=value:Effect`.
    blocking_taints: Vec<String>,
    labels: BTreeMap<String, String>,
    addresses: Vec<String>,
    /// Allocatable millicores and bytes.
    cpu: Option<u64>,
    memory: Option<u64>,
    /// The Ready condition's `lastHeartbeatTime`.
    heartbeat: Option<String>,
}

impl Node {
    fn of(object: &Value) -> Node {
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let status = &object["status"];
        let ready = status["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"));
        let blocking_taints = object["spec"]["taints"]
            .as_array()
            .map(|taints| {
                taints
                    .iter()
                    .filter(|t| matches!(t["effect"].as_str(), Some("NoSchedule" | "NoExecute")))
                    .map(|t| match t["value"].as_str().filter(|v| !v.is_empty()) {
                        Some(value) => {
                            format!("{}={value}:{}", text(&t["key"]), text(&t["effect"]))
                        }
                        None => format!("{}:{}", text(&t["key"]), text(&t["effect"])),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Node {
            name: text(&object["metadata"]["name"]),
            ready: ready.is_some_and(|c| c["status"] == "True"),
            unschedulable: object["spec"]["unschedulable"].as_bool() == Some(true),
            blocking_taints,
            labels: object["metadata"]["labels"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default(),
            addresses: status["addresses"]
                .as_array()
                .map(|a| a.iter().map(|a| text(&a["address"])).collect())
                .unwrap_or_default(),
            cpu: status["allocatable"]["cpu"].as_str().and_then(parse_cpu),
            memory: status["allocatable"]["memory"]
                .as_str()
                .and_then(parse_memory),
            heartbeat: ready.and_then(|c| c["lastHeartbeatTime"].as_str().map(String::from)),
        }
    }

    /// Why the stack's pods cannot run here, or `None`.
    fn unusable(&self) -> Option<String> {
        if !self.ready {
            Some("not Ready".into())
        } else if self.unschedulable {
            Some("cordoned".into())
        } else if !self.blocking_taints.is_empty() {
            Some(format!("taint {}", self.blocking_taints.join(", ")))
        } else if self.cpu.is_none() || self.memory.is_none() {
            Some("no allocatable cpu and memory in its status".into())
        } else {
            None
        }
    }

    /// Allocatable CPU less the reserve.
    fn usable_cpu(&self) -> u64 {
        let cpu = self.cpu.unwrap_or(0);
        cpu.saturating_sub((cpu * RESERVE_PERCENT / 100).max(MIN_RESERVE_CPU))
    }

    /// Allocatable memory less the reserve (rounded up to whole MiB, as capacity's).
    fn usable_memory(&self) -> u64 {
        let memory = self.memory.unwrap_or(0);
        let reserve = (memory / MI * RESERVE_PERCENT)
            .div_ceil(100)
            .max(MIN_RESERVE_MIB)
            * MI;
        memory.saturating_sub(reserve)
    }
}

/// `unusable` nodes, as `name (why)`, joined.
fn not_counted(nodes: &[Node]) -> String {
    nodes
        .iter()
        .filter_map(|n| n.unusable().map(|why| format!("{} ({why})", n.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The profile's requests against the usable nodes: all pods against the sum of the nodes,
/// the largest pod against the largest node. One pool: every node the pods may run on, as the
/// capacity check counts them (it does not bin-pack either).
fn capacity(nodes: &[Node], requests: &ProfileRequests, report: &mut Report) {
    let usable: Vec<&Node> = nodes.iter().filter(|n| n.unusable().is_none()).collect();
    let excluded = not_counted(nodes);
    let profile = &requests.profile;
    if usable.is_empty() {
        report.findings.push(Finding {
            check: "nodes",
            problem: if nodes.is_empty() {
                "the cluster has no Nodes".to_string()
            } else {
                format!("no node can run the stack's pods: {excluded}")
            },
            fix: "make nodes Ready and schedulable (`kubectl uncordon NODE`; remove NoSchedule \
                  taints the stack's pods do not tolerate: `kubectl taint node NODE KEY-`), or \
                  add worker nodes"
                .into(),
        });
        return;
    }
    let names = usable
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let not_counted = if excluded.is_empty() {
        String::new()
    } else {
        format!("; not counted: {excluded}")
    };
    let reserve_rule = |min: String| {
        format!(
            "the {RESERVE_PERCENT}% reserve (at least {min} per node) for the cluster's \
             DaemonSets and the operators"
        )
    };
    for (check, unit, requested, allocatable, after_reserve, min) in [
        (
            "cpu",
            Unit::Cpu,
            requests.cpu,
            usable.iter().map(|n| n.cpu.unwrap_or(0)).sum::<u64>(),
            usable.iter().map(|n| n.usable_cpu()).sum::<u64>(),
            format_cpu(MIN_RESERVE_CPU),
        ),
        (
            "memory",
            Unit::Memory,
            requests.memory,
            usable.iter().map(|n| n.memory.unwrap_or(0)).sum::<u64>(),
            usable.iter().map(|n| n.usable_memory()).sum::<u64>(),
            format_memory(MIN_RESERVE_MIB * MI),
        ),
    ] {
        if requested > after_reserve {
            report.findings.push(Finding {
                check,
                problem: format!(
                    "profile {profile} requests {} {check} in all; the {} usable node(s) \
                     ({names}) allocate {}, {} after {}: {} short{not_counted}",
                    unit.format(requested),
                    usable.len(),
                    unit.format(allocatable),
                    unit.format(after_reserve),
                    reserve_rule(min),
                    unit.format(requested - after_reserve),
                ),
                fix: format!(
                    "add nodes or {check} (at least {} more allocatable), make the nodes not \
                     counted usable if the stack may run there, or choose a smaller profile \
                     (`installer capacity --values SITE --profile all` shows what each \
                     profile requests)",
                    unit.format(requested - after_reserve)
                ),
            });
        }
    }
    for (check, unit, pod, usable_of) in [
        (
            "pod cpu",
            Unit::Cpu,
            &requests.largest_cpu,
            Node::usable_cpu as fn(&Node) -> u64,
        ),
        (
            "pod memory",
            Unit::Memory,
            &requests.largest_memory,
            Node::usable_memory,
        ),
    ] {
        // The first of equally large nodes (max_by_key alone keeps the last).
        let Some(largest) = usable.iter().rev().max_by_key(|n| usable_of(n)) else {
            continue;
        };
        if pod.amount > usable_of(largest) {
            let kind = if unit == Unit::Cpu { "CPU" } else { "memory" };
            report.findings.push(Finding {
                check,
                problem: format!(
                    "a {} pod of profile {profile} requests {} {kind}; the largest usable \
                     node, {}, has {} after the reserve: the pod can never be scheduled",
                    pod.workload,
                    unit.format(pod.amount),
                    largest.name,
                    unit.format(usable_of(largest)),
                ),
                fix: format!(
                    "give at least one node {} more allocatable {kind}, or choose a smaller \
                     profile",
                    unit.format(pod.amount - usable_of(largest))
                ),
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Cpu,
    Memory,
}

impl Unit {
    fn format(self, amount: u64) -> String {
        match self {
            Unit::Cpu => format_cpu(amount),
            Unit::Memory => format_memory(amount),
        }
    }
}

/// `12230m`, as the capacity check prints CPU.
fn format_cpu(millicores: u64) -> String {
    format!("{millicores}m")
}

/// `4Gi`, `25376Mi` as the capacity check prints memory; a byte count that is no whole MiB
/// is shown in whole MiB, rounded down.
fn format_memory(bytes: u64) -> String {
    if bytes != 0 && bytes.is_multiple_of(GI) {
        format!("{}Gi", bytes / GI)
    } else {
        format!("{}Mi", bytes / MI)
    }
}

// ---------------------------------------------------------------------------------------
// node labels

/// The labels of `selection` a node lacks, as `key=value`.
fn missing_labels(labels: &BTreeMap<String, String>, selection: &NodeSelection) -> Vec<String> {
    selection
        .labels
        .iter()
        .filter(|(k, v)| labels.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn labels(nodes: &[Node], objects: &[Value], selections: &[NodeSelection], report: &mut Report) {
    const CHECK: &str = "node labels";
    for selection in selections {
        let selector = selection
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        if selection.labels.is_empty() {
            report.findings.push(Finding {
                check: CHECK,
                problem: format!(
                    "{} is on but {} is empty: no node label selects its nodes",
                    selection.part, selection.field
                ),
                fix: format!(
                    "set {} in the site file to a label of the {} nodes (for example \
                     `messenger.<domain>/{}: \"true\"`) and label those nodes",
                    selection.field,
                    selection.part,
                    selection.field.split('.').next().unwrap_or("turn")
                ),
            });
            continue;
        }
        let labelled: Vec<&Node> = nodes
            .iter()
            .filter(|n| missing_labels(&n.labels, selection).is_empty())
            .collect();
        let usable: Vec<&Node> = labelled
            .iter()
            .copied()
            .filter(|n| n.unusable().is_none())
            .collect();
        if usable.len() >= selection.needed {
            continue;
        }
        let one_per = if selection.addresses.is_empty() {
            String::new()
        } else {
            format!(
                " (one per {} address: {})",
                selection.address_field,
                selection.addresses.join(", ")
            )
        };
        let mut problem = if labelled.is_empty() {
            format!(
                "{} runs on nodes labelled {selector} ({}); it needs {}{one_per}, and no node \
                 has the label {selector}",
                selection.part, selection.field, selection.needed
            )
        } else {
            format!(
                "{} runs on nodes labelled {selector} ({}); it needs {}{one_per}, {} usable \
                 node(s) have the label{}",
                selection.part,
                selection.field,
                selection.needed,
                usable.len(),
                if usable.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        usable
                            .iter()
                            .map(|n| n.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )
        };
        let unusable: Vec<String> = labelled
            .iter()
            .filter_map(|n| n.unusable().map(|why| format!("{} ({why})", n.name)))
            .collect();
        if !unusable.is_empty() {
            problem.push_str(&format!(
                "; labelled but not usable: {} ({} tolerates no taint)",
                unusable.join(", "),
                selection.part
            ));
        }
        let patches = label_patches(objects, selection);
        let fix = if patches.is_empty() {
            format!(
                "label {} more node(s){}: `kubectl label node NODE {}`",
                selection.needed - usable.len(),
                if selection.addresses.is_empty() {
                    String::new()
                } else {
                    format!(" whose addresses are {}", selection.addresses.join(", "))
                },
                selection
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        } else {
            format!(
                "label the nodes that have the {} addresses: {}",
                selection.address_field,
                patches
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        report.findings.push(Finding {
            check: CHECK,
            problem,
            fix,
        });
    }
}

/// Labels to add to one node: what `kubectl label node` would do, as a merge patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelPatch {
    /// The Node.
    pub node: String,
    /// The labels it lacks.
    pub labels: BTreeMap<String, String>,
    /// The merge patch of the Node that adds them (`{"metadata": {"labels": {...}}}`).
    pub patch: Value,
}

impl fmt::Display for LabelPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "kubectl label node {}", self.node)?;
        for (k, v) in &self.labels {
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// Labels the Nodes every selection of `site` names by address (`turn.externalIPs`, or
/// `turn.nodeIPs` behind NAT) with
/// the labels they lack (server-side apply of each Node's labels only); returns what it did.
/// Only when the field engineer asks for it (`installer deploy --label-nodes`): the preflight
/// itself changes nothing.
pub fn label_nodes(
    cluster: &dyn Cluster,
    site: &PreflightSite,
) -> Result<Vec<LabelPatch>, KubeError> {
    let nodes = cluster.list("Node", None)?;
    let mut done = Vec::new();
    for selection in &site.selections {
        for patch in label_patches(&nodes, selection) {
            let node = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": patch.node, "labels": patch.labels},
            });
            cluster.apply(&node.to_string())?;
            done.push(patch);
        }
    }
    Ok(done)
}

/// The labels `selection` needs on the Nodes (API objects, as listed) whose status addresses
/// include one of the selection's addresses and that lack them. Nothing is applied: the
/// caller shows them, or applies them when the operator agrees.
pub fn label_patches(nodes: &[Value], selection: &NodeSelection) -> Vec<LabelPatch> {
    nodes
        .iter()
        .map(Node::of)
        .filter(|n| n.addresses.iter().any(|a| selection.addresses.contains(a)))
        .filter_map(|n| {
            let labels: BTreeMap<String, String> = selection
                .labels
                .iter()
                .filter(|(k, v)| n.labels.get(*k) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (!labels.is_empty()).then(|| LabelPatch {
                patch: json!({"metadata": {"labels": labels}}),
                node: n.name,
                labels,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// clock

/// Clock skew from timestamps the kubelets write with their own clocks. A timestamp `t` a
/// node wrote at real time `w` reads `t = w + s` for a node clock `s` ahead of this machine's;
/// it was written in the past, `w ≤ now`, and at most `bound` before `now` on a healthy node.
/// So `t − now ≤ s` (a timestamp in this machine's future is a node clock at least that far
/// ahead), and `now − t − bound ≤ −s` (a timestamp older than the bound is a node clock at
/// least the excess behind). Both are lower bounds: a finding is a skew that is certain.
///
/// The timestamp is the node's Lease (`kube-node-lease`, `spec.renewTime`, renewed every
/// 10 s, bound `leaseDurationSeconds`, 40 s by default) or, without one, the Ready
/// condition's `lastHeartbeatTime`: since node leases, kubelets write their status only when
/// it changes or every `nodeStatusReportFrequency` (5 minutes), so that bound is 5 minutes
/// and only a skew beyond it shows on that side. Nodes that are not Ready are left out (their
/// timestamps are stale for another reason).
fn clock(cluster: &dyn Cluster, nodes: &[Node], now: SystemTime, report: &mut Report) {
    const CHECK: &str = "clock";
    let leases: BTreeMap<String, (String, u64)> = cluster
        .list("Lease", Some(LEASE_NAMESPACE))
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            Some((
                l["metadata"]["name"].as_str()?.to_string(),
                (
                    l["spec"]["renewTime"].as_str()?.to_string(),
                    l["spec"]["leaseDurationSeconds"]
                        .as_u64()
                        .unwrap_or(DEFAULT_LEASE_SECONDS),
                ),
            ))
        })
        .collect();
    let mut measured = 0;
    let mut skews = Vec::new();
    for node in nodes.iter().filter(|n| n.ready) {
        let (stamp, bound, source) = match (leases.get(&node.name), &node.heartbeat) {
            (Some((renew, seconds)), _) => (
                renew.clone(),
                Duration::from_secs(*seconds),
                format!("its Lease {LEASE_NAMESPACE}/{} was renewed at", node.name),
            ),
            (None, Some(heartbeat)) => (
                heartbeat.clone(),
                STATUS_REPORT_FREQUENCY,
                "its Ready condition's lastHeartbeatTime is".to_string(),
            ),
            (None, None) => continue,
        };
        let Some(at) = parse_time(&stamp) else {
            continue;
        };
        measured += 1;
        if let Ok(ahead) = at.duration_since(now) {
            if ahead > MAX_CLOCK_SKEW {
                skews.push((node.name.clone(), true, ahead, format!("{source} {stamp}")));
            }
        } else if let Ok(age) = now.duration_since(at) {
            if age > bound + MAX_CLOCK_SKEW {
                skews.push((
                    node.name.clone(),
                    false,
                    age - bound,
                    format!(
                        "{source} {stamp}, at most {} ago on a healthy node",
                        format_duration(bound)
                    ),
                ));
            }
        }
    }
    if measured == 0 {
        report.skipped.push(Skipped {
            check: CHECK,
            why: "no Ready node has a Lease or heartbeat time to compare".into(),
        });
        return;
    }
    let now_text = format_time(now);
    let fix_node = "sync the node's clock to the site's time source (chrony or \
                    systemd-timesyncd: `chronyc tracking`, `timedatectl`); certificates issued \
                    on one clock are not yet valid, or already expired, on a clock that far off";
    let all_same =
        skews.len() == measured && measured > 1 && skews.iter().all(|s| s.1 == skews[0].1);
    if all_same {
        let least = skews.iter().map(|s| s.2).min().unwrap_or_default();
        let direction = if skews[0].1 { "behind" } else { "ahead of" };
        report.findings.push(Finding {
            check: CHECK,
            problem: format!(
                "this machine's clock ({now_text}) is at least {} {direction} every node's \
                 ({measured} nodes; {})",
                format_duration(least),
                skews
                    .iter()
                    .map(|s| format!("{}: {}", s.0, s.3))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            fix: "set this machine's clock from the site's time source (`chronyc tracking`, \
                  `timedatectl set-ntp true`) and run the installer again"
                .into(),
        });
        return;
    }
    for (node, ahead, skew, evidence) in skews {
        let direction = if ahead { "ahead of" } else { "behind" };
        report.findings.push(Finding {
            check: CHECK,
            problem: format!(
                "node {node}'s clock is at least {} {direction} this machine's ({now_text}): \
                 {evidence}",
                format_duration(skew)
            ),
            fix: fix_node.into(),
        });
    }
}

/// An RFC 3339 time as the API writes it (`2026-03-10T09:15:42Z`, with fractions in
/// MicroTime, or an offset).
fn parse_time(text: &str) -> Option<SystemTime> {
    let digits = |from: usize, to: usize| -> Option<u64> {
        let part = text.get(from..to)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 7)?, digits(8, 10)?);
    let (hour, minute, second) = (digits(11, 13)?, digits(14, 16)?, digits(17, 19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let kept = &fraction[..len.min(9)];
        nanos = format!("{kept:0<9}").parse().ok()?;
        rest = &fraction[len..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = rest[1..].split_once(':')?;
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(i64::try_from(year).ok()?, month as u32, day as u32);
    let seconds = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()? - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// `2026-03-10T09:15:42Z`, to the second.
fn format_time(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_from_march + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

/// `6m5s`, `1h2m0s`, `45s` (whole seconds).
fn format_duration(duration: Duration) -> String {
    let s = duration.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

// ---------------------------------------------------------------------------------------
// dns

fn dns(site: &PreflightSite, resolver: &dyn Resolver, report: &mut Report) {
    const CHECK: &str = "dns";
    if site.dns_names.is_empty() {
        return;
    }
    if let Some(why) = resolver.unavailable() {
        report.skipped.push(Skipped { check: CHECK, why });
        return;
    }
    for name in &site.dns_names {
        let problem = match resolver.resolve(&name.name) {
            Ok(addresses) if !addresses.is_empty() => continue,
            Ok(_) => format!("{} resolves to no address", name.name),
            Err(e) => format!("{} does not resolve: {e}", name.name),
        };
        report.findings.push(Finding {
            check: CHECK,
            problem,
            fix: format!(
                "add an A (or AAAA) record for {} to the site's DNS, pointing at {}; the \
                 users' devices and this machine must resolve it",
                name.name, name.points_at
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_distributions_write_them() {
        assert_eq!(major_minor("v1.33.4-eks-e386d34"), Some((1, 33)));
        assert_eq!(major_minor("v1.32.6+k3s1"), Some((1, 32)));
        assert_eq!(major_minor("v1.34.1"), Some((1, 34)));
        assert_eq!(major_minor("1.30.0-gke.100"), Some((1, 30)));
        assert_eq!(major_minor("banana"), None);
        assert!(version_finding("v1.33.0").is_none());
        assert!(version_finding("v1.34.9").is_none());
        let old = version_finding("v1.32.6+k3s1").unwrap();
        assert!(old.fix.contains("upgrade the cluster to 1.33"), "{old}");
        let new = version_finding("v1.35.0").unwrap();
        assert!(new.fix.contains("newer bundle"), "{new}");
        assert!(version_finding("v2.0.0").is_some());
    }

    #[test]
    fn quantities_as_kubelets_report_them() {
        assert_eq!(parse_cpu("4"), Some(4000));
        assert_eq!(parse_cpu("7910m"), Some(7910));
        assert_eq!(parse_cpu("1.5"), Some(1500));
        assert_eq!(parse_cpu("x"), None);
        assert_eq!(parse_memory("16283428Ki"), Some(16_283_428 * 1024));
        assert_eq!(parse_memory("32Gi"), Some(32 * GI));
        assert_eq!(parse_memory("1G"), Some(1_000_000_000));
        assert_eq!(parse_memory("2GB"), None);
        assert_eq!(format_memory(4 * GI), "4Gi");
        assert_eq!(format_memory(25_376 * MI), "25376Mi");
        assert_eq!(format_memory(25_376 * MI + 5), "25376Mi");
    }

    #[test]
    fn times_round_trip_and_offsets_apply() {
        let t = parse_time("2026-03-10T09:15:42Z").unwrap();
        assert_eq!(format_time(t), "2026-03-10T09:15:42Z");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_773_134_142
        );
        let micro = parse_time("2026-03-10T09:15:42.250000Z").unwrap();
        assert_eq!(micro.duration_since(t).unwrap(), Duration::from_millis(250));
        let offset = parse_time("2026-03-10T10:15:42+01:00").unwrap();
        assert_eq!(offset, t);
        assert_eq!(
            format_time(parse_time("2024-02-29T23:59:59Z").unwrap()),
            "2024-02-29T23:59:59Z"
        );
        for bad in [
            "",
            "2026-03-10",
            "2026-13-10T00:00:00Z",
            "2026-03-10T09:15:42",
            "x026-03-10T09:15:42Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(format_duration(Duration::from_secs(365)), "6m5s");
        assert_eq!(format_duration(Duration::from_secs(45)), "45s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h2m0s");
    }

    #[test]
    fn the_reserve_is_the_capacity_checks() {
        let node = |cpu: &str, memory: &str| {
            Node::of(&json!({"metadata": {"name": "n"}, "status": {
                "allocatable": {"cpu": cpu, "memory": memory},
                "conditions": [{"type": "Ready", "status": "True"}]}}))
        };
        // 10% of a large node, the minimum of a small one.
        let big = node("32", "128Gi");
        assert_eq!(big.usable_cpu(), 28_800);
        assert_eq!(big.usable_memory(), 128 * GI - 13_108 * MI);
        let small = node("2", "4Gi");
        assert_eq!(small.usable_cpu(), 1500);
        assert_eq!(small.usable_memory(), 3 * GI);
        assert!(small.unusable().is_none());
        let taints = json!([
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "soft", "value": "x", "effect": "PreferNoSchedule"}
        ]);
        let tainted = Node::of(&json!({"metadata": {"name": "cp"},
            "spec": {"taints": taints},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}));
        assert_eq!(
            tainted.unusable().as_deref(),
            Some("taint node-role.kubernetes.io/control-plane:NoSchedule")
        );
    }
}
