//! The preflight on the cluster fixtures (tests/fixtures/clusters: kind, k3s, a managed-like
//! cluster, a too-small one, hand-written in the shape kubectl prints) with the repository's
//! site file and several profiles, whose requests come from `installer capacity --json` (the
//! capacity crate's arithmetic): the exact findings of each, all at once; an API that does
//! not answer, versions out of range, clock skew both ways, and DNS through an injected
//! resolver.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use installer::deploy::preflight::{
    self, label_nodes, label_patches, Finding, PodRequest, PreflightSite, ProfileRequests, Report,
    Resolver,
};
use installer::deploy::render::ReleaseInput;
use installer::kube::{Cluster, KubeError, MemoryCluster, ObjectRef};
use serde_json::{json, Value};
use serde_norway::Value as Yaml;

const GI: u64 = 1024 * 1024 * 1024;
const MI: u64 = 1024 * 1024;

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/clusters/{name}"))
}

fn cluster(name: &str) -> MemoryCluster {
    MemoryCluster::from_fixture(&fixture_dir(name)).unwrap()
}

/// When each fixture was "recorded": the tests' `now`.
fn recorded(name: &str) -> SystemTime {
    let seconds = match name {
        "kind" => 1_773_134_400,      // 2026-03-10T09:20:00Z
        "k3s" => 1_773_237_900,       // 2026-03-11T14:05:00Z
        "managed" => 1_773_315_000,   // 2026-03-12T11:30:00Z
        "too-small" => 1_773_420_300, // 2026-03-13T16:45:00Z
        other => panic!("no fixture {other}"),
    };
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn site_file() -> PathBuf {
    test_support::workspace_root().join("tests/fixtures/site/site.yaml")
}

/// The repository's site file over the chart's values.yaml, as the plan merges them, with
/// `edit` applied.
fn site_values(edit: impl FnOnce(&mut Yaml)) -> Yaml {
    let root = test_support::workspace_root();
    let read = |path: PathBuf| -> Yaml {
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let mut values = read(root.join("charts/messenger/values.yaml"));
    capacity::merge(&mut values, read(site_file()));
    edit(&mut values);
    values
}

fn set(values: &mut Yaml, key: &str, value: Yaml) {
    values
        .as_mapping_mut()
        .unwrap()
        .insert(Yaml::String(key.into()), value);
}

/// What `profile` requests on the site file, from `installer capacity --json`.
fn requests(profile: &str) -> ProfileRequests {
    let output = Command::new(test_support::bin("installer"))
        .args(["--json", "capacity", "--values"])
        .arg(site_file())
        .args(["--profile", profile, "--chart"])
        .arg(test_support::workspace_root().join("charts/messenger"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "installer capacity: {e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let checks = doc["reports"][0]["checks"].as_array().unwrap().clone();
    let check = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    let pod = |name: &str| {
        let c = check(name);
        let line = c["lines"][0].as_str().unwrap();
        PodRequest {
            workload: line.split(" (largest").next().unwrap().to_string(),
            amount: c["total"].as_u64().unwrap(),
        }
    };
    ProfileRequests {
        profile: profile.to_string(),
        cpu: check("cpu")["total"].as_u64().unwrap(),
        memory: check("memory")["total"].as_u64().unwrap(),
        largest_cpu: pod("pod cpu"),
        largest_memory: pod("pod memory"),
    }
}

fn site(profile: &str, edit: impl FnOnce(&mut Yaml)) -> PreflightSite {
    PreflightSite::from_values(&site_values(edit), requests(profile))
}

/// A site with `storage_class`, TURN on the two addresses of the site file.
fn site_with_class(profile: &str, storage_class: &str) -> PreflightSite {
    site(profile, |v| {
        set(v, "storageClass", Yaml::String(storage_class.into()))
    })
}

/// Every name resolves.
struct Resolves;

impl Resolver for Resolves {
    fn unavailable(&self) -> Option<String> {
        None
    }
    fn resolve(&self, _: &str) -> Result<Vec<IpAddr>, String> {
        Ok(vec!["10.20.0.100".parse().unwrap()])
    }
}

/// Names from a table; the rest fail as glibc says.
struct Table(BTreeMap<&'static str, Vec<&'static str>>);

impl Resolver for Table {
    fn unavailable(&self) -> Option<String> {
        None
    }
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        match self.0.get(name) {
            Some(addresses) => Ok(addresses.iter().map(|a| a.parse().unwrap()).collect()),
            None => Err("failed to lookup address information: Name or service not known".into()),
        }
    }
}

/// No resolver on this machine.
struct NoResolver;

impl Resolver for NoResolver {
    fn unavailable(&self) -> Option<String> {
        Some("this machine has no nameserver in /etc/resolv.conf".into())
    }
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        panic!("{name} resolved although no resolver is configured")
    }
}

fn run(cluster: &dyn Cluster, site: &PreflightSite, now: SystemTime) -> Report {
    preflight::check(cluster, site, now, &Resolves)
}

fn checks(report: &Report) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.check).collect()
}

fn problem<'a>(report: &'a Report, check: &str) -> &'a Finding {
    report
        .findings
        .iter()
        .find(|f| f.check == check)
        .unwrap_or_else(|| panic!("no {check} finding in\n{report}"))
}

fn mi(bytes: u64) -> String {
    if bytes.is_multiple_of(GI) {
        format!("{}Gi", bytes / GI)
    } else {
        format!("{}Mi", bytes / MI)
    }
}

const RESERVE: &str =
    "after the 10% reserve (at least 500m per node) for the cluster's DaemonSets and the operators";
const RESERVE_MEMORY: &str =
    "after the 10% reserve (at least 1Gi per node) for the cluster's DaemonSets and the operators";
const TURN_NEEDS: &str = "coturn runs on nodes labelled messenger.example.test/turn=true \
     (turn.nodeSelector); it needs 2 (one per turn.externalIPs address: 10.20.0.11, 10.20.0.12)";

#[test]
fn fixtures_load_as_the_api_lists_them() {
    let kind = cluster("kind");
    assert_eq!(kind.server_version().unwrap(), "v1.33.1");
    assert_eq!(kind.list("Node", None).unwrap().len(), 1);
    assert_eq!(kind.list("StorageClass", None).unwrap().len(), 1);
    assert_eq!(
        kind.list("Lease", Some("kube-node-lease")).unwrap().len(),
        1
    );
    let k3s = cluster("k3s");
    assert_eq!(k3s.server_version().unwrap(), "v1.32.6+k3s1");
    assert_eq!(k3s.list("Node", None).unwrap().len(), 3);
    let managed = cluster("managed");
    assert_eq!(managed.server_version().unwrap(), "v1.33.4-eks-e386d34");
    let gp3 = managed
        .get(&ObjectRef::parse("StorageClass/gp3").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(gp3["allowVolumeExpansion"], true);
    let small = cluster("too-small");
    assert_eq!(small.server_version().unwrap(), "v1.34.1");
    assert!(small
        .list("Lease", Some("kube-node-lease"))
        .unwrap()
        .is_empty());
    small.set_server_version("v1.35.0");
    assert_eq!(small.server_version().unwrap(), "v1.35.0");
    // A directory without version.json is refused, naming the file.
    let empty = tempfile::tempdir().unwrap();
    let Err(e) = MemoryCluster::from_fixture(empty.path()) else {
        panic!("an empty fixture loaded");
    };
    assert!(e.to_string().contains("version.json"), "{e}");
}

#[test]
fn the_site_file_gives_class_selections_and_names() {
    let s = site("1k", |_| {});
    assert_eq!(s.storage_class.as_deref(), Some("local-ssd"));
    assert_eq!(s.selections.len(), 1);
    let turn = &s.selections[0];
    assert_eq!(turn.part, "coturn");
    assert_eq!(turn.labels["messenger.example.test/turn"], "true");
    assert_eq!(turn.addresses, ["10.20.0.11", "10.20.0.12"]);
    assert_eq!(turn.needed, 2);
    let names: Vec<&str> = s.dns_names.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "example.test",
            "matrix.example.test",
            "chat.example.test",
            "admin.example.test",
            "turn.example.test"
        ]
    );
    // TURN off: no selection, no TURN name; calls on: LiveKit's selection.
    let s = site("100", |v| {
        set(v, "storageClass", Yaml::String(String::new()));
        set(
            v,
            "turn",
            serde_norway::from_str("{enabled: false, nodeSelector: {}}").unwrap(),
        );
        set(
            v,
            "calls",
            serde_norway::from_str(
                "{enabled: true, nodeSelector: {messenger.example.test/calls: \"true\"}}",
            )
            .unwrap(),
        );
    });
    assert_eq!(s.storage_class, None);
    assert_eq!(s.selections.len(), 1);
    assert_eq!(s.selections[0].part, "LiveKit");
    assert_eq!(s.selections[0].needed, 1);
    assert!(!s.dns_names.iter().any(|d| d.name.starts_with("turn.")));
    // The group-call host resolves to the Gateway, only when calls are on.
    assert!(s.dns_names.iter().any(|d| d.name == "rtc.example.test"));
    assert!(!site("100", |_| {})
        .dns_names
        .iter()
        .any(|d| d.name.starts_with("rtc.")));
}

#[test]
fn kind_has_no_volume_expansion_no_turn_node_and_no_room_for_100_or_1k() {
    let kind = cluster("kind");
    let now = recorded("kind");
    let report = run(&kind, &site_with_class("100", "standard"), now);
    // Profile 100 with antivirus (two clamd pods of 2Gi) no longer fits kind's one 16 GB node.
    assert_eq!(
        checks(&report),
        ["storage class", "memory", "node labels"],
        "{report}"
    );
    assert_eq!(
        report.findings[0].problem,
        "StorageClass standard (rancher.io/local-path) does not allow volume expansion \
         (allowVolumeExpansion is not true): the PostgreSQL, media, Valkey and Garage volumes \
         cannot grow after the install"
    );
    assert!(report.findings[0]
        .fix
        .contains("kubectl patch storageclass standard"));
    assert_eq!(
        report.findings[2].problem,
        format!("{TURN_NEEDS}, and no node has the label messenger.example.test/turn=true")
    );
    // kind's node has none of the TURN addresses: no node to propose.
    assert_eq!(
        report.findings[2].fix,
        "label 2 more node(s) whose addresses are 10.20.0.11, 10.20.0.12: \
         `kubectl label node NODE messenger.example.test/turn=true`"
    );
    assert!(report.skipped.is_empty(), "{report}");

    let r = requests("1k");
    let report = run(&kind, &site_with_class("1k", "standard"), now);
    assert_eq!(
        checks(&report),
        ["storage class", "cpu", "memory", "node labels"],
        "{report}"
    );
    // 8 CPU less 10%; 16283428Ki = 15901Mi, less 1591Mi.
    assert_eq!(
        problem(&report, "cpu").problem,
        format!(
            "profile 1k requests {}m cpu in all; the 1 usable node(s) (kind-control-plane) \
             allocate 8000m, 7200m {RESERVE}: {}m short",
            r.cpu,
            r.cpu - 7200
        )
    );
    let usable = 16_283_428 * 1024 - 1591 * MI;
    assert_eq!(
        problem(&report, "memory").problem,
        format!(
            "profile 1k requests {} memory in all; the 1 usable node(s) (kind-control-plane) \
             allocate 15901Mi, {} {RESERVE_MEMORY}: {} short",
            mi(r.memory),
            mi(usable),
            mi(r.memory - usable)
        )
    );
}

#[test]
fn k3s_is_too_old_its_default_class_is_proposed_and_a_fast_clock_named() {
    let k3s = cluster("k3s");
    let s = site("1k", |v| {
        set(v, "storageClass", Yaml::String(String::new()))
    });
    let report = run(&k3s, &s, recorded("k3s"));
    // Every finding at once: version, class, expansion, clock; the agents are labelled.
    assert_eq!(
        checks(&report),
        ["version", "storage class", "storage class", "clock"],
        "{report}"
    );
    assert_eq!(
        report.findings[0].problem,
        "the API server runs Kubernetes v1.32.6+k3s1; this bundle supports 1.33 to 1.34 (the \
         versions cert-manager 1.21, Envoy Gateway 1.9 and CloudNativePG 1.28 all support)"
    );
    assert_eq!(
        report.findings[1].problem,
        "the site file names no storageClass; the cluster's default StorageClass is \
         local-path (default, rancher.io/local-path)"
    );
    assert_eq!(
        report.findings[1].fix,
        "set `storageClass: local-path` in the site file (every volume of the stack uses it)"
    );
    assert!(report.findings[2].problem.starts_with(
        "StorageClass local-path (rancher.io/local-path) does not allow volume expansion"
    ));
    // Its Lease was renewed at 14:11:14.03 on its clock, at most 14:05:00 on ours.
    assert_eq!(
        report.findings[3].problem,
        "node k3s-agent-2's clock is at least 6m14s ahead of this machine's \
         (2026-03-11T14:05:00Z): its Lease kube-node-lease/k3s-agent-2 was renewed at \
         2026-03-11T14:11:14.030517Z"
    );
    assert!(report.findings[3].fix.contains("chronyc tracking"));
}

#[test]
fn the_managed_cluster_fits_1k_not_5k_or_10k() {
    let managed = cluster("managed");
    let now = recorded("managed");
    let report = run(&managed, &site_with_class("1k", "gp3"), now);
    assert!(report.ok(), "{report}");
    assert!(report.skipped.is_empty(), "{report}");
    assert!(report.problems().is_empty());

    // 5k's memory exceeds what the reserve leaves of the nodes' allocatable memory.
    let r = requests("5k");
    let usable = 3 * (31_369_320 * 1024 - 3064 * MI);
    assert!(r.memory > usable, "{r:?}");
    let report = run(&managed, &site_with_class("5k", "gp3"), now);
    assert_eq!(checks(&report), ["cpu", "memory"], "{report}");
    assert!(
        problem(&report, "memory").problem.ends_with(&format!(
            "allocate 91902Mi, {} {RESERVE_MEMORY}: {} short",
            mi(usable),
            mi(r.memory - usable)
        )),
        "{report}"
    );

    let r = requests("10k");
    let report = run(&managed, &site_with_class("10k", "gp3"), now);
    assert_eq!(
        checks(&report),
        ["cpu", "memory", "pod cpu", "pod memory"],
        "{report}"
    );
    let nodes = "ip-10-20-0-11.eu-central-1.compute.internal, \
                 ip-10-20-0-12.eu-central-1.compute.internal, \
                 ip-10-20-0-13.eu-central-1.compute.internal";
    // 3 × (7910m − 791m).
    assert_eq!(
        problem(&report, "cpu").problem,
        format!(
            "profile 10k requests {}m cpu in all; the 3 usable node(s) ({nodes}) allocate \
             23730m, 21357m {RESERVE}: {}m short",
            r.cpu,
            r.cpu - 21_357
        )
    );
    // 31369320Ki = 30634Mi, less 3064Mi, on one node.
    let usable = 31_369_320 * 1024 - 3064 * MI;
    assert_eq!(
        problem(&report, "pod memory").problem,
        format!(
            "a {} pod of profile 10k requests {} memory; the largest usable node, \
             ip-10-20-0-11.eu-central-1.compute.internal, has {} after the reserve: the pod \
             can never be scheduled",
            r.largest_memory.workload,
            mi(r.largest_memory.amount),
            mi(usable)
        )
    );
    assert_eq!(
        problem(&report, "pod cpu").problem,
        format!(
            "a {} pod of profile 10k requests {}m CPU; the largest usable node, \
             ip-10-20-0-11.eu-central-1.compute.internal, has 7119m after the reserve: the \
             pod can never be scheduled",
            r.largest_cpu.workload, r.largest_cpu.amount
        )
    );
}

#[test]
fn the_too_small_cluster_names_the_numbers_and_the_node_to_label() {
    let small = cluster("too-small");
    let now = recorded("too-small");
    let r = requests("100");
    let report = run(&small, &site_with_class("100", "nfs-client"), now);
    assert_eq!(
        checks(&report),
        ["cpu", "memory", "node labels"],
        "{report}"
    );
    let excluded =
        "; not counted: small-cp (taint node-role.kubernetes.io/control-plane:NoSchedule)";
    assert_eq!(
        report.findings[0].problem,
        format!(
            "profile 100 requests {}m cpu in all; the 1 usable node(s) (small-worker) \
             allocate 2000m, 1500m {RESERVE}: {}m short{excluded}",
            r.cpu,
            r.cpu - 1500
        )
    );
    // 3913052Ki = 3821Mi (and 4Ki), less the 1Gi minimum.
    let usable = 3_913_052 * 1024 - 1024 * MI;
    assert_eq!(
        report.findings[1].problem,
        format!(
            "profile 100 requests {} memory in all; the 1 usable node(s) (small-worker) \
             allocate 3821Mi, {} {RESERVE_MEMORY}: {} short{excluded}",
            mi(r.memory),
            mi(usable),
            mi(r.memory - usable)
        )
    );
    assert_eq!(
        report.findings[2].problem,
        format!("{TURN_NEEDS}, and no node has the label messenger.example.test/turn=true")
    );
    // The worker has one of the TURN addresses: the fix says which node to label.
    assert_eq!(
        report.findings[2].fix,
        "label the nodes that have the turn.externalIPs addresses: \
         `kubectl label node small-worker messenger.example.test/turn=true`"
    );
    // No Leases here: the heartbeat times were compared, and agree.
    assert!(report.skipped.is_empty(), "{report}");

    // 1k: the largest pods do not fit the worker either.
    let r = requests("1k");
    let report = run(&small, &site_with_class("1k", "nfs-client"), now);
    assert_eq!(
        checks(&report),
        ["cpu", "memory", "pod cpu", "pod memory", "node labels"],
        "{report}"
    );
    assert_eq!(
        problem(&report, "pod cpu").problem,
        format!(
            "a {} pod of profile 1k requests {}m CPU; the largest usable node, small-worker, \
             has 1500m after the reserve: the pod can never be scheduled",
            r.largest_cpu.workload, r.largest_cpu.amount
        )
    );
}

#[test]
fn everything_wrong_at_once_is_reported_at_once() {
    // The site file as it is (local-ssd), the 1k profile, a skewed clock and missing names
    // on the too-small cluster: one finding per problem, in check order.
    let small = cluster("too-small");
    let resolver = Table(BTreeMap::from([
        ("example.test", vec!["10.20.0.100"]),
        ("matrix.example.test", vec!["10.20.0.100"]),
        ("chat.example.test", vec!["10.20.0.100"]),
    ]));
    let now = recorded("too-small") + Duration::from_secs(600);
    let report = preflight::check(&small, &site("1k", |_| {}), now, &resolver);
    assert_eq!(
        checks(&report),
        [
            "storage class",
            "cpu",
            "memory",
            "pod cpu",
            "pod memory",
            "node labels",
            "clock",
            "dns",
            "dns"
        ],
        "{report}"
    );
    assert_eq!(
        report.findings[0].problem,
        "StorageClass local-ssd (site storageClass) does not exist; the cluster has: \
         nfs-client (default, cluster.local/nfs-subdir-external-provisioner)"
    );
    assert!(report.findings[0].fix.contains("its default is nfs-client"));
    assert_eq!(report.problems().len(), 9);
    assert!(report.problems()[0].starts_with("storage class: StorageClass local-ssd"));
    assert!(report.problems()[0].contains("\n    fix: set storageClass"));
}

/// A cluster whose API does not answer.
struct Down;

impl Cluster for Down {
    fn server_version(&self) -> Result<String, KubeError> {
        Err(KubeError::Request {
            what: "kubectl version".into(),
            server: "https://10.20.0.10:6443".into(),
            message: "dial tcp 10.20.0.10:6443: connect: connection refused".into(),
        })
    }
    fn get(&self, _: &ObjectRef) -> Result<Option<Value>, KubeError> {
        panic!("asked for an object after the API did not answer")
    }
    fn list(&self, kind: &str, _: Option<&str>) -> Result<Vec<Value>, KubeError> {
        panic!("listed {kind} after the API did not answer")
    }
    fn apply(&self, _: &str) -> Result<(), KubeError> {
        panic!("the preflight applied something")
    }
    fn events(&self, _: &ObjectRef) -> Result<Vec<String>, KubeError> {
        panic!("events")
    }
    fn release_revision(&self, _: &str, _: &str) -> Result<Option<u32>, KubeError> {
        panic!("release")
    }
    fn install_release(&self, _: &ReleaseInput, _: &str) -> Result<u32, KubeError> {
        panic!("the preflight installed something")
    }
    fn rollback_release(&self, _: &str, _: &str, _: u32) -> Result<(), KubeError> {
        panic!("the preflight rolled something back")
    }
}

#[test]
fn an_api_that_does_not_answer_is_one_finding() {
    let report = run(&Down, &site("1k", |_| {}), recorded("managed"));
    assert_eq!(
        report.findings,
        [Finding {
            check: "api",
            problem: "the Kubernetes API does not answer: kubectl version at \
                      https://10.20.0.10:6443 failed: dial tcp 10.20.0.10:6443: connect: \
                      connection refused"
                .into(),
            fix: "check that the kubeconfig the installer uses (KUBECONFIG, --kubeconfig) names \
                  this cluster's API server and valid credentials, and that this machine \
                  reaches its address and port (6443 by default); `kubectl get --raw /version` \
                  shows the same error"
                .into(),
        }]
    );
    let skipped: Vec<&str> = report.skipped.iter().map(|s| s.check).collect();
    assert_eq!(skipped, ["storage class", "nodes", "node labels", "clock"]);
}

#[test]
fn versions_outside_the_range_are_one_finding_each() {
    let managed = cluster("managed");
    let s = site_with_class("1k", "gp3");
    let now = recorded("managed");
    for (version, fix) in [
        (
            "v1.35.2",
            "deploy a newer bundle whose charts support this version, or use a cluster at 1.34 \
             or older",
        ),
        (
            "v1.29.15-eks-0b1c2d3",
            "upgrade the cluster to 1.33 (one minor version at a time, as the distribution \
             documents), or deploy a bundle built for 1.29",
        ),
    ] {
        managed.set_server_version(version);
        let report = run(&managed, &s, now);
        assert_eq!(checks(&report), ["version"], "{report}");
        assert!(report.findings[0].problem.contains(version), "{report}");
        assert_eq!(report.findings[0].fix, fix);
    }
    for version in ["v1.33.0", "v1.34.7"] {
        managed.set_server_version(version);
        assert!(run(&managed, &s, now).ok(), "{version}");
    }
}

#[test]
fn clock_skew_is_found_both_ways_and_blamed_on_this_machine_when_every_node_agrees() {
    let managed = cluster("managed");
    let s = site_with_class("1k", "gp3");
    let base = recorded("managed");
    // Ten minutes ahead: the newest Lease (11:29:57.30) is 10m2s old, 40 s is the most.
    let report = run(&managed, &s, base + Duration::from_secs(600));
    assert_eq!(checks(&report), ["clock"], "{report}");
    assert!(
        report.findings[0].problem.starts_with(
            "this machine's clock (2026-03-12T11:40:00Z) is at least 9m22s ahead of every \
             node's (3 nodes; "
        ),
        "{report}"
    );
    assert!(report.findings[0].fix.contains("this machine's clock"));
    // Five minutes behind: every Lease is renewed in this machine's future.
    let report = run(&managed, &s, base - Duration::from_secs(300));
    assert_eq!(checks(&report), ["clock"], "{report}");
    assert!(
        report.findings[0].problem.starts_with(
            "this machine's clock (2026-03-12T11:25:00Z) is at least 4m52s behind every \
             node's"
        ),
        "{report}"
    );
    // Within the tolerance: nothing.
    assert!(run(&managed, &s, base + Duration::from_secs(90)).ok());
    assert!(run(&managed, &s, base - Duration::from_secs(90)).ok());

    // One node: it is named, not this machine.
    let kind = cluster("kind");
    let report = run(
        &kind,
        &site_with_class("100", "standard"),
        recorded("kind") + Duration::from_secs(600),
    );
    assert_eq!(
        problem(&report, "clock").problem,
        "node kind-control-plane's clock is at least 9m24s behind this machine's \
         (2026-03-10T09:30:00Z): its Lease kube-node-lease/kind-control-plane was renewed at \
         2026-03-10T09:19:55.412345Z, at most 40s ago on a healthy node"
    );

    // Without Leases the heartbeat may be 5 minutes old: 3 minutes later is no finding,
    // 10 minutes later is.
    let small = cluster("too-small");
    let s = site_with_class("100", "nfs-client");
    let report = run(&small, &s, recorded("too-small") + Duration::from_secs(180));
    assert!(!checks(&report).contains(&"clock"), "{report}");
    let report = run(&small, &s, recorded("too-small") + Duration::from_secs(600));
    let clock = problem(&report, "clock");
    // small-cp's heartbeat 16:43:10 is 11m50s old, 5 minutes of it explained.
    assert!(
        clock.problem.starts_with(
            "this machine's clock (2026-03-13T16:55:00Z) is at least 6m50s ahead of every \
             node's (2 nodes; "
        ),
        "{report}"
    );
    assert!(clock
        .problem
        .contains("its Ready condition's lastHeartbeatTime is 2026-03-13T16:41:57Z"));
}

#[test]
fn dns_names_are_checked_through_the_injected_resolver() {
    let managed = cluster("managed");
    let s = site_with_class("1k", "gp3");
    let now = recorded("managed");
    let resolver = Table(BTreeMap::from([
        ("example.test", vec!["10.20.0.100"]),
        ("matrix.example.test", vec!["10.20.0.100"]),
        ("chat.example.test", vec!["10.20.0.100", "fd00::100"]),
        ("turn.example.test", vec![]),
    ]));
    let report = preflight::check(&managed, &s, now, &resolver);
    assert_eq!(
        report.findings,
        [
            Finding {
                check: "dns",
                problem: "admin.example.test does not resolve: failed to lookup address \
                          information: Name or service not known"
                    .into(),
                fix: "add an A (or AAAA) record for admin.example.test to the site's DNS, \
                      pointing at the Gateway's address; the users' devices and this machine \
                      must resolve it"
                    .into(),
            },
            Finding {
                check: "dns",
                problem: "turn.example.test resolves to no address".into(),
                fix: "add an A (or AAAA) record for turn.example.test to the site's DNS, \
                      pointing at the TURN nodes' addresses (turn.externalIPs); the users' \
                      devices and this machine must resolve it"
                    .into(),
            },
        ]
    );
    // No resolver on this machine: skipped, not failed.
    let report = preflight::check(&managed, &s, now, &NoResolver);
    assert!(report.ok(), "{report}");
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].check, "dns");
    assert!(report
        .to_string()
        .contains("dns: not checked: this machine has no nameserver"));
}

#[test]
fn label_patches_name_the_nodes_with_the_selections_addresses() {
    let nodes = |name: &str| cluster(name).list("Node", None).unwrap();
    let turn = site("1k", |_| {}).selections.remove(0);
    let patches = label_patches(&nodes("too-small"), &turn);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].node, "small-worker");
    assert_eq!(
        patches[0].patch,
        json!({"metadata": {"labels": {"messenger.example.test/turn": "true"}}})
    );
    assert_eq!(
        patches[0].to_string(),
        "kubectl label node small-worker messenger.example.test/turn=true"
    );
    // Labelled already, or no node with those addresses: nothing to do.
    assert!(label_patches(&nodes("k3s"), &turn).is_empty());
    assert!(label_patches(&nodes("kind"), &turn).is_empty());
    // A third address on the managed cluster: its unlabelled node.
    let mut wider = turn.clone();
    wider.addresses.push("10.20.0.13".into());
    let patches = label_patches(&nodes("managed"), &wider);
    let named: Vec<&str> = patches.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(named, ["ip-10-20-0-13.eu-central-1.compute.internal"]);
}

#[test]
fn label_nodes_applies_the_patches_and_the_label_finding_goes() {
    let cluster = cluster("too-small");
    let site = site("100", |_| {});
    let now = recorded("too-small");
    let before = run(&cluster, &site, now);
    assert!(checks(&before).contains(&"node labels"), "{before}");
    let done = label_nodes(&cluster, &site).unwrap();
    let named: Vec<&str> = done.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(named, ["small-worker"]);
    // Only the labels changed: the node keeps its status (allocatable, conditions).
    let node = cluster
        .get(&ObjectRef::parse("Node/small-worker").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        node["metadata"]["labels"]["messenger.example.test/turn"],
        "true"
    );
    assert!(node["status"]["allocatable"]["cpu"].is_string(), "{node}");
    // The one node with a TURN address now counts; the second address has no node at all,
    // which labelling cannot fix, so the finding stays, one node shorter.
    let before_labels = &problem(&before, "node labels").problem;
    assert!(
        before_labels.contains("no node has the label"),
        "{before_labels}"
    );
    let after = run(&cluster, &site, now);
    let after_labels = &problem(&after, "node labels").problem;
    assert!(
        after_labels.contains("1 usable node(s) have the label (small-worker)"),
        "{after_labels}"
    );
    assert_eq!(checks(&before), checks(&after));
    // A second run has nothing left to label.
    assert!(label_nodes(&cluster, &site).unwrap().is_empty());
}

#[test]
fn behind_nat_the_turn_nodes_are_found_by_their_own_addresses() {
    let site = site("100", |v| {
        let turn = v.get_mut("turn").unwrap();
        set(
            turn,
            "externalIPs",
            serde_norway::from_str("[198.51.100.1]").unwrap(),
        );
        set(
            turn,
            "nodeIPs",
            serde_norway::from_str("[10.20.0.12]").unwrap(),
        );
    });
    let turn = &site.selections[0];
    assert_eq!(turn.address_field, "turn.nodeIPs");
    assert_eq!(turn.addresses, ["10.20.0.12"]);
    let nodes = cluster("too-small").list("Node", None).unwrap();
    let patches = label_patches(&nodes, turn);
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0].node, "small-worker");
}
