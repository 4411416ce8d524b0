//! CPU and memory: the requests of every pod the chart runs against the declared nodes.

use super::connections::synapse_pools;
use super::quantity::{parse_cpu, parse_memory};
use super::report::{Check, Term, Unit};
use super::values::{Nodes, Resources, Values};
use super::CapacityError;

/// Share of each node, in percent, kept for the kubelet, the container runtime, the OS, the
/// cluster's own DaemonSets (CNI, CSI, kube-proxy) and the eviction threshold.
pub const SYSTEM_RESERVE_PERCENT: u64 = 10;
/// The least CPU kept per node, in millicores, however small the node.
pub const MIN_SYSTEM_RESERVE_CPU: u64 = 500;
/// The least memory kept per node, in MiB, however small the node.
pub const MIN_SYSTEM_RESERVE_MIB: u64 = 1024;

const MI: u64 = 1024 * 1024;

/// The shutdown-manager sidecar's CPU request, millicores. Envoy Gateway (v1.9) starts it in
/// every proxy pod beside the envoy container that `gateway.envoy.resources` sizes, with this
/// request of its own: the controller's default, which the EnvoyProxy cannot change.
pub const SHUTDOWN_MANAGER_CPU: u64 = 10;
/// The shutdown-manager sidecar's memory request, MiB (see [`SHUTDOWN_MANAGER_CPU`]).
pub const SHUTDOWN_MANAGER_MIB: u64 = 32;

/// The redis_exporter sidecar's CPU request, millicores: the chart starts it beside every
/// Valkey and Sentinel when monitoring is on (templates/valkey/valkey_statefulsets.yaml),
/// with this fixed request.
pub const VALKEY_EXPORTER_CPU: u64 = 10;
/// The redis_exporter sidecar's memory request, MiB (see [`VALKEY_EXPORTER_CPU`]).
pub const VALKEY_EXPORTER_MIB: u64 = 32;

/// One workload: its pods and each pod's requests (millicores, bytes).
struct Workload {
    label: String,
    pods: u64,
    cpu: u64,
    memory: u64,
    /// A container the values do not size, already in `cpu` and `memory`: its name and
    /// requests (millicores, bytes), for the notes.
    sidecar: Option<Sidecar>,
}

#[derive(Clone, Copy)]
struct Sidecar {
    name: &'static str,
    /// Who sets its requests.
    origin: &'static str,
    cpu: u64,
    memory: u64,
}

/// One workload as the values give it: the requests of its sized container at `field`.
struct Entry<'a> {
    label: String,
    pods: u64,
    resources: &'a Resources,
    field: String,
    sidecar: Option<Sidecar>,
}

/// Every long-running workload of the chart, as its templates derive it from the values.
fn workloads(values: &Values, profile: &str) -> Result<Vec<Workload>, CapacityError> {
    let mut list: Vec<Entry> = vec![Entry {
        label: "synapse main".into(),
        pods: 1,
        resources: &values.synapse.main.resources,
        field: "synapse.main.resources".into(),
        sidecar: None,
    }];
    for (name, replicas, worker) in synapse_pools(values) {
        list.push(Entry {
            label: format!("synapse {name}"),
            pods: replicas,
            resources: &worker.resources,
            field: format!("synapse.workers.{name}.resources"),
            sidecar: None,
        });
    }
    let mut add = |label: &str, pods: u64, resources, field: &str| {
        list.push(Entry {
            label: label.into(),
            pods,
            resources,
            field: field.into(),
            sidecar: None,
        });
    };
    add(
        "haproxy",
        values.haproxy.replicas,
        &values.haproxy.resources,
        "haproxy.resources",
    );
    add(
        "element",
        values.element.replicas,
        &values.element.resources,
        "element.resources",
    );
    add(
        "synapse-admin",
        values.synapse_admin.replicas,
        &values.synapse_admin.resources,
        "synapseAdmin.resources",
    );
    if values.turn.enabled {
        // A DaemonSet on the TURN nodes: one node per address in turn.externalIPs.
        add(
            "coturn (one per turn.externalIPs)",
            values.turn.external_ips.len() as u64,
            &values.coturn.resources,
            "coturn.resources",
        );
    }
    if let Some(av) = values.antivirus.as_ref().filter(|a| a.enabled) {
        // templates/antivirus: the clamd pool and the download-time scanner.
        add(
            "clamd",
            av.clamd.replicas,
            &av.clamd.resources,
            "antivirus.clamd.resources",
        );
        add(
            "content-scanner",
            av.content_scanner.replicas,
            &av.content_scanner.resources,
            "antivirus.contentScanner.resources",
        );
    }
    if values.calls.as_ref().is_some_and(|c| c.enabled) {
        // One LiveKit per call node (templates/calls/livekit.yaml) and one lk-jwt-service.
        if let Some(livekit) = &values.livekit {
            add(
                "livekit",
                livekit.replicas,
                &livekit.resources,
                "livekit.resources",
            );
        }
        if let Some(jwt) = &values.lk_jwt_service {
            add(
                "lk-jwt-service",
                1,
                &jwt.resources,
                "lkJwtService.resources",
            );
        }
    }
    add(
        "postgres",
        values.postgres.instances,
        &values.postgres.resources,
        "postgres.resources",
    );
    add(
        "pgbouncer",
        values.pooler.instances,
        &values.pooler.resources,
        "pooler.resources",
    );
    add(
        "valkey",
        values.valkey.replicas,
        &values.valkey.resources,
        "valkey.resources",
    );
    add(
        "valkey-sentinel",
        values.valkey.sentinel.replicas,
        &values.valkey.sentinel.resources,
        "valkey.sentinel.resources",
    );
    add(
        "valkey-proxy",
        values.valkey.proxy.replicas,
        &values.valkey.proxy.resources,
        "valkey.proxy.resources",
    );
    if values.object_storage.mode == "garage" {
        add(
            "garage",
            values.garage.replicas,
            &values.garage.resources,
            "garage.resources",
        );
    }
    if values.monitoring.as_ref().is_some_and(|m| m.enabled) {
        for entry in list
            .iter_mut()
            .filter(|e| e.label == "valkey" || e.label == "valkey-sentinel")
        {
            entry.sidecar = Some(Sidecar {
                name: "redis-exporter",
                origin: "the chart's fixed request",
                cpu: VALKEY_EXPORTER_CPU,
                memory: VALKEY_EXPORTER_MIB * MI,
            });
        }
    }
    let envoy = &values.gateway.envoy;
    if envoy.manage {
        // Envoy Gateway starts them in gateway.namespace from the chart's EnvoyProxy
        // (templates/edge/gatewayclass.yaml), as operators start PostgreSQL and PgBouncer.
        list.push(Entry {
            label: "envoy proxy".into(),
            pods: envoy.replicas,
            resources: &envoy.resources,
            field: "gateway.envoy.resources".into(),
            sidecar: Some(Sidecar {
                name: "shutdown-manager",
                origin: "Envoy Gateway's default request",
                cpu: SHUTDOWN_MANAGER_CPU,
                memory: SHUTDOWN_MANAGER_MIB * MI,
            }),
        });
    }
    list.into_iter()
        .filter(|entry| entry.pods > 0)
        .map(|entry| {
            let quantity = |text: &str, parse: fn(&str) -> Option<u64>, kind| {
                parse(text).ok_or_else(|| CapacityError::Quantity {
                    profile: profile.to_string(),
                    field: format!("{}.requests.{kind}", entry.field),
                    value: text.to_string(),
                    kind,
                })
            };
            let requests = &entry.resources.requests;
            let cpu = quantity(&requests.cpu.0, parse_cpu, "cpu")?;
            let memory = quantity(&requests.memory.0, parse_memory, "memory")?;
            let (extra_cpu, extra_memory) = entry.sidecar.map_or((0, 0), |s| (s.cpu, s.memory));
            Ok(Workload {
                cpu: cpu.saturating_add(extra_cpu),
                memory: memory.saturating_add(extra_memory),
                sidecar: entry.sidecar,
                label: entry.label,
                pods: entry.pods,
            })
        })
        .collect()
}

/// The largest request of one kind, and the workload whose pod asks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Largest {
    /// The workload, as the checks label it (`postgres`, `synapse main`).
    pub workload: String,
    /// Millicores or bytes.
    pub amount: u64,
}

/// What a profile's pods request: the totals of the `cpu` and `memory` checks and the terms
/// of the `pod cpu` and `pod memory` checks, before any node is looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requests {
    /// The profile.
    pub profile: String,
    /// Pods counted.
    pub pods: u64,
    /// CPU of every pod, millicores.
    pub cpu: u64,
    /// Memory of every pod, bytes.
    pub memory: u64,
    /// The largest CPU request of one pod.
    pub largest_cpu: Largest,
    /// The largest memory request of one pod.
    pub largest_memory: Largest,
}

/// The profile's [`Requests`], from the same workloads as [`checks`].
pub(crate) fn requests(values: &Values, profile: &str) -> Result<Requests, CapacityError> {
    let workloads = workloads(values, profile)?;
    let sum = |request: fn(&Workload) -> u64| {
        workloads
            .iter()
            .map(|w| w.pods.saturating_mul(request(w)))
            .fold(0, u64::saturating_add)
    };
    let largest = |request: fn(&Workload) -> u64| {
        workloads.iter().max_by_key(|w| request(w)).map_or_else(
            || Largest {
                workload: String::new(),
                amount: 0,
            },
            |w| Largest {
                workload: w.label.clone(),
                amount: request(w),
            },
        )
    };
    Ok(Requests {
        profile: profile.to_string(),
        pods: workloads
            .iter()
            .map(|w| w.pods)
            .fold(0, u64::saturating_add),
        cpu: sum(|w| w.cpu),
        memory: sum(|w| w.memory),
        largest_cpu: largest(|w| w.cpu),
        largest_memory: largest(|w| w.memory),
    })
}

/// A node's size and what is left of it after the system reserve, in one unit.
struct NodeShare {
    size: u64,
    reserve: u64,
}

impl NodeShare {
    fn allocatable(&self) -> u64 {
        self.size.saturating_sub(self.reserve)
    }
}

fn cpu_share(nodes: &Nodes) -> NodeShare {
    let size = nodes.cpu.saturating_mul(1000);
    let reserve = (size.saturating_mul(SYSTEM_RESERVE_PERCENT) / 100).max(MIN_SYSTEM_RESERVE_CPU);
    NodeShare { size, reserve }
}

fn memory_share(nodes: &Nodes) -> NodeShare {
    let mib = nodes.memory_gib.saturating_mul(1024);
    let reserve = (mib.saturating_mul(SYSTEM_RESERVE_PERCENT))
        .div_ceil(100)
        .max(MIN_SYSTEM_RESERVE_MIB);
    NodeShare {
        size: mib.saturating_mul(MI),
        reserve: reserve.saturating_mul(MI),
    }
}

/// The four resource checks: total CPU and memory against all nodes, and the largest pod's
/// CPU and memory against one node.
pub(crate) fn checks(
    values: &Values,
    nodes: &Nodes,
    profile: &str,
) -> Result<Vec<Check>, CapacityError> {
    let workloads = workloads(values, profile)?;
    let mut checks = Vec::new();
    for (name, pod_name, unit, share, request) in [
        (
            "cpu",
            "pod cpu",
            Unit::Cpu,
            cpu_share(nodes),
            (|w: &Workload| w.cpu) as fn(&Workload) -> u64,
        ),
        (
            "memory",
            "pod memory",
            Unit::Memory,
            memory_share(nodes),
            |w: &Workload| w.memory,
        ),
    ] {
        let node = format!(
            "({} - {} system reserve)",
            unit.format(share.size),
            unit.format(share.reserve)
        );
        let terms = workloads
            .iter()
            .map(|w| Term {
                label: w.label.clone(),
                count: w.pods,
                what: "",
                each: request(w),
            })
            .collect();
        let mut notes: Vec<String> = workloads
            .iter()
            .filter_map(|w| {
                let sidecar = w.sidecar?;
                let extra = match unit {
                    Unit::Memory => sidecar.memory,
                    _ => sidecar.cpu,
                };
                Some(format!(
                    "{}: {} each = {} for its own container + {} for the {} sidecar ({})",
                    w.label,
                    unit.format(request(w)),
                    unit.format(request(w).saturating_sub(extra)),
                    unit.format(extra),
                    sidecar.name,
                    sidecar.origin
                ))
            })
            .collect();
        notes.push(
            "not counted: the bucket setup Job (runs once), the operators' own controller \
             pods and the cluster's DaemonSets (left to the system reserve)"
                .to_string(),
        );
        if !values.gateway.envoy.manage {
            notes.push(
                "not counted: the Envoy proxies (gateway.envoy.manage is false: the site's own \
                 GatewayClass sizes them)"
                    .to_string(),
            );
        }
        checks.push(Check::new(
            name,
            unit,
            terms,
            notes,
            format!("{} nodes × {node}", nodes.count),
            nodes.count.saturating_mul(share.allocatable()),
        ));
        let largest = workloads.iter().max_by_key(|w| request(w));
        let terms = largest
            .map(|w| Term {
                label: format!("{} (largest {name} request)", w.label),
                count: 1,
                what: "",
                each: request(w),
            })
            .into_iter()
            .collect();
        checks.push(Check::new(
            pod_name,
            unit,
            terms,
            vec![],
            format!("one node {node}"),
            share.allocatable(),
        ));
    }
    Ok(checks)
}
