//! Scraping as deployed: a real Prometheus (Debian's) scrapes the rehearsal stack (profile 100
//! with one instance of every worker) at the targets, paths and labels the chart's rendered
//! ServiceMonitors and PodMonitors select, loads the chart's rendered PrometheusRules, and:
//! every target is up; every metric a dashboard or rule reads is scraped here or listed in
//! fixtures/cluster-only-metrics.txt (and nothing listed there is scraped here); when the test
//! stops a Synapse worker, its target goes down and the chart's HAProxyServerDown alert fires.
//!
//! Stand-ins, as the pods would run them: Valkey and Sentinel pods get the chart's sidecar
//! exporter (Debian's prometheus-redis-exporter, with the sidecar's environment pointed at the
//! local server); CloudNativePG's instance exporter cannot run outside its instance manager,
//! so the PostgreSQL PodMonitor's target is Debian's prometheus-postgres-exporter on the
//! harness's PostgreSQL (it serves pg_* names, not cnpg_*: the cnpg_* names are listed as
//! cluster-only); node_* come from Debian's prometheus-node-exporter as kube-prometheus-stack's
//! node-exporter job. Scrape and rule-evaluation intervals are 1s here (30s in the monitors),
//! and HAProxyServerDown's `for` is shortened to 5s: its expression is the rendered one.

use crate::harness::antivirus::MARKER;
use crate::harness::prometheus::{self, config, exporter, monitor_targets, Target};
use crate::harness::stack::{self, Source, Stack};
use crate::monitoring_dashboards::{cluster_only, metrics_read};
use crate::stack_chart::{documents, render};
use installer::smoke::MatrixClient;
use serde_norway::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use test_support::ports::reserved_port;
use test_support::process::Service;

/// The monitors whose pods an operator or a part the rehearsal does not run starts: the
/// PgBouncer poolers (CNPG), Garage (no binary here), coturn (the rehearsal runs no TURN,
/// and Debian's turnserver has no exporter; monitoring_calls.rs), LiveKit (calls are off in
/// the rehearsal's values). PostgreSQL's instances are CNPG's too, with a stand-in above.
const NOT_IN_THE_REHEARSAL: &[&str] = &[
    "PodMonitor/msg-pg-pooler",
    "ServiceMonitor/msg-garage",
    "PodMonitor/msg-coturn",
];

fn start(dir: &Path) -> (Stack, Vec<Value>) {
    let repo = test_support::workspace_root();
    let chart = repo.join("charts/messenger");
    let site = repo.join("tests/fixtures/site/site.yaml");
    let profile = chart.join("profiles/100.yaml");
    let every_worker = repo.join("tests/fixtures/site/every-worker.yaml");
    let stack = stack::start(
        &Source {
            chart: &chart,
            release: "msg",
            namespace: "matrix",
            values: &[&site, &profile, &every_worker],
        },
        dir,
    );
    let docs = documents(&render("100", &["-f", every_worker.to_str().unwrap()]));
    (stack, docs)
}

/// The Synapse process a pod of the chart runs as: `main` for synapse-main, else the
/// instance whose name ends the pod's (the longest such, `client-reader-0` before
/// `reader-0`).
fn synapse_port(stack: &Stack, pod: &str) -> Option<u16> {
    let process = if pod.contains("-synapse-main-") {
        stack.synapse.iter().find(|p| p.instance == "main")
    } else {
        stack
            .synapse
            .iter()
            .filter(|p| pod.ends_with(&format!("-{}", p.instance)))
            .max_by_key(|p| p.instance.len())
    };
    process.and_then(|p| p.metrics_port)
}

/// Starts the chart's redis_exporter sidecar of `target`'s pod against the harness's server
/// or sentinel of the same ordinal: the sidecar's environment, its address pointed at the
/// local port and its listener at a loopback port.
fn valkey_exporter(stack: &Stack, dir: &Path, target: &Target) -> (Service, u16) {
    let ordinal: usize = target.pod.rsplit('-').next().unwrap().parse().unwrap();
    let sentinel = target.pod.contains("-valkey-sentinel-");
    let node = if sentinel {
        &stack.redis.sentinels[ordinal]
    } else {
        &stack.redis.servers[ordinal]
    };
    let port = reserved_port();
    let mut env = Vec::new();
    for var in target.container["env"].as_sequence().into_iter().flatten() {
        let name = var["name"].as_str().unwrap().to_string();
        let value = match name.as_str() {
            "REDIS_ADDR" => {
                let addr = var["value"].as_str().unwrap();
                assert!(addr.starts_with("redis://localhost:"), "{addr}");
                format!("redis://127.0.0.1:{}", node.port)
            }
            "REDIS_PASSWORD" => {
                // The harness's sentinels run without the password the chart's start script
                // gives them; its servers with it.
                if sentinel && stack.redis.cli(node.port, &["PING"]).contains("PONG") {
                    continue;
                }
                stack.valkey_password.clone()
            }
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS" => format!("127.0.0.1:{port}"),
            _ => var["value"].as_str().unwrap_or_default().to_string(),
        };
        env.push((name, value));
    }
    assert!(
        env.iter()
            .any(|(k, _)| k == "REDIS_EXPORTER_WEB_LISTEN_ADDRESS"),
        "the sidecar sets its listener: {env:?}"
    );
    let service = exporter(
        dir,
        &format!("exporter-{}", target.pod),
        "prometheus-redis-exporter",
        &[],
        &env,
        port,
    );
    (service, port)
}

#[test]
fn prometheus_scrapes_what_the_monitors_select_and_an_alert_fires_when_a_worker_stops() {
    for (tool, package) in [
        ("prometheus", "prometheus"),
        ("prometheus-redis-exporter", "prometheus-redis-exporter"),
        (
            "prometheus-postgres-exporter",
            "prometheus-postgres-exporter",
        ),
        ("prometheus-node-exporter", "prometheus-node-exporter"),
    ] {
        test_support::require(tool, &format!("apt-get install -y {package}"));
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let (mut stack, docs) = start(&dir.join("stack"));
    let (targets, unmatched) = monitor_targets(&docs, "matrix");

    let mut exporters = Vec::new();
    let mut scrape = Vec::new();
    for target in &targets {
        let port = match target.monitor.as_str() {
            "ServiceMonitor/msg-synapse" => {
                synapse_port(&stack, &target.pod).unwrap_or_else(|| {
                    panic!("no Synapse process with a metrics port for {}", target.pod)
                })
            }
            "ServiceMonitor/msg-haproxy" => *stack
                .front_binds
                .get(&(target.container_port as u16))
                .unwrap_or_else(|| panic!("HAProxy binds no {}", target.container_port)),
            "PodMonitor/msg-valkey" => {
                let (service, port) = valkey_exporter(&stack, dir, target);
                exporters.push(service);
                port
            }
            m if NOT_IN_THE_REHEARSAL.contains(&m) => continue,
            other => panic!(
                "{other} selects {} but the test has no process for it",
                target.pod
            ),
        };
        scrape.push((
            format!("127.0.0.1:{port}"),
            target.path.clone(),
            target.labels.clone(),
        ));
    }
    let per_monitor = |m: &str| targets.iter().filter(|t| t.monitor == m).count();
    assert_eq!(
        per_monitor("ServiceMonitor/msg-synapse"),
        stack.synapse.len(),
        "every Synapse process, main and each worker, is a target"
    );
    // Every HAProxy pod; here each is the one local HAProxy.
    let haproxy = docs
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("Deployment")
                && d["metadata"]["name"].as_str() == Some("msg-haproxy")
        })
        .and_then(|d| d["spec"]["replicas"].as_u64())
        .unwrap();
    assert_eq!(per_monitor("ServiceMonitor/msg-haproxy") as u64, haproxy);
    assert_eq!(
        per_monitor("PodMonitor/msg-valkey"),
        stack.redis.servers.len() + stack.redis.sentinels.len(),
        "every Valkey and Sentinel pod"
    );

    // CloudNativePG's instances: the PodMonitor selects pods the operator starts.
    let mut cnpg = Vec::new();
    for monitor in &unmatched {
        if NOT_IN_THE_REHEARSAL.contains(&monitor.as_str()) {
            continue;
        }
        assert_eq!(
            monitor, "PodMonitor/msg-pg",
            "a monitor selects nothing: {monitor}"
        );
        let port = reserved_port();
        exporters.push(exporter(
            dir,
            "postgres-exporter",
            "prometheus-postgres-exporter",
            &[format!("--web.listen-address=127.0.0.1:{port}")],
            &[(
                "DATA_SOURCE_NAME".into(),
                format!(
                    "postgresql://synapse@127.0.0.1:{}/synapse?sslmode=disable",
                    stack.postgres_port
                ),
            )],
            port,
        ));
        let labels = BTreeMap::from([
            ("namespace".to_string(), "matrix".to_string()),
            ("job".to_string(), "matrix/msg-pg".to_string()),
            ("pod".to_string(), "msg-pg-1".to_string()),
            ("endpoint".to_string(), "metrics".to_string()),
        ]);
        scrape.push((format!("127.0.0.1:{port}"), "/metrics".into(), labels));
        cnpg.push(port);
    }
    assert_eq!(cnpg.len(), 1, "the PostgreSQL PodMonitor: {unmatched:?}");
    let node_port = reserved_port();
    exporters.push(exporter(
        dir,
        "node-exporter",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{node_port}")],
        &[],
        node_port,
    ));
    scrape.push((
        format!("127.0.0.1:{node_port}"),
        "/metrics".into(),
        BTreeMap::from([("job".to_string(), "node-exporter".to_string())]),
    ));

    // The chart's rules as rendered, HAProxyServerDown's `for` shortened.
    let mut rules = prometheus::rule_groups(&docs);
    let mut shortened = 0;
    for group in &mut rules {
        for rule in group["rules"].as_sequence_mut().into_iter().flatten() {
            if rule["alert"].as_str() == Some("HAProxyServerDown") {
                rule["for"] = Value::from("5s");
                shortened += 1;
            }
        }
    }
    assert_eq!(shortened, 1, "the chart renders HAProxyServerDown once");
    let rules_text = serde_norway::to_string(&serde_json::json!({ "groups": rules })).unwrap();
    let mut prom = prometheus::start(&dir.join("prometheus"), &config(&scrape), &rules_text);

    // Every target up.
    let expected = scrape.len() as f64;
    prom.wait_until("sum(up)", Duration::from_secs(60), |r| {
        r.first().is_some_and(|(_, v)| *v == expected)
    });
    // Traffic, so the series Synapse registers on first use exist: a user, a room, a message,
    // uploads scanned clean, infected, and without clamd (the antivirus counters).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let secret = stack.registration_secret.clone();
    let admin = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.admin_port), None).unwrap();
    let front = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.front_port), None).unwrap();
    let user = runtime.block_on(async {
        let user = front.acting_as(
            &admin
                .register(secret.as_bytes(), "monitoring-a", "monitoring-pw")
                .await
                .unwrap(),
        );
        let room = user.create_room("monitoring").await.unwrap();
        user.send_text(&room, "m1", "hello").await.unwrap();
        user.upload(b"clean".to_vec(), "text/plain", "clean.txt")
            .await
            .unwrap();
        assert!(user
            .upload(MARKER.to_vec(), "application/octet-stream", "bad.bin")
            .await
            .is_err());
        user
    });
    if let Some(antivirus) = stack.antivirus.as_mut() {
        antivirus.clamd.stop();
        // Refused (fail closed) or let through: either way counted as a failure.
        let _ = runtime.block_on(user.upload(b"unscanned".to_vec(), "text/plain", "u.txt"));
    }
    // A few scrapes more.
    std::thread::sleep(Duration::from_secs(5));

    // Every metric a dashboard or rule reads: scraped here, or listed as cluster-only.
    let scraped = prom.names();
    let listed = cluster_only();
    let read = metrics_read(&docs);
    let missing: Vec<String> = read
        .iter()
        .filter(|(m, _)| !scraped.contains(*m) && !listed.contains_key(*m))
        .map(|(m, who)| {
            format!(
                "{m} (read by {})",
                who.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "metrics neither scraped from the rehearsal nor listed in \
         cluster-only-metrics.txt:\n  {}",
        missing.join("\n  ")
    );
    let exposed_here: Vec<&String> = listed.keys().filter(|m| scraped.contains(*m)).collect();
    assert!(
        exposed_here.is_empty(),
        "listed as cluster-only but scraped here: {exposed_here:?}"
    );
    let mut by_job: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, labels) in &scrape {
        *by_job.entry(labels["job"].as_str()).or_default() += 1;
    }
    eprintln!("targets by job: {by_job:?}");
    eprintln!(
        "{} targets up; {} metrics read by dashboards and rules: {} scraped here, {} cluster-only",
        scrape.len(),
        read.len(),
        read.keys().filter(|m| scraped.contains(*m)).count(),
        read.keys().filter(|m| listed.contains_key(*m)).count()
    );

    // Healthy: the alert is silent.
    let alert = r#"ALERTS{alertname="HAProxyServerDown", alertstate="firing"}"#;
    assert!(
        prom.query(alert).is_empty(),
        "HAProxyServerDown fires on a healthy stack"
    );

    // Stop a worker HAProxy routes to: its target goes down and the alert fires for it.
    let victim = stack
        .synapse
        .iter()
        .map(|p| p.instance.clone())
        .find(|i| i.starts_with("synchrotron"))
        .expect("a synchrotron instance");
    let pod = targets
        .iter()
        .find(|t| {
            t.monitor == "ServiceMonitor/msg-synapse"
                && synapse_port(&stack, &t.pod) == stack.synapse(&victim).metrics_port
        })
        .map(|t| t.pod.clone())
        .unwrap();
    stack.synapse_mut(&victim).service.kill();
    prom.wait_until(
        &format!(r#"up{{pod="{pod}"}}"#),
        Duration::from_secs(30),
        |r| r.len() == 1 && r[0].1 == 0.0,
    );
    let fired = prom.wait_until(alert, Duration::from_secs(90), |r| !r.is_empty());
    let labels = &fired[0].0;
    assert_eq!(labels.get("severity").map(String::as_str), Some("warning"));
    assert_eq!(labels.get("namespace").map(String::as_str), Some("matrix"));
    assert!(
        labels.get("server").is_some_and(|s| s.contains(&victim)),
        "the alert names the stopped instance {victim}: {labels:?}"
    );
    drop(prom);
    drop(exporters);
}
