//! The capacity check on the real chart: every profile against the example site, sites and
//! profiles that do not fit, the printed arithmetic adding up, and the values-derived sums
//! equal to what `helm template` renders (needs `helm` on PATH).

use std::path::{Path, PathBuf};
use std::process::Command;

use capacity::{
    parse_cpu, parse_memory, CapacityError, Check, Report, HEADROOM_PERCENT,
    MIN_SYSTEM_RESERVE_CPU, MIN_SYSTEM_RESERVE_MIB, SHUTDOWN_MANAGER_CPU, SHUTDOWN_MANAGER_MIB,
    SYSTEM_RESERVE_PERCENT,
};
use serde_norway::Value;

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
const MI: u64 = 1024 * 1024;

fn chart() -> PathBuf {
    test_support::workspace_root().join("charts/messenger")
}

fn site_file() -> PathBuf {
    test_support::workspace_root().join("tests/fixtures/site/site.yaml")
}

fn read_yaml(path: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_yaml(path: &Path, value: &Value) {
    std::fs::write(path, serde_norway::to_string(value).unwrap()).unwrap();
}

/// The example site with `edit` applied, written into `dir`.
fn site_with(dir: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let mut site = read_yaml(&site_file());
    edit(&mut site);
    let path = dir.join("site.yaml");
    write_yaml(&path, &site);
    path
}

/// A copy of the chart's values and profiles in `dir`, with `edit` applied to one profile.
fn chart_with(dir: &Path, profile: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let copy = dir.join("chart");
    std::fs::create_dir_all(copy.join("profiles")).unwrap();
    std::fs::copy(chart().join("values.yaml"), copy.join("values.yaml")).unwrap();
    for name in PROFILES {
        let file = format!("profiles/{name}.yaml");
        std::fs::copy(chart().join(&file), copy.join(&file)).unwrap();
    }
    let file = copy.join(format!("profiles/{profile}.yaml"));
    let mut values = read_yaml(&file);
    edit(&mut values);
    write_yaml(&file, &values);
    copy
}

fn check<'a>(report: &'a Report, name: &str) -> &'a Check {
    report.checks.iter().find(|c| c.name == name).unwrap()
}

fn failing(report: &Report) -> Vec<&str> {
    report.failures().map(|c| c.name).collect()
}

#[test]
fn profiles_are_listed_smallest_first() {
    assert_eq!(capacity::profiles(&chart()).unwrap(), PROFILES);
}

/// Every profile fits the example site (6 nodes of 16 CPU and 64 GiB), the largest pod of
/// each on one node.
#[test]
fn every_profile_fits_the_example_site() {
    let reports = capacity::check_all_profiles(&chart(), &site_file()).unwrap();
    let names: Vec<&str> = reports.iter().map(|r| r.profile.as_str()).collect();
    assert_eq!(names, PROFILES);
    for report in &reports {
        assert!(report.ok(), "{report}");
    }
}

#[test]
fn the_site_profile_is_the_default_and_unknown_profiles_are_refused() {
    let report = capacity::check(&chart(), &site_file(), None).unwrap();
    assert_eq!(report.profile, "1k");
    let error = capacity::check(&chart(), &site_file(), Some("../values")).unwrap_err();
    assert!(matches!(error, CapacityError::UnknownProfile { .. }));
    assert!(error.to_string().contains("have: 100, 1k, 5k, 10k, 20k"));
}

#[test]
fn a_site_with_too_few_small_nodes_fails_on_cpu_and_memory_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let small = site_with(dir.path(), |site| {
        site["nodes"] = serde_norway::from_str("{count: 2, cpu: 4, memoryGiB: 8}").unwrap();
    });
    let report = capacity::check(&chart(), &small, Some("1k")).unwrap();
    assert_eq!(failing(&report), ["cpu", "memory"], "{report}");

    // 10% of a 4-CPU, 8-GiB node is below the minimum reserve, so the minimum applies.
    const { assert!(4000 * SYSTEM_RESERVE_PERCENT / 100 < MIN_SYSTEM_RESERVE_CPU) };
    let cpu = check(&report, "cpu");
    assert_eq!(cpu.limit, 2 * (4000 - MIN_SYSTEM_RESERVE_CPU));
    assert_eq!(cpu.total, 13_310);
    assert!(cpu.verdict().starts_with(
        "2 nodes × (4000m - 500m system reserve) = 7000m < 13310m total: FAIL (largest: postgres 6000m"
    ));
    let memory = check(&report, "memory");
    assert_eq!(memory.limit, 2 * (8192 - MIN_SYSTEM_RESERVE_MIB) * MI);
    assert!(memory.total > memory.limit);
    assert!(
        memory
            .verdict()
            .starts_with("2 nodes × (8Gi - 1Gi system reserve) = 14Gi < 31840Mi total: FAIL"),
        "{}",
        memory.verdict()
    );
}

#[test]
fn more_worker_replicas_than_postgres_allows_fail_naming_the_pools() {
    let dir = tempfile::tempdir().unwrap();
    let chart = chart_with(dir.path(), "1k", |profile| {
        profile["synapse"]["workers"]["synchrotron"]["replicas"] = Value::from(30);
    });
    let report = capacity::check(&chart, &site_file(), Some("1k")).unwrap();
    assert_eq!(failing(&report), ["connections"], "{report}");
    let connections = check(&report, "connections");
    assert!(connections
        .lines
        .contains(&"synapse synchrotron: 30 × cp_max 10 = 300".to_string()));
    // 1k as shipped needs 125; 28 more synchrotrons of cp_max 10 add 280.
    assert_eq!(connections.total, 125 + 280);
    assert_eq!(connections.limit, 300 * HEADROOM_PERCENT / 100 - 20);
    assert_eq!(
        connections.verdict(),
        "max_connections 300 × 80% headroom = 240 - 20 reserved (sizing.postgresReserve) = 220 \
         < 405 total: FAIL (largest: synapse synchrotron 300, synapse client-reader 20, \
         synapse main 10)"
    );
}

#[test]
fn a_quantity_kubernetes_would_refuse_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let chart = chart_with(dir.path(), "5k", |profile| {
        profile["postgres"]["resources"]["requests"]["memory"] = Value::from("16GB");
    });
    let error = capacity::check(&chart, &site_file(), Some("5k")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "profile 5k: postgres.resources.requests.memory = `16GB` is not a Kubernetes memory quantity"
    );
}

#[test]
fn a_site_without_nodes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_with(dir.path(), |site| {
        site.as_mapping_mut().unwrap().remove("nodes");
    });
    let error = capacity::check(&chart(), &site, None).unwrap_err();
    assert!(matches!(error, CapacityError::NoNodes { .. }), "{error}");
}

/// The Envoy proxies Envoy Gateway starts from the chart's EnvoyProxy count with
/// `gateway.envoy.manage`: replicas × (gateway.envoy.resources + the shutdown-manager sidecar's
/// 10m and 32Mi), in the totals and among the pods the largest-pod checks weigh; with
/// `manage: false` (the site's own GatewayClass) they drop out, and nothing else changes.
#[test]
fn the_envoy_proxies_count_only_when_the_chart_manages_them() {
    assert_eq!((SHUTDOWN_MANAGER_CPU, SHUTDOWN_MANAGER_MIB), (10, 32));
    let dir = tempfile::tempdir().unwrap();
    // 1k: 2 proxies of 200m and 256Mi, each with the 10m and 32Mi sidecar.
    let managed = capacity::check(&chart(), &site_file(), Some("1k")).unwrap();
    assert!(check(&managed, "cpu")
        .lines
        .contains(&"envoy proxy: 2 × 210m = 420m".to_string()));
    assert!(check(&managed, "memory")
        .lines
        .contains(&"envoy proxy: 2 × 288Mi = 576Mi".to_string()));
    assert!(check(&managed, "cpu").lines.contains(
        &"note: envoy proxy: 210m each = 200m for its own container + 10m for the \
          shutdown-manager sidecar (Envoy Gateway's default request)"
            .to_string()
    ));
    assert!(check(&managed, "memory").lines.contains(
        &"note: envoy proxy: 288Mi each = 256Mi for its own container + 32Mi for the \
          shutdown-manager sidecar (Envoy Gateway's default request)"
            .to_string()
    ));

    let unmanaged_site = site_with(dir.path(), |site| {
        site["gateway"]["envoy"] = serde_norway::from_str("{manage: false}").unwrap();
    });
    for profile in PROFILES {
        let on = capacity::check(&chart(), &site_file(), Some(profile)).unwrap();
        let off = capacity::check(&chart(), &unmanaged_site, Some(profile)).unwrap();
        let values = read_yaml(&chart().join(format!("profiles/{profile}.yaml")));
        let envoy = &values["gateway"]["envoy"];
        let replicas = envoy["replicas"].as_u64().unwrap();
        let requests = &envoy["resources"]["requests"];
        let cpu = parse_cpu(&scalar(&requests["cpu"])).unwrap() + SHUTDOWN_MANAGER_CPU;
        let memory =
            parse_memory(&scalar(&requests["memory"])).unwrap() + SHUTDOWN_MANAGER_MIB * MI;
        assert_eq!(
            check(&on, "cpu").total - check(&off, "cpu").total,
            replicas * cpu,
            "{profile}"
        );
        assert_eq!(
            check(&on, "memory").total - check(&off, "memory").total,
            replicas * memory,
            "{profile}"
        );
        for name in ["cpu", "memory"] {
            let lines = &check(&off, name).lines;
            assert!(!lines.iter().any(|l| l.starts_with("envoy proxy")), "{off}");
            assert!(
                lines.contains(
                    &"note: not counted: the Envoy proxies (gateway.envoy.manage is false: \
                      the site's own GatewayClass sizes them)"
                        .to_string()
                ),
                "{off}"
            );
        }
        // The same through `requests`, which the installer's preflight reads.
        let r_on = capacity::requests(&chart(), &site_file(), Some(profile)).unwrap();
        let r_off = capacity::requests(&chart(), &unmanaged_site, Some(profile)).unwrap();
        assert_eq!(r_on.pods - r_off.pods, replicas, "{profile}");
        assert_eq!(r_on.cpu - r_off.cpu, replicas * cpu, "{profile}");
        assert_eq!(r_on.memory - r_off.memory, replicas * memory, "{profile}");
    }

    // The proxy pod is weighed as one pod (both containers) in the largest-pod checks: a
    // profile whose envoy asks more than PostgreSQL makes it the largest pod.
    let chart = chart_with(dir.path(), "100", |profile| {
        profile["gateway"]["envoy"]["resources"]["requests"] =
            serde_norway::from_str("{cpu: 1500m, memory: 2Gi}").unwrap();
    });
    let report = capacity::check(&chart, &site_file(), Some("100")).unwrap();
    assert_eq!(
        check(&report, "pod cpu").lines[0],
        "envoy proxy (largest cpu request): 1 × 1510m = 1510m"
    );
    assert_eq!(
        check(&report, "pod memory").lines[0],
        "envoy proxy (largest memory request): 1 × 2080Mi = 2080Mi"
    );
    let small = site_with(dir.path(), |site| {
        site["nodes"] = serde_norway::from_str("{count: 12, cpu: 2, memoryGiB: 3}").unwrap();
    });
    let report = capacity::check(&chart, &small, Some("100")).unwrap();
    // One 2-CPU, 3-GiB node leaves 1500m and 2Gi: the proxy's container alone would fit.
    assert_eq!(failing(&report), ["pod cpu", "pod memory"], "{report}");
    let requests = capacity::requests(&chart, &site_file(), Some("100")).unwrap();
    assert_eq!(requests.largest_cpu.workload, "envoy proxy");
    assert_eq!(requests.largest_memory.amount, 2080 * MI);
}

/// Parses `label: N × [what ]Q = P` with `parse`, checks N × Q = P and returns P.
fn term_product(line: &str, parse: fn(&str) -> Option<u64>) -> u64 {
    let (_, arithmetic) = line.split_once(": ").unwrap();
    let (count, rest) = arithmetic.split_once(" × ").unwrap();
    let (each, product) = rest.split_once(" = ").unwrap();
    let each = parse(each.rsplit(' ').next().unwrap()).unwrap();
    let product = parse(product).unwrap();
    assert_eq!(count.parse::<u64>().unwrap() * each, product, "{line}");
    product
}

#[test]
fn the_printed_arithmetic_adds_up_to_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let small = site_with(dir.path(), |site| {
        site["nodes"] = serde_norway::from_str("{count: 3, cpu: 8, memoryGiB: 24}").unwrap();
    });
    for site in [site_file(), small] {
        for report in capacity::check_all_profiles(&chart(), &site).unwrap() {
            for check in &report.checks {
                let parse: fn(&str) -> Option<u64> = match check.name {
                    "connections" => |s| s.parse().ok(),
                    "cpu" | "pod cpu" => parse_cpu,
                    _ => parse_memory,
                };
                let total_at = check
                    .lines
                    .iter()
                    .position(|l| l.starts_with("total: "))
                    .unwrap();
                let sum: u64 = check.lines[..total_at]
                    .iter()
                    .map(|line| term_product(line, parse))
                    .sum();
                let printed = parse(&check.lines[total_at]["total: ".len()..]).unwrap();
                assert_eq!((sum, printed), (check.total, check.total), "{report}");
                // The verdict: `... = LIMIT ≥|< TOTAL total: ok|FAIL`.
                let verdict = check.verdict();
                let (_, compared) = verdict.rsplit_once(" = ").unwrap();
                let words: Vec<&str> = compared.split(' ').collect();
                assert_eq!(parse(words[0]), Some(check.limit), "{verdict}");
                assert_eq!(parse(words[2]), Some(check.total), "{verdict}");
                let expected = if check.ok {
                    ["≥", "ok"]
                } else {
                    ["<", "FAIL"]
                };
                assert_eq!([words[1], words[4]], expected, "{verdict}");
                assert_eq!(check.ok, check.total <= check.limit);
            }
        }
    }
}

/// What `helm template` makes of a site and profile: CPU and memory requests of every pod that
/// keeps running, and PgBouncer's server pool.
#[derive(Debug, PartialEq)]
struct Rendered {
    cpu: u64,
    memory: u64,
    pooler_connections: u64,
}

/// A pod's requests as the scheduler counts them: the containers' sum, or the largest init
/// container if that is more.
fn pod_requests(spec: &Value) -> (u64, u64) {
    let requests = |key: &str, resource: &str, parse: fn(&str) -> Option<u64>| -> Vec<u64> {
        spec[key].as_sequence().map_or(vec![], |containers| {
            containers
                .iter()
                .map(|c| parse(&scalar(&c["resources"]["requests"][resource])).unwrap())
                .collect()
        })
    };
    let effective = |resource, parse| {
        let containers: u64 = requests("containers", resource, parse).iter().sum();
        let init = requests("initContainers", resource, parse)
            .into_iter()
            .max();
        containers.max(init.unwrap_or(0))
    };
    (
        effective("cpu", parse_cpu),
        effective("memory", parse_memory),
    )
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a quantity: {other:?}"),
    }
}

/// The rendered sums and PostgreSQL's max_connections.
fn render(site: &Path, profile: &str) -> (Rendered, u64) {
    test_support::require("helm", "scripts/install-helm.sh");
    let output = Command::new("helm")
        .args(["template", "msg"])
        .arg(chart())
        .args(["-n", "matrix", "-f"])
        .arg(site)
        .arg("-f")
        .arg(chart().join(format!("profiles/{profile}.yaml")))
        .output()
        .expect("`helm` is not on PATH: install it with scripts/install-helm.sh (helm 4.x)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let site_values = read_yaml(site);
    let turn_nodes = site_values["turn"]["externalIPs"]
        .as_sequence()
        .map_or(0, Vec::len) as u64;
    let mut rendered = Rendered {
        cpu: 0,
        memory: 0,
        pooler_connections: 0,
    };
    let mut max_connections = 0;
    use serde::Deserialize;
    for document in serde_norway::Deserializer::from_str(&text) {
        let doc = Value::deserialize(document).unwrap();
        let count = |key: &str| doc["spec"][key].as_u64().unwrap_or(1);
        let (pods, (cpu, memory)) = match doc["kind"].as_str().unwrap_or("") {
            "Deployment" | "StatefulSet" => (
                count("replicas"),
                pod_requests(&doc["spec"]["template"]["spec"]),
            ),
            "DaemonSet" => (turn_nodes, pod_requests(&doc["spec"]["template"]["spec"])),
            "Cluster" => {
                let requests = &doc["spec"]["resources"]["requests"];
                let max = &doc["spec"]["postgresql"]["parameters"]["max_connections"];
                max_connections = scalar(max).parse().unwrap();
                (
                    count("instances"),
                    (
                        parse_cpu(&scalar(&requests["cpu"])).unwrap(),
                        parse_memory(&scalar(&requests["memory"])).unwrap(),
                    ),
                )
            }
            "Pooler" => {
                let pool = &doc["spec"]["pgbouncer"]["parameters"]["max_db_connections"];
                rendered.pooler_connections = scalar(pool).parse().unwrap();
                (
                    count("instances"),
                    pod_requests(&doc["spec"]["template"]["spec"]),
                )
            }
            // Envoy Gateway (v1.9) starts `replicas` proxy pods from it: the envoy container
            // sized here plus the shutdown-manager sidecar, which requests 10m and 32Mi.
            "EnvoyProxy" => {
                let deployment = &doc["spec"]["provider"]["kubernetes"]["envoyDeployment"];
                let requests = &deployment["container"]["resources"]["requests"];
                (
                    deployment["replicas"].as_u64().unwrap(),
                    (
                        parse_cpu(&scalar(&requests["cpu"])).unwrap() + parse_cpu("10m").unwrap(),
                        parse_memory(&scalar(&requests["memory"])).unwrap()
                            + parse_memory("32Mi").unwrap(),
                    ),
                )
            }
            // The bucket setup Job runs once; the capacity check leaves it out.
            "Job" => continue,
            kind => {
                let pod = doc["spec"]["template"].is_mapping() || kind == "Pod";
                assert!(!pod, "{kind}: a workload the capacity check does not know");
                continue;
            }
        };
        rendered.cpu += pods * cpu;
        rendered.memory += pods * memory;
    }
    (rendered, max_connections)
}

/// The values-derived sums are what the chart renders, for every profile and every optional
/// part that changes which pods run.
#[test]
fn the_sums_match_what_helm_renders() {
    let dir = tempfile::tempdir().unwrap();
    let variants: [(&str, &str); 5] = [
        ("defaults", "{}"),
        (
            "federation",
            "{federation: {enabled: true, allowList: [partner.example.test]}}",
        ),
        (
            "external-s3",
            "{objectStorage: {mode: external, bucket: messenger-backups, external: {endpoint: 'https://s3.example.test', credentialsSecret: s3, cidr: 10.40.0.0/24}}}",
        ),
        ("no-turn", "{turn: {enabled: false}}"),
        (
            "own-gateway-class",
            "{gateway: {className: envoy, namespace: envoy-gateway-system, envoy: {manage: false}}}",
        ),
    ];
    for (name, overlay) in variants {
        let variant_dir = dir.path().join(name);
        std::fs::create_dir(&variant_dir).unwrap();
        let site = site_with(&variant_dir, |site| {
            let overlay: Value = serde_norway::from_str(overlay).unwrap();
            for (key, value) in overlay.as_mapping().unwrap() {
                site[key.as_str().unwrap()] = value.clone();
            }
        });
        for profile in PROFILES {
            let report = capacity::check(&chart(), &site, Some(profile)).unwrap();
            let connections = check(&report, "connections");
            let derived = Rendered {
                cpu: check(&report, "cpu").total,
                memory: check(&report, "memory").total,
                pooler_connections: connections.total,
            };
            let (rendered, max_connections) = render(&site, profile);
            assert_eq!(derived, rendered, "{name} {profile}");
            let max = format!("max_connections {max_connections} ×");
            assert!(connections.verdict().starts_with(&max), "{name} {profile}");
        }
    }
}

/// Valkey's limit holds maxmemory × 1.3 + 64Mi and PostgreSQL's `max_connections × work_mem`
/// stays within a quarter of its limit, as the chart checks (docs/capacity.md#valkey,
/// #postgresql); a profile breaking either fails that check alone.
#[test]
fn valkey_and_postgres_memory_fit_their_limits_and_profiles_that_do_not_fail() {
    let report = capacity::check(&chart(), &site_file(), Some("1k")).unwrap();
    let valkey = check(&report, "valkey memory");
    assert_eq!(
        valkey.total,
        512 * MI + (512 * MI * 30).div_ceil(100) + 64 * MI
    );
    assert_eq!(valkey.limit, 768 * MI);
    let postgres = check(&report, "postgres work_mem");
    assert_eq!(postgres.total, 300 * 3 * MI);
    assert_eq!(postgres.limit, 1024 * MI);

    let dir = tempfile::tempdir().unwrap();
    let chart = chart_with(dir.path(), "1k", |profile| {
        profile["valkey"]["maxmemory"] = Value::from("1gb");
        profile["postgres"]["workMem"] = Value::from("16MB");
    });
    let report = capacity::check(&chart, &site_file(), Some("1k")).unwrap();
    assert_eq!(
        failing(&report),
        ["valkey memory", "postgres work_mem"],
        "{report}"
    );
}

#[test]
fn group_calls_count_livekit_and_lk_jwt_service_only_when_on() {
    let dir = tempfile::tempdir().unwrap();
    let chart = chart();
    for profile in ["100", "20k"] {
        let off = capacity::requests(&chart, &site_file(), Some(profile)).unwrap();
        let on_site = site_with(dir.path(), |site| {
            site["calls"] = serde_norway::from_str(
                "{enabled: true, externalIPs: [203.0.113.20, 203.0.113.21, 203.0.113.22, \
                 203.0.113.23], nodeSelector: {calls: \"true\"}}",
            )
            .unwrap();
        });
        let on = capacity::requests(&chart, &on_site, Some(profile)).unwrap();
        let sizes = read_yaml(&chart.join(format!("profiles/{profile}.yaml")));
        let livekit = &sizes["livekit"];
        let jwt = &sizes["lkJwtService"]["resources"]["requests"];
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => serde_norway::to_string(other).unwrap().trim().to_string(),
        };
        let cpu = |v: &Value| capacity::parse_cpu(&text(v)).unwrap();
        let mem = |v: &Value| capacity::parse_memory(v.as_str().unwrap()).unwrap();
        let replicas = livekit["replicas"].as_u64().unwrap();
        let lk = &livekit["resources"]["requests"];
        assert_eq!(
            on.cpu - off.cpu,
            replicas * cpu(&lk["cpu"]) + cpu(&jwt["cpu"]),
            "{profile}"
        );
        assert_eq!(
            on.memory - off.memory,
            replicas * mem(&lk["memory"]) + mem(&jwt["memory"]),
            "{profile}"
        );
        assert_eq!(on.pods - off.pods, replicas + 1, "{profile}");
    }
}
