//! Monitoring of the call parts: coturn's Prometheus exporter (turnserver.conf, the node's own
//! address, the DaemonSet's `metrics` port, PodMonitor <release>-coturn and its policy),
//! LiveKit's (prometheus.port, PodMonitor <release>-livekit) in both network modes, and the
//! Calls dashboard reading both where they run, every metric it names listed with its
//! upstream source.
//!
//! Neither exporter runs here: LiveKit is a Go binary in its image, and Debian's turnserver
//! (which review_turn_media.rs runs on the rendered configuration) is built without
//! Prometheus. [`assert_only_the_exporter_is_skipped`] is what that test checks of it.

use crate::harness::prometheus::monitor_targets;
use crate::monitoring_dashboards::{cluster_only, dashboards, queries};
use crate::stack_chart::{self, config_map_key, documents, find, render, write};
use serde_norway::Value;
use std::collections::BTreeSet;

const TURN_NAMESPACE: &str = "matrix-turn";

/// Calls on with NodePort media: LiveKit in the release namespace.
use crate::calls::NODE_PORT;

/// Calls on the host network: LiveKit in the TURN namespace.
const HOST_NETWORK: &str = "calls:
  enabled: true
  network: hostNetwork
  externalIPs: [203.0.113.20]
  nodeSelector: {messenger.example.test/calls: \"true\"}
  udpPort: 7882
  tcpPort: 7881
";

fn render_with(overlay: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "calls.yaml", overlay);
    documents(&render("1k", &["-f", file.to_str().unwrap()]))
}

/// coturn's option names at the carried version (fixtures/calls/coturn-options.txt).
fn coturn_options() -> BTreeSet<String> {
    let path = stack_chart::root().join("crates/installer/tests/fixtures/calls/coturn-options.txt");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The option names a turnserver.conf sets (`name` or `name=value` lines).
fn conf_options(conf: &str) -> BTreeSet<String> {
    conf.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('=').next().unwrap_or(l).to_string())
        .collect()
}

/// The Prometheus options coturn gets from the rendered files: the configuration's and the
/// one start.sh appends (name, value; `$HOST_IP` as start.sh writes it).
fn exporter_options(docs: &[Value]) -> Vec<(String, String)> {
    let conf = config_map_key(docs, "msg-coturn", "turnserver.conf");
    let start = config_map_key(docs, "msg-coturn", "start.sh");
    let mut out: Vec<(String, String)> = conf
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("prometheus"))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    for line in start.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("printf 'prometheus-address=%s\\n' ") {
            let value = rest.split_whitespace().next().unwrap_or_default();
            out.push(("prometheus-address".into(), value.trim_matches('"').into()));
        }
    }
    out
}

/// What a turnserver log says it could not parse ("Bad configuration format: NAME").
fn skipped_options(log: &str) -> BTreeSet<String> {
    log.lines()
        .filter_map(|l| l.split_once("Bad configuration format: ").map(|(_, o)| o))
        .map(|o| o.trim().split('=').next().unwrap_or_default().to_string())
        .collect()
}

/// For a Debian turnserver that ran the rendered configuration (`log`, with `conf` and
/// `start` its files): it skipped exactly the exporter's options, because its build has no
/// Prometheus support (`turnserver -h` lists no --prometheus), and every one of them is an
/// option of the carried coturn. Any other option it could not parse fails.
pub(crate) fn assert_only_the_exporter_is_skipped(log: &str, conf: &str, start: &str) {
    let help = std::process::Command::new("turnserver")
        .arg("-h")
        .output()
        .unwrap();
    let help = format!(
        "{}{}",
        String::from_utf8_lossy(&help.stdout),
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(
        !help.contains("--prometheus"),
        "this turnserver has Prometheus support: scrape it in the coturn test and drop the \
         turn_* lines of cluster-only-metrics.txt"
    );
    let mut rendered: BTreeSet<String> = conf_options(conf)
        .into_iter()
        .filter(|o| o.starts_with("prometheus"))
        .collect();
    if start.contains("printf 'prometheus-address=%s\\n'") {
        rendered.insert("prometheus-address".into());
    }
    assert_eq!(
        skipped_options(log),
        rendered,
        "Debian's turnserver must skip the exporter's options and only them:\n{log}"
    );
    let known = coturn_options();
    let unknown: Vec<&String> = rendered.iter().filter(|o| !known.contains(*o)).collect();
    assert!(
        unknown.is_empty(),
        "not options of the carried coturn: {unknown:?}"
    );
}

#[test]
fn coturns_exporter_listens_on_the_nodes_address_and_a_podmonitor_selects_it() {
    let docs = documents(&render("1k", &[]));
    // turnserver.conf turns the exporter on at coturn.metrics.port; start.sh binds it to the
    // node's own address. Every option is one of the carried coturn's.
    let options = exporter_options(&docs);
    assert_eq!(
        options,
        [
            ("prometheus".to_string(), String::new()),
            ("prometheus-port".to_string(), "9641".to_string()),
            ("prometheus-address".to_string(), "$HOST_IP".to_string()),
        ]
    );
    let known = coturn_options();
    for (name, _) in &options {
        assert!(known.contains(name), "{name} is no option of coturn 4.17.0");
    }
    let conf = config_map_key(&docs, "msg-coturn", "turnserver.conf");
    assert!(
        !conf_options(&conf).contains("prometheus-username-labels"),
        "no user names in the metrics"
    );

    // The DaemonSet declares the port, the PodMonitor in the TURN namespace selects it with
    // the labels the deployed Prometheus selects monitors by.
    let (targets, _) = monitor_targets(&docs, "matrix");
    let coturn: Vec<_> = targets
        .iter()
        .filter(|t| t.monitor == "PodMonitor/msg-coturn")
        .collect();
    assert_eq!(coturn.len(), 1, "one target per coturn pod: {targets:?}");
    assert_eq!(coturn[0].container_port, 9641);
    assert_eq!(coturn[0].container["name"].as_str(), Some("coturn"));
    assert_eq!(coturn[0].path, "/metrics");
    assert_eq!(coturn[0].labels["namespace"], TURN_NAMESPACE);
    let monitor = find(&docs, "PodMonitor", "msg-coturn");
    assert_eq!(monitor["metadata"]["labels"]["release"], "monitoring");
    let ds = find(&docs, "DaemonSet", "msg-coturn");
    assert_eq!(ds["spec"]["template"]["spec"]["hostNetwork"], true);

    // Prometheus's namespace may reach that port, nothing else (where the network plugin
    // applies policies to host-network pods at all).
    let policy = find(&docs, "NetworkPolicy", "msg-coturn-metrics");
    assert_eq!(policy["metadata"]["namespace"], TURN_NAMESPACE);
    let selector = &policy["spec"]["podSelector"]["matchLabels"];
    for (k, v) in selector.as_mapping().unwrap() {
        assert_eq!(
            &ds["spec"]["template"]["metadata"]["labels"][k.as_str().unwrap()],
            v
        );
    }
    let ingress = policy["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["from"],
        serde_norway::from_str::<Value>(
            "[{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}}]"
        )
        .unwrap()
    );
    assert_eq!(
        ingress[0]["ports"],
        serde_norway::from_str::<Value>("[{protocol: TCP, port: 9641}]").unwrap()
    );
    assert!(policy["spec"]["egress"].is_null());

    // The port is a site value: every place follows it.
    let docs = documents(&render("1k", &["--set", "coturn.metrics.port=9700"]));
    assert_eq!(exporter_options(&docs)[1].1, "9700");
    let (targets, _) = monitor_targets(&docs, "matrix");
    assert!(targets
        .iter()
        .any(|t| t.monitor == "PodMonitor/msg-coturn" && t.container_port == 9700));
    assert_eq!(
        find(&docs, "NetworkPolicy", "msg-coturn-metrics")["spec"]["ingress"][0]["ports"][0]
            ["port"],
        9700
    );

    // Off (coturn.metrics.enabled false, or no monitoring): no exporter, port, monitor or
    // policy.
    for off in ["coturn.metrics.enabled=false", "monitoring.enabled=false"] {
        let docs = documents(&render("1k", &["--set", off]));
        assert!(exporter_options(&docs).is_empty(), "{off}");
        let ds = find(&docs, "DaemonSet", "msg-coturn");
        let ports = &ds["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert!(
            !ports
                .as_sequence()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "metrics"),
            "{off}"
        );
        for (kind, name) in [
            ("PodMonitor", "msg-coturn"),
            ("NetworkPolicy", "msg-coturn-metrics"),
        ] {
            assert!(
                !docs
                    .iter()
                    .any(|d| d["kind"] == kind && d["metadata"]["name"].as_str() == Some(name)),
                "{off}: {kind}/{name}"
            );
        }
    }
}

#[test]
fn coturns_metrics_port_must_not_be_one_of_its_or_livekits_node_ports() {
    let out = stack_chart::template("1k", &["--set", "coturn.metrics.port=3478"]).failed();
    assert!(
        out.stderr
            .contains("coturn.metrics.port: 3478 is already a TCP port of coturn or LiveKit"),
        "{}",
        out.stderr
    );
    // On the host network LiveKit's ports share the node.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "calls.yaml", HOST_NETWORK);
    let args = [
        "-f",
        file.to_str().unwrap(),
        "--set",
        "coturn.metrics.port=6789",
    ];
    let out = stack_chart::template("1k", &args).failed();
    assert!(
        out.stderr.contains("coturn.metrics.port: 6789"),
        "{}",
        out.stderr
    );
    let file = write(dir.path(), "calls.yaml", NODE_PORT);
    let args = [
        "-f",
        file.to_str().unwrap(),
        "--set",
        "coturn.metrics.port=6789",
    ];
    stack_chart::template("1k", &args).ok();
}

#[test]
fn livekits_exporter_is_selected_where_livekit_runs_in_both_network_modes() {
    for (overlay, namespace) in [(NODE_PORT, "matrix"), (HOST_NETWORK, TURN_NAMESPACE)] {
        let docs = render_with(overlay);
        let config: Value =
            serde_norway::from_str(&config_map_key(&docs, "msg-livekit", "config.yaml")).unwrap();
        let port = config["prometheus"]["port"].as_u64().unwrap();
        let (targets, _) = monitor_targets(&docs, "matrix");
        let livekit: Vec<_> = targets
            .iter()
            .filter(|t| t.monitor == "PodMonitor/msg-livekit")
            .collect();
        assert!(!livekit.is_empty(), "{namespace}: {targets:?}");
        for t in &livekit {
            assert_eq!(t.container_port, port, "{namespace}");
            assert_eq!(t.labels["namespace"], namespace);
            assert_eq!(t.path, "/metrics");
        }
        assert_eq!(
            find(&docs, "Deployment", "msg-livekit")["metadata"]["namespace"],
            namespace
        );
        if namespace == "matrix" {
            let policy = find(&docs, "NetworkPolicy", "msg-livekit");
            let from_monitoring = policy["spec"]["ingress"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|r| {
                    r["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                        == "monitoring"
                })
                .expect("an ingress rule from the monitoring namespace");
            assert_eq!(
                from_monitoring["ports"],
                serde_norway::from_str::<Value>(&format!("[{{protocol: TCP, port: {port}}}]"))
                    .unwrap()
            );
        }
    }
}

/// LiveKit's and coturn's series the Calls dashboard must read.
const CALL_METRICS: &[&str] = &[
    "livekit_room_total",
    "livekit_participant_total",
    "livekit_packet_total",
    "livekit_packet_bytes",
    "livekit_nack_total",
    "livekit_packet_loss_total",
    "turn_total_allocations",
    "turn_total_traffic_rcvb",
];

#[test]
fn the_calls_dashboard_reads_livekit_and_coturn_where_they_run() {
    let listed = cluster_only();
    for (overlay, livekit_ns) in [(NODE_PORT, "matrix"), (HOST_NETWORK, TURN_NAMESPACE)] {
        let docs = render_with(overlay);
        let calls = dashboards(&docs)
            .into_iter()
            .find(|(name, _)| name == "msg-dashboard-calls")
            .map(|(_, d)| d)
            .expect("the Calls dashboard");
        let exprs = queries(&calls);
        for metric in CALL_METRICS {
            let reading: Vec<&String> = exprs
                .iter()
                .filter(|e| crate::harness::prometheus::metric_names(e).contains(*metric))
                .collect();
            assert!(!reading.is_empty(), "no panel reads {metric}");
            let ns = if metric.starts_with("livekit_") {
                livekit_ns
            } else {
                TURN_NAMESPACE
            };
            for expr in reading {
                assert!(
                    expr.contains(&format!("namespace=\"{ns}\"")),
                    "{metric} read outside {ns}: {expr}"
                );
            }
        }
        // Every LiveKit and coturn metric it names is listed with its upstream source.
        for expr in &exprs {
            for metric in crate::harness::prometheus::metric_names(expr) {
                let (source, _) = match metric.split('_').next() {
                    Some("livekit" | "turn") => listed
                        .get(&metric)
                        .unwrap_or_else(|| panic!("{metric} not in cluster-only-metrics.txt")),
                    _ => continue,
                };
                let upstream = if metric.starts_with("livekit_") {
                    "pkg/telemetry/prometheus/"
                } else {
                    "src/apps/relay/prom_server.c"
                };
                assert!(source.contains(upstream), "{metric}: {source}");
            }
        }
    }
}
