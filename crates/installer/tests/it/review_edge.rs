//! The review of issue 16, items 2, 6, 9, 12 and 14, against the rendered chart:
//!
//! - HAProxy (2): each pod's memory limit holds the process and `maxconn` connections at 49Ki
//!   each (three `tune.bufsize` 16Ki buffers and 1Ki of state), one thread per 10000
//!   connections, in the chart's check and in the capacity crate's `haproxy memory` check;
//! - the admin API (6): routed on the admin host only, never on the Matrix host, and from
//!   `admin.allowedCIDRs` only: an Envoy Gateway SecurityPolicy on the admin route, and HAProxy
//!   on the address the Gateway appended last to X-Forwarded-For; a site with the admin API on
//!   must list its networks;
//! - federation (9): `/send/` hashed on the origin of the X-Matrix Authorization header, so one
//!   server's transactions reach one reader; the media worker serves
//!   `/_matrix/federation/v1/media/` when federation is on;
//! - egress (12): `networkPolicy.apiServerCIDR` and, in external mode,
//!   `objectStorage.external.cidr` are required, and `/0` needs
//!   `networkPolicy.allowEgressToAnyAddress`;
//! - monitoring (14): the ServiceMonitors and PodMonitors are on by default and carry the label
//!   the deployed kube-prometheus-stack selects them by.
//!
//! `REVIEW_EDGE_ROOT=DIR` runs the same assertions against another checkout's chart, site
//! fixture, releases.toml and upstream values (e.g. a `git worktree` of the commit before 7841a47, where they fail).
//!
//! Needs `helm` and `haproxy`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use test_support::{p, run, Run};

use crate::stack_chart::{config_map_key, documents, find, need_helm, write, NAMESPACE, RELEASE};

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
const MI: u64 = 1024 * 1024;
/// The fixture's admin networks (`admin.allowedCIDRs`).
const ADMIN_NETWORK: &str = "10.30.5.0/24";
const ADMIN_HOST: &str = "admin.example.test";
const MATRIX_HOST: &str = "matrix.example.test";
const FEDERATION: &[&str] = &[
    "--set",
    "federation.enabled=true",
    "--set-json",
    r#"federation.allowList=["partner.example.test"]"#,
];

/// The checkout under review: `REVIEW_EDGE_ROOT`, or this workspace.
fn root() -> PathBuf {
    std::env::var_os("REVIEW_EDGE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(test_support::workspace_root)
}

fn reviewing_other_root() -> bool {
    std::env::var_os("REVIEW_EDGE_ROOT").is_some()
}

fn chart() -> PathBuf {
    root().join("charts/messenger")
}

fn site_file() -> PathBuf {
    root().join("tests/fixtures/site/site.yaml")
}

/// `helm template` of the chart under review with its site fixture and a profile; this
/// workspace's through stack_chart's helper.
fn template(profile: &str, extra: &[&str]) -> Run {
    crate::stack_chart::template_in(&root(), profile, extra)
}

/// The rendered manifests (cached by stack_chart for this workspace).
fn render(profile: &str, extra: &[&str]) -> String {
    if !reviewing_other_root() {
        return crate::stack_chart::render(profile, extra);
    }
    template(profile, extra).ok().stdout
}

fn docs(profile: &str, extra: &[&str]) -> Vec<Value> {
    documents(&render(profile, extra))
}

/// `helm template` of the chart under review with `site` instead of the site fixture.
fn template_with_site(site: &Path, profile: &str) -> Run {
    need_helm();
    let chart = chart();
    let profile_file = chart.join(format!("profiles/{profile}.yaml"));
    let args = [
        "template",
        RELEASE,
        p(&chart),
        "-n",
        NAMESPACE,
        "-f",
        p(site),
        "-f",
        p(&profile_file),
    ];
    run("helm", &args, site.parent().unwrap())
}

/// helm's error for a render that must fail.
fn refused(profile: &str, extra: &[&str]) -> String {
    template(profile, extra).failed().stderr
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn has(docs: &[Value], kind: &str, name: &str) -> bool {
    docs.iter()
        .any(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
}

fn memory(quantity: &Value) -> u64 {
    let text = match quantity {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap().trim().to_owned(),
    };
    capacity::parse_memory(&text).unwrap_or_else(|| panic!("memory quantity {text:?}"))
}

fn cpu(quantity: &Value) -> u64 {
    let text = match quantity {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other).unwrap().trim().to_owned(),
    };
    capacity::parse_cpu(&text).unwrap_or_else(|| panic!("cpu quantity {text:?}"))
}

/// The argument of the first `<keyword> ...` line of HAProxy's `global` section.
fn global_setting(cfg: &str, keyword: &str) -> Option<String> {
    cfg.lines()
        .skip_while(|l| l.trim() != "global")
        .skip(1)
        .take_while(|l| l.starts_with(' ') || l.trim().is_empty())
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&format!("{keyword} ")).map(str::to_owned))
}

// --- item 2: HAProxy sized from maxconn ------------------------------------------------------

/// Every profile: HAProxy's memory limit holds 64Mi plus 49Ki per connection of `maxconn`
/// (three tune.bufsize 16Ki buffers, which the config pins, and 1Ki of state); `nbthread` is
/// set, one thread per 10000 connections at least, and the CPU request is no more than those
/// threads can use. Before 7841a47, 20k has maxconn 80000 (3.8Gi by this rule) in a 256Mi limit and
/// no thread count (HAProxy starts one per CPU of the node).
#[test]
fn haproxy_memory_and_threads_follow_maxconn_in_every_profile() {
    assert_eq!(
        (capacity::HAPROXY_CONNECTION_KIB, capacity::HAPROXY_BASE_MIB),
        (49, 64)
    );
    let mut problems = Vec::new();
    for profile in PROFILES {
        let docs = docs(profile, &[]);
        let cfg = config_map_key(&docs, &format!("{RELEASE}-haproxy"), "haproxy.cfg");
        let maxconn: u64 = global_setting(&cfg, "maxconn").unwrap().parse().unwrap();
        let bufsize = global_setting(&cfg, "tune.bufsize");
        if bufsize.as_deref() != Some("16384") {
            problems.push(format!(
                "{profile}: tune.bufsize {bufsize:?}, not the 16384 the sizing assumes"
            ));
        }
        let deployment = find(&docs, "Deployment", &format!("{RELEASE}-haproxy"));
        let resources = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"];
        let limit = memory(&resources["limits"]["memory"]);
        let need =
            capacity::HAPROXY_BASE_MIB * MI + maxconn * capacity::HAPROXY_CONNECTION_KIB * 1024;
        if limit < need {
            problems.push(format!(
                "{profile}: maxconn {maxconn} needs {}Mi but the memory limit is {}Mi",
                need.div_ceil(MI),
                limit / MI
            ));
        }
        let request = memory(&resources["requests"]["memory"]);
        assert!(request <= limit, "{profile}: request above the limit");
        let wanted = maxconn.div_ceil(capacity::HAPROXY_CONNECTIONS_PER_THREAD);
        match global_setting(&cfg, "nbthread").map(|n| n.parse::<u64>().unwrap()) {
            None => problems.push(format!(
                "{profile}: no nbthread (HAProxy starts a thread per CPU of its node)"
            )),
            Some(threads) => {
                if threads < wanted {
                    problems.push(format!(
                        "{profile}: nbthread {threads} for maxconn {maxconn} (want {wanted})"
                    ));
                }
                let requested = cpu(&resources["requests"]["cpu"]);
                if requested > threads * 1000 {
                    problems.push(format!(
                        "{profile}: {requested}m CPU requested for {threads} threads"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The chart refuses a HAProxy limit below what maxconn needs, and too few threads, naming
/// the numbers (before 7841a47 both render).
#[test]
fn the_chart_refuses_a_haproxy_too_small_for_its_maxconn() {
    let error = refused("20k", &["--set", "haproxy.resources.limits.memory=256Mi"]);
    assert!(
        error.contains("haproxy.resources.limits.memory: 256Mi but maxconn 27000 needs 1356Mi"),
        "{error}"
    );
    let error = refused("20k", &["--set", "haproxy.nbthread=1"]);
    assert!(
        error.contains("haproxy.nbthread: 1 for maxconn 27000: at least 3"),
        "{error}"
    );
}

/// `installer capacity` (the capacity crate) checks the same rule as `haproxy memory`, prints
/// its arithmetic, and fails a profile whose limit is too small (before 7841a47 the 20k profile
/// fails it).
#[test]
fn the_capacity_check_holds_haproxy_memory_to_maxconn() {
    for profile in PROFILES {
        let report = capacity::check(&chart(), &site_file(), Some(profile)).unwrap();
        let check = report
            .checks
            .iter()
            .find(|c| c.name == "haproxy memory")
            .unwrap_or_else(|| panic!("{profile}: no haproxy memory check\n{report}"));
        assert!(check.ok, "{report}");
        let values: Value = serde_norway::from_str(
            &std::fs::read_to_string(chart().join(format!("profiles/{profile}.yaml"))).unwrap(),
        )
        .unwrap();
        let maxconn = values["haproxy"]["maxconn"].as_u64().unwrap();
        assert_eq!(check.total, 64 * MI + maxconn * 49 * 1024, "{profile}");
        assert_eq!(
            check.lines[0],
            format!(
                "haproxy connections (haproxy.maxconn): {maxconn} × 49Ki = {}Ki",
                maxconn * 49
            )
        );
        assert_eq!(check.lines[1], "haproxy process: 1 × 64Mi = 64Mi");
    }
    // A copy of the chart's values whose 20k HAProxy keeps the earlier 256Mi.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("chart");
    std::fs::create_dir_all(copy.join("profiles")).unwrap();
    std::fs::copy(chart().join("values.yaml"), copy.join("values.yaml")).unwrap();
    for profile in PROFILES {
        let file = format!("profiles/{profile}.yaml");
        let mut text = std::fs::read_to_string(chart().join(&file)).unwrap();
        if *profile == "20k" {
            let mut values: Value = serde_norway::from_str(&text).unwrap();
            values["haproxy"]["resources"]["limits"]["memory"] = "256Mi".into();
            text = serde_norway::to_string(&values).unwrap();
        }
        std::fs::write(copy.join(&file), text).unwrap();
    }
    let report = capacity::check(&copy, &site_file(), Some("20k")).unwrap();
    assert!(!report.ok(), "{report}");
    let failed: Vec<&str> = report.failures().map(|c| c.name).collect();
    assert_eq!(failed, ["haproxy memory"], "{report}");
    let verdict = report.failures().next().unwrap().verdict().to_owned();
    assert!(
        verdict.starts_with("one pod's haproxy.resources.limits.memory = 256Mi < "),
        "{verdict}"
    );
}

// --- HAProxy in front of stand-ins ------------------------------------------------------------

/// The rendered HAProxy on loopback in front of stand-ins; stopped when dropped.
struct Haproxy(crate::stack_chart::RoutedHaproxy);

impl Haproxy {
    /// Starts the HAProxy config of `docs` with every Synapse instance replaced by a stand-in.
    fn start(docs: &[Value]) -> Haproxy {
        Haproxy(crate::stack_chart::start_haproxy(docs))
    }

    /// One HTTP/1.1 request with `Host: host`: (status, body).
    fn request(
        &self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        crate::stack_chart::http_as(self.0.port, host, method, path, headers)
    }

    fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.request("GET", host, path, headers)
    }
}

// --- item 6: the admin API on the admin host, from the listed networks -------------------------

/// Property paths (`.` between properties, `[]` for array items) of Envoy Gateway's
/// SecurityPolicy CRD the chart may set, and the version and CRD file they come from.
fn security_policy_crd_paths() -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(
        test_support::workspace_root()
            .join("crates/installer/tests/fixtures/securitypolicy-crd-paths.txt"),
    )
    .unwrap();
    let mut lines = text.lines();
    let source = lines.next().unwrap_or_default().to_owned();
    let paths = lines
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    (source, paths)
}

fn leaf_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(m) => {
            for (key, child) in m {
                leaf_paths(child, &format!("{path}.{}", key.as_str().unwrap()), out);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                leaf_paths(item, &format!("{path}[]"), out);
            }
        }
        _ => {
            out.insert(path.to_owned());
        }
    }
}

/// The PathPrefix values an HTTPRoute's rules match, with the backend each rule names.
fn route_prefixes(route: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rule in route["spec"]["rules"].as_sequence().unwrap() {
        let backend = rule["backendRefs"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match rule["matches"].as_sequence() {
            Some(matches) => {
                for m in matches {
                    out.push((
                        m["path"]["value"].as_str().unwrap_or("/").to_owned(),
                        backend.clone(),
                    ));
                }
            }
            None => out.push(("/".to_owned(), backend)),
        }
    }
    out
}

/// One request to HAProxy: host, path, headers, and what must answer (`403`, or the prefix
/// of the instance name).
type AdminCase<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str);

/// The Gateway routes `/_synapse/admin` on the admin host only (with synapse-admin, whose
/// homeserver is that host), an Envoy Gateway SecurityPolicy admits only the site's admin
/// networks to that route (fields of Envoy Gateway v1.9's CRD), and HAProxy refuses the admin
/// API on any other host and from any address not listed, taking the client from the last
/// X-Forwarded-For entry (the Gateway's), percent-encoded and doubled slashes included.
/// Before 7841a47 the Matrix host routes the admin API and nothing restricts its sources.
#[test]
fn the_admin_api_is_routed_only_on_the_admin_host_to_the_listed_networks() {
    let docs = docs("1k", &[]);
    let matrix = find(&docs, "HTTPRoute", &format!("{RELEASE}-matrix"));
    let on_matrix: Vec<String> = route_prefixes(matrix).into_iter().map(|(p, _)| p).collect();
    assert!(
        !on_matrix.iter().any(|p| p.starts_with("/_synapse/admin")),
        "the Matrix host routes the admin API: {on_matrix:?}"
    );
    let admin_route = find(&docs, "HTTPRoute", &format!("{RELEASE}-synapse-admin"));
    assert_eq!(
        admin_route["spec"]["hostnames"][0].as_str(),
        Some(ADMIN_HOST)
    );
    let on_admin = route_prefixes(admin_route);
    let haproxy = format!("{RELEASE}-haproxy");
    for prefix in ["/_synapse/admin", "/_matrix/client"] {
        assert!(
            on_admin.contains(&(prefix.to_owned(), haproxy.clone())),
            "{prefix} on the admin host: {on_admin:?}"
        );
    }
    assert!(on_admin.contains(&("/".to_owned(), format!("{RELEASE}-synapse-admin"))));
    let admin_config: Value = serde_json::from_str::<serde_json::Value>(&config_map_key(
        &docs,
        &format!("{RELEASE}-synapse-admin"),
        "config.json",
    ))
    .map(|v| serde_norway::to_value(v).unwrap())
    .unwrap();
    assert_eq!(
        admin_config["restrictBaseUrl"].as_str(),
        Some(format!("https://{ADMIN_HOST}").as_str()),
        "synapse-admin's homeserver is the admin host"
    );

    // The Gateway's own restriction: Envoy Gateway's SecurityPolicy on the admin route.
    let policies = of_kind(&docs, "SecurityPolicy");
    assert_eq!(policies.len(), 1, "one SecurityPolicy");
    let policy = policies[0];
    assert_eq!(
        policy["apiVersion"].as_str(),
        Some("gateway.envoyproxy.io/v1alpha1")
    );
    assert_eq!(policy["metadata"]["namespace"].as_str(), Some(NAMESPACE));
    let target = &policy["spec"]["targetRefs"][0];
    assert_eq!(target["group"].as_str(), Some("gateway.networking.k8s.io"));
    assert_eq!(target["kind"].as_str(), Some("HTTPRoute"));
    assert_eq!(target["name"], admin_route["metadata"]["name"]);
    let authorization = &policy["spec"]["authorization"];
    assert_eq!(authorization["defaultAction"].as_str(), Some("Deny"));
    let rules = authorization["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["action"].as_str(), Some("Allow"));
    assert_eq!(
        rules[0]["principal"]["clientCIDRs"],
        serde_norway::from_str::<Value>(&format!("[{ADMIN_NETWORK}]")).unwrap()
    );
    let (source, crd_paths) = security_policy_crd_paths();
    assert!(source.starts_with("Envoy Gateway v1.9."), "{source}");
    let mut set = BTreeSet::new();
    leaf_paths(&policy["spec"], "spec", &mut set);
    let unknown: Vec<&String> = set.difference(&crd_paths).collect();
    assert!(
        unknown.is_empty(),
        "not in the CRD of {source}: {unknown:?}"
    );

    // HAProxy, whatever reaches it.
    let proxy = Haproxy::start(&docs);
    let inside = "10.30.5.7";
    let outside = "10.30.6.7";
    let spoofed = format!("{inside}, {outside}");
    let cases: Vec<AdminCase> = vec![
        (
            ADMIN_HOST,
            "/_synapse/admin/v2/users",
            vec![("X-Forwarded-For", inside)],
            "main",
        ),
        (
            ADMIN_HOST,
            "/_synapse/admin/v1/media/example.test/abc",
            vec![("X-Forwarded-For", inside)],
            "media-repository-0",
        ),
        (
            ADMIN_HOST,
            "/_matrix/client/v3/login",
            vec![],
            "client-reader-",
        ),
        (
            MATRIX_HOST,
            "/_synapse/admin/v2/users",
            vec![("X-Forwarded-For", inside)],
            "403",
        ),
        (
            ADMIN_HOST,
            "/_synapse/admin/v2/users",
            vec![("X-Forwarded-For", outside)],
            "403",
        ),
        (ADMIN_HOST, "/_synapse/admin/v2/users", vec![], "403"),
        (
            ADMIN_HOST,
            "/_synapse/admin/v2/users",
            vec![("X-Forwarded-For", "junk")],
            "403",
        ),
        // The client wrote an admin address; the Gateway appended the real one last.
        (
            ADMIN_HOST,
            "/_synapse/admin/v2/users",
            vec![("X-Forwarded-For", &spoofed)],
            "403",
        ),
        (
            MATRIX_HOST,
            "/_synapse/%61dmin/v2/users",
            vec![("X-Forwarded-For", inside)],
            "403",
        ),
        (
            MATRIX_HOST,
            "//_synapse//admin/v1/register",
            vec![("X-Forwarded-For", inside)],
            "403",
        ),
    ];
    let mut failures = Vec::new();
    for (host, path, headers, want) in &cases {
        let (status, body) = proxy.get(host, path, headers);
        let ok = if *want == "403" {
            status == 403
        } else {
            status == 200 && body.starts_with(want)
        };
        if !ok {
            failures.push(format!(
                "{host} {path} {headers:?}: {status} {body} (want {want})"
            ));
        }
    }
    drop(proxy);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A site with the admin API on must list the networks that reach it (none, or a /0, is
/// refused); with it off there is no synapse-admin, no admin route or policy, and HAProxy
/// refuses the admin API everywhere.
#[test]
fn a_site_with_the_admin_api_on_must_list_its_admin_networks() {
    let error = refused("1k", &["--set-json", "admin.allowedCIDRs=[]"]);
    assert!(
        error.contains("admin.allowedCIDRs: the admin API is on (features.adminApi)"),
        "{error}"
    );
    let error = refused("1k", &["--set-json", r#"admin.allowedCIDRs=["0.0.0.0/0"]"#]);
    assert!(
        error.contains("admin.allowedCIDRs: 0.0.0.0/0 admits every address"),
        "{error}"
    );
    let off = [
        "--set",
        "features.adminApi=false",
        "--set-json",
        "admin.allowedCIDRs=[]",
    ];
    let docs = docs("1k", &off);
    let admin = format!("{RELEASE}-synapse-admin");
    for kind in ["Deployment", "HTTPRoute", "ConfigMap"] {
        assert!(
            !has(&docs, kind, &admin),
            "{kind} {admin} with the admin API off"
        );
    }
    assert!(of_kind(&docs, "SecurityPolicy").is_empty());
    let proxy = Haproxy::start(&docs);
    let (status, _) = proxy.get(
        ADMIN_HOST,
        "/_synapse/admin/v1/register",
        &[("X-Forwarded-For", "10.30.5.7")],
    );
    drop(proxy);
    assert_eq!(status, 403);
}

// --- item 9: federation transactions by origin, federation media on the media worker -----------

fn x_matrix(origin: &str, sig: &str, origin_first: bool) -> String {
    if origin_first {
        format!(
            r#"X-Matrix origin="{origin}",destination="example.test",key="ed25519:a1",sig="{sig}""#
        )
    } else {
        // Parameters in another order, origin unquoted (both allowed by the spec).
        format!(
            r#"X-Matrix key="ed25519:a1",sig="{sig}",origin={origin},destination="example.test""#
        )
    }
}

/// With federation on (5k: two federation readers), every transaction of one origin server
/// reaches the same reader, whatever its signature and parameter order, while origins spread
/// over both readers; other federation requests still reach the readers. The media worker
/// serves `/_matrix/federation/v1/media/` (its listener has the `media` resource and not
/// `federation`, which would shadow it), and the Gateway routes the federation prefix. At
/// before 7841a47 /send/ is balanced leastconn: one origin's transactions alternate between readers.
#[test]
fn federation_transactions_of_one_origin_reach_one_reader() {
    let docs = docs("5k", FEDERATION);
    let hs = config_map_key(&docs, &format!("{RELEASE}-synapse"), "homeserver.yaml");
    let hs: Value = serde_norway::from_str(&hs).unwrap();
    let readers = hs["instance_map"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter(|k| k.as_str().unwrap().starts_with("federation-reader-"))
        .count();
    assert_eq!(readers, 2, "5k runs two federation readers");
    let media: Value = serde_norway::from_str(&config_map_key(
        &docs,
        &format!("{RELEASE}-synapse"),
        "worker-media-repository.yaml",
    ))
    .unwrap();
    let names = &media["worker_listeners"][0]["resources"][0]["names"];
    let names: Vec<&str> = names
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"media") && !names.contains(&"federation"),
        "{names:?}"
    );
    let matrix = find(&docs, "HTTPRoute", &format!("{RELEASE}-matrix"));
    assert!(route_prefixes(matrix)
        .iter()
        .any(|(p, _)| p == "/_matrix/federation"));

    let proxy = Haproxy::start(&docs);
    let mut by_origin: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for i in 0..8 {
        let origin = format!("server{i}.example.test");
        for txn in 0..6 {
            let auth = x_matrix(&origin, &format!("sig{txn}x{i}"), txn % 2 == 0);
            let (status, body) = proxy.request(
                "PUT",
                MATRIX_HOST,
                &format!("/_matrix/federation/v1/send/{txn}"),
                &[("Authorization", &auth)],
            );
            assert_eq!(status, 200, "{origin} txn {txn}: {body}");
            by_origin.entry(origin.clone()).or_default().insert(body);
        }
    }
    let event = proxy.get(MATRIX_HOST, "/_matrix/federation/v1/event/$e", &[]);
    let federation_media = [
        proxy.get(
            MATRIX_HOST,
            "/_matrix/federation/v1/media/download/abc",
            &[],
        ),
        proxy.get(
            MATRIX_HOST,
            "/_matrix/federation/v1/media/thumbnail/abc?width=32&height=32",
            &[],
        ),
    ];
    drop(proxy);
    let split: Vec<_> = by_origin.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(
        split.is_empty(),
        "one origin's transactions on several readers: {split:?}"
    );
    let used: BTreeSet<&String> = by_origin.values().flatten().collect();
    assert_eq!(used.len(), 2, "origins all on one reader: {by_origin:?}");
    assert!(event.1.starts_with("federation-reader-"), "{event:?}");
    for (status, body) in &federation_media {
        assert_eq!((*status, body.as_str()), (200, "media-repository-0"));
    }
}

// --- item 12: egress ranges ---------------------------------------------------------------------

/// Every `ipBlock.cidr` of the rendered NetworkPolicies: policy name -> CIDRs.
fn ip_blocks(docs: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for policy in of_kind(docs, "NetworkPolicy") {
        let name = policy["metadata"]["name"].as_str().unwrap().to_owned();
        for rule in policy["spec"]["egress"].as_sequence().into_iter().flatten() {
            for to in rule["to"].as_sequence().into_iter().flatten() {
                if let Some(cidr) = to["ipBlock"]["cidr"].as_str() {
                    out.entry(name.clone()).or_default().push(cidr.to_owned());
                }
            }
        }
    }
    out
}

/// A site file (the fixture without `networkPolicy`) that says nothing about the API server.
fn site_without_api_server(dir: &Path) -> PathBuf {
    let mut site: Value =
        serde_norway::from_str(&std::fs::read_to_string(site_file()).unwrap()).unwrap();
    site.as_mapping_mut().unwrap().remove("networkPolicy");
    write(dir, "site.yaml", &serde_norway::to_string(&site).unwrap())
}

/// `networkPolicy.apiServerCIDR` must be given (CloudNativePG always needs the API server), and
/// `objectStorage.external.cidr` in external mode; a /0 range (IPv4 or IPv6) is refused unless
/// `networkPolicy.allowEgressToAnyAddress` says so. The fixture's ranges reach the policies,
/// and by default no egress rule is open to every address. Before 7841a47 both default to 0.0.0.0/0.
#[test]
fn egress_ranges_are_required_and_never_every_address_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let site = site_without_api_server(dir.path());
    let error = template_with_site(&site, "1k").failed().stderr;
    assert!(
        error.contains("networkPolicy.apiServerCIDR: required"),
        "a site without the API server's range: {error}"
    );
    for any in ["0.0.0.0/0", "::/0"] {
        let set = format!("networkPolicy.apiServerCIDR={any}");
        let error = refused("1k", &["--set", &set]);
        assert!(
            error.contains(&format!(
                "networkPolicy.apiServerCIDR: {any} lets these pods reach every address"
            )) && error.contains("networkPolicy.allowEgressToAnyAddress: true"),
            "{error}"
        );
    }
    let allowed = docs(
        "1k",
        &[
            "--set",
            "networkPolicy.apiServerCIDR=0.0.0.0/0",
            "--set",
            "networkPolicy.allowEgressToAnyAddress=true",
        ],
    );
    assert_eq!(
        ip_blocks(&allowed)[&format!("{RELEASE}-pooler")],
        ["0.0.0.0/0"]
    );

    let defaults = ip_blocks(&docs("1k", &[]));
    for policy in ["pooler", "postgres"] {
        assert_eq!(
            defaults[&format!("{RELEASE}-{policy}")],
            ["10.20.0.0/28"],
            "{policy}: the fixture's networkPolicy.apiServerCIDR"
        );
    }
    let open: Vec<_> = defaults
        .iter()
        .filter(|(_, cidrs)| cidrs.iter().any(|c| c.ends_with("/0")))
        .collect();
    assert!(open.is_empty(), "egress to every address: {open:?}");

    let external = [
        "--set",
        "objectStorage.mode=external",
        "--set",
        "objectStorage.external.endpoint=https://s3.example.test:9000",
        "--set",
        "objectStorage.external.credentialsSecret=site-s3",
    ];
    let error = refused("1k", &external);
    assert!(
        error.contains("objectStorage.external.cidr: required"),
        "external S3 without its range: {error}"
    );
    for any in ["0.0.0.0/0", "::/0"] {
        let mut args = external.to_vec();
        let set = format!("objectStorage.external.cidr={any}");
        args.extend(["--set", &set]);
        let error = refused("1k", &args);
        assert!(
            error.contains(&format!(
                "objectStorage.external.cidr: {any} lets these pods reach every address"
            )),
            "{error}"
        );
    }
    let mut args = external.to_vec();
    args.extend(["--set", "objectStorage.external.cidr=10.40.0.0/24"]);
    let blocks = ip_blocks(&docs("1k", &args));
    assert_eq!(
        blocks[&format!("{RELEASE}-postgres")],
        ["10.20.0.0/28", "10.40.0.0/24"]
    );
    assert_eq!(blocks[&format!("{RELEASE}-bucket-setup")], ["10.40.0.0/24"]);
}

// --- item 14: monitors on, with the label Prometheus selects ------------------------------------

/// The labels kube-prometheus-stack's Prometheus selects `kind` (`serviceMonitor`,
/// `podMonitor`) by, as the installer deploys it: its release name in releases.toml and
/// charts/upstream/monitoring.yaml (the chart's default: `release: <release name>` unless the
/// values set a selector, or turn `<kind>SelectorNilUsesHelmValues` off to select all).
fn prometheus_selector(kind: &str) -> BTreeMap<String, String> {
    let release = crate::stack_chart::locked_release("kube-prometheus-stack");
    let name = release["name"].as_str().unwrap();
    assert!(release["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v.as_str() == Some("charts/upstream/monitoring.yaml")));
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("charts/upstream/monitoring.yaml")).unwrap(),
    )
    .unwrap();
    let spec = &values["prometheus"]["prometheusSpec"];
    // Every namespace (the chart's default `{}`), or the monitors are never looked at.
    let namespaces = &spec[format!("{kind}NamespaceSelector").as_str()];
    assert!(
        namespaces.is_null() || namespaces.as_mapping().is_some_and(|m| m.is_empty()),
        "{kind}NamespaceSelector: {namespaces:?}"
    );
    let selector = &spec[format!("{kind}Selector").as_str()];
    if let Some(labels) = selector["matchLabels"].as_mapping() {
        return labels
            .iter()
            .map(|(k, v)| (k.as_str().unwrap().into(), v.as_str().unwrap().into()))
            .collect();
    }
    if spec[format!("{kind}SelectorNilUsesHelmValues").as_str()].as_bool() == Some(false) {
        return BTreeMap::new();
    }
    BTreeMap::from([("release".to_owned(), name.to_owned())])
}

/// By default the chart renders its ServiceMonitors (every Synapse process, HAProxy) and
/// PodMonitors (PostgreSQL, PgBouncer), each with the labels the deployed Prometheus selects,
/// and naming metrics ports that exist; `monitoring.enabled: false` removes them. Before 7841a47 they
/// are off by default and carry no `release` label.
#[test]
fn monitors_are_on_by_default_with_the_label_the_deployed_prometheus_selects() {
    let docs = docs("1k", &[]);
    let mut seen = Vec::new();
    for (kind, selector_kind, names) in [
        ("ServiceMonitor", "serviceMonitor", ["synapse", "haproxy"]),
        ("PodMonitor", "podMonitor", ["pg", "pg-pooler"]),
    ] {
        let want = prometheus_selector(selector_kind);
        assert!(!want.is_empty(), "{selector_kind}: selects everything?");
        for name in names {
            let name = format!("{RELEASE}-{name}");
            assert!(has(&docs, kind, &name), "no {kind} {name} by default");
            let monitor = find(&docs, kind, &name);
            for (key, value) in &want {
                assert_eq!(
                    monitor["metadata"]["labels"][key.as_str()].as_str(),
                    Some(value.as_str()),
                    "{kind} {name}: label {key}"
                );
            }
            seen.push(name);
        }
    }
    // Each ServiceMonitor selects Services that have its port.
    for monitor in of_kind(&docs, "ServiceMonitor") {
        let selector = monitor["spec"]["selector"]["matchLabels"]
            .as_mapping()
            .unwrap();
        let port = monitor["spec"]["endpoints"][0]["port"].as_str().unwrap();
        let services: Vec<&Value> = of_kind(&docs, "Service")
            .into_iter()
            .filter(|s| {
                selector
                    .iter()
                    .all(|(k, v)| &s["metadata"]["labels"][k.as_str().unwrap()] == v)
            })
            .collect();
        assert!(!services.is_empty(), "{monitor:?} selects no Service");
        for s in services {
            assert!(
                s["spec"]["ports"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"].as_str() == Some(port)),
                "{} has no port {port}",
                s["metadata"]["name"].as_str().unwrap()
            );
        }
    }
    let off = documents(&render("1k", &["--set", "monitoring.enabled=false"]));
    for kind in ["ServiceMonitor", "PodMonitor"] {
        assert!(of_kind(&off, kind).is_empty(), "{kind} with monitoring off");
    }
}
