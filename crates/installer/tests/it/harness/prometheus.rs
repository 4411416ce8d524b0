//! A real Prometheus (Debian's `prometheus`) and the Prometheus side of the chart's monitors:
//! the targets its ServiceMonitors and PodMonitors select among the rendered objects, the
//! metric names a PromQL expression reads, and `promtool check rules`.

use super::encode;
use serde_json::Value as Json;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use test_support::net::{http_get, listening, wait_for};
use test_support::ports::reserved_port;
use test_support::process::Service;

/// A running Prometheus on a loopback port; stopped when dropped.
pub struct Prometheus {
    pub port: u16,
    pub service: Service,
}

/// Checks `config` with `promtool check config`, writes it with `rules` (a rule file's
/// text) into `dir` and starts Prometheus on it, evaluating rules every second.
pub fn start(dir: &Path, config: &str, rules: &str) -> Prometheus {
    test_support::require("prometheus", "apt-get install -y prometheus");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    if let Err(message) = promtool("config", &config_path) {
        panic!("promtool check config:\n{message}\n{config}");
    }
    let port = reserved_port();
    let mut command = Command::new("prometheus");
    command
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let mut service = Service::spawn("prometheus", command, &dir.join("prometheus.log"));
    wait_for("prometheus", Duration::from_secs(30), || {
        service.assert_running();
        listening(port) && http_get(port, "/-/ready").is_some_and(|(s, _)| s == 200)
    });
    Prometheus { port, service }
}

impl Prometheus {
    fn api(&self, path: &str) -> Json {
        let (status, body) =
            http_get(self.port, path).unwrap_or_else(|| panic!("prometheus did not answer {path}"));
        assert_eq!(status, 200, "{path}: {body}");
        let json: Json = serde_json::from_str(&body).unwrap();
        json["data"].clone()
    }

    /// The instant vector of `expr`, each element's labels and value.
    pub fn query(&self, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        data["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let value = r["value"][1].as_str().unwrap_or("NaN").parse().unwrap();
                (labels, value)
            })
            .collect()
    }

    /// Every metric name Prometheus holds a series of.
    pub fn names(&self) -> BTreeSet<String> {
        self.api("/api/v1/label/__name__/values")
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    }

    /// Polls `expr` until `done` holds for its result; panics with the last result after
    /// `timeout`.
    pub fn wait_until(
        &mut self,
        expr: &str,
        timeout: Duration,
        done: impl Fn(&[(BTreeMap<String, String>, f64)]) -> bool,
    ) -> Vec<(BTreeMap<String, String>, f64)> {
        let deadline = Instant::now() + timeout;
        loop {
            self.service.assert_running();
            let result = self.query(expr);
            if done(&result) {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "{expr}: not as expected after {timeout:?}; last {result:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// `promtool check rules` on a rule file's text: Ok, or promtool's message.
pub fn check_rules(dir: &Path, text: &str) -> Result<(), String> {
    let path = dir.join("check-rules.yaml");
    std::fs::write(&path, text).unwrap();
    promtool("rules", &path)
}

/// `promtool check <what> <file>`: Ok, or promtool's output.
fn promtool(what: &str, file: &Path) -> Result<(), String> {
    test_support::require("promtool", "apt-get install -y prometheus");
    let out = Command::new("promtool")
        .args(["check", what])
        .arg(file)
        .output()
        .unwrap();
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The rule groups of every PrometheusRule among `docs`.
pub fn rule_groups(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some("PrometheusRule"))
        .flat_map(|d| {
            d["spec"]["groups"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// A rule file with one recording rule per expression (`check:<n>`), for promtool's parser.
pub fn recording_rules(exprs: &[String]) -> String {
    let rules: Vec<Json> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("check:{i}"), "expr": e}))
        .collect();
    serde_norway::to_string(&serde_json::json!({"groups": [{"name": "check", "rules": rules}]}))
        .unwrap()
}

/// Skips from `chars[i]` (an opening `open`) past its matching `close`, stepping over quoted
/// strings; returns the index after it.
fn skip_group(chars: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
        } else if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// The metric names a PromQL expression reads: identifiers outside label matchers, ranges
/// and grouping lists that are neither functions nor keywords.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Operators, modifiers and the aggregations (which may take `by (...)` before their
    // parentheses): never metric names in the chart's queries.
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i = skip_group(&chars, i, c, c);
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident(c) {
            let start = i;
            while i < chars.len() && ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if GROUPING.contains(&word.as_str()) {
                if call {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if !call && !KEYWORDS.contains(&word.to_lowercase().as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// One scrape target a monitor selects among the rendered objects.
#[derive(Debug, Clone)]
pub struct Target {
    /// `<Kind>/<name>` of the monitor.
    pub monitor: String,
    /// The pod (`<workload>-<ordinal>`).
    pub pod: String,
    /// The container's port number the endpoint resolves to.
    pub container_port: u64,
    /// The container that declares it.
    pub container: Value,
    /// The scrape path (`/metrics` unless the endpoint says).
    pub path: String,
    /// The labels prometheus-operator gives its samples: namespace, job, pod, container,
    /// endpoint, service (ServiceMonitors), and the endpoint's relabelings.
    pub labels: BTreeMap<String, String>,
}

/// A workload's pods as rendered: names, template labels and containers.
struct Pods<'a> {
    names: Vec<String>,
    labels: BTreeMap<String, String>,
    containers: Vec<&'a Value>,
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), scalar(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn workloads(docs: &[Value]) -> Vec<Pods<'_>> {
    docs.iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("StatefulSet" | "Deployment" | "DaemonSet")
            )
        })
        .map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            // A DaemonSet's pods (one per selected node) stand as one, `<name>-0`.
            let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
            Pods {
                names: (0..replicas).map(|i| format!("{name}-{i}")).collect(),
                labels: string_map(&d["spec"]["template"]["metadata"]["labels"]),
                containers: d["spec"]["template"]["spec"]["containers"]
                    .as_sequence()
                    .map(|c| c.iter().collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Whether `labels` meet a label selector (matchLabels, matchExpressions In/NotIn/Exists).
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_label = string_map(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = selector["matchExpressions"]
        .as_sequence()
        .map(|exprs| {
            exprs.iter().all(|e| {
                let key = e["key"].as_str().unwrap_or_default();
                let values: Vec<&str> = e["values"]
                    .as_sequence()
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e["operator"].as_str() {
                    Some("In") => labels
                        .get(key)
                        .is_some_and(|v| values.contains(&v.as_str())),
                    Some("NotIn") => !labels
                        .get(key)
                        .is_some_and(|v| values.contains(&v.as_str())),
                    Some("Exists") => labels.contains_key(key),
                    Some("DoesNotExist") => !labels.contains_key(key),
                    _ => false,
                }
            })
        })
        .unwrap_or(true);
    by_label && by_expression
}

/// The container (and port number) declaring port `port` (a name or a number).
fn container_port<'a>(containers: &[&'a Value], port: &Value) -> Option<(&'a Value, u64)> {
    containers.iter().find_map(|c| {
        c["ports"].as_sequence()?.iter().find_map(|p| {
            let number = p["containerPort"].as_u64()?;
            let hit = match port {
                Value::String(name) => p["name"].as_str() == Some(name),
                Value::Number(n) => n.as_u64() == Some(number),
                _ => false,
            };
            hit.then_some((*c, number))
        })
    })
}

/// Prometheus's label name for a Kubernetes label (`app.kubernetes.io/name` becomes
/// `app_kubernetes_io_name`).
fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Applies an endpoint's `replace` relabelings whose sources are the service's or pod's
/// Kubernetes labels (the only kind the chart's monitors use); any other relabeling fails,
/// so a new kind is not silently ignored.
fn relabel(
    endpoint: &Value,
    service: &BTreeMap<String, String>,
    pod: &BTreeMap<String, String>,
    out: &mut BTreeMap<String, String>,
) {
    let meta: BTreeMap<String, String> = service
        .iter()
        .map(|(k, v)| {
            (
                format!("__meta_kubernetes_service_label_{}", sanitize(k)),
                v.clone(),
            )
        })
        .chain(pod.iter().map(|(k, v)| {
            (
                format!("__meta_kubernetes_pod_label_{}", sanitize(k)),
                v.clone(),
            )
        }))
        .collect();
    for rule in endpoint["relabelings"].as_sequence().into_iter().flatten() {
        let action = rule["action"].as_str().unwrap_or("replace");
        let sources: Vec<&str> = rule["sourceLabels"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let target = rule["targetLabel"].as_str();
        assert!(
            action == "replace"
                && rule.get("regex").is_none()
                && sources.len() == 1
                && target.is_some(),
            "relabeling {rule:?}: only a plain replace from one label is understood here"
        );
        if let (Some(value), Some(target)) = (meta.get(sources[0]), target) {
            out.insert(target.to_string(), value.clone());
        }
    }
}

/// Every target the rendered ServiceMonitors and PodMonitors select among the rendered
/// Services, StatefulSets, Deployments and DaemonSets, with the labels prometheus-operator
/// gives it.
/// Monitors whose pods an operator starts (CNPG's) select nothing here: see `unmatched`.
pub fn monitor_targets(docs: &[Value], namespace: &str) -> (Vec<Target>, Vec<String>) {
    let pods = workloads(docs);
    let mut targets = Vec::new();
    let mut unmatched = Vec::new();
    for monitor in docs
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ServiceMonitor" | "PodMonitor")))
    {
        let kind = monitor["kind"].as_str().unwrap_or_default();
        let name = monitor["metadata"]["name"].as_str().unwrap_or_default();
        let ns = monitor["metadata"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        let id = format!("{kind}/{name}");
        let before = targets.len();
        if kind == "ServiceMonitor" {
            for service in docs.iter().filter(|d| {
                d["kind"].as_str() == Some("Service")
                    && d["metadata"]["namespace"].as_str().unwrap_or(namespace) == ns
                    && selects(
                        &monitor["spec"]["selector"],
                        &string_map(&d["metadata"]["labels"]),
                    )
            }) {
                let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
                let service_labels = string_map(&service["metadata"]["labels"]);
                for endpoint in monitor["spec"]["endpoints"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let Some(port) = service["spec"]["ports"].as_sequence().and_then(|ports| {
                        ports
                            .iter()
                            .find(|p| p["name"].as_str() == endpoint["port"].as_str())
                    }) else {
                        continue;
                    };
                    let target_port = port.get("targetPort").unwrap_or(&port["port"]);
                    let selector = Value::Mapping(
                        [(
                            Value::from("matchLabels"),
                            service["spec"]["selector"].clone(),
                        )]
                        .into_iter()
                        .collect(),
                    );
                    let service = Some((service_name, &service_labels));
                    for workload in pods.iter().filter(|w| selects(&selector, &w.labels)) {
                        targets.extend(endpoint_targets(
                            &id,
                            ns,
                            service_name,
                            service,
                            workload,
                            endpoint,
                            target_port,
                        ));
                    }
                }
            }
        } else {
            for workload in pods
                .iter()
                .filter(|w| selects(&monitor["spec"]["selector"], &w.labels))
            {
                for endpoint in monitor["spec"]["podMetricsEndpoints"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                {
                    let job = format!("{ns}/{name}");
                    targets.extend(endpoint_targets(
                        &id,
                        ns,
                        &job,
                        None,
                        workload,
                        endpoint,
                        &endpoint["port"],
                    ));
                }
            }
        }
        if targets.len() == before {
            unmatched.push(id);
        }
    }
    (targets, unmatched)
}

/// The targets of one monitor endpoint on `workload`'s container `port`, one per pod, with
/// the labels prometheus-operator gives them: `job`, and `service` when a ServiceMonitor
/// found the pods through a Service (`service`: its name and labels).
fn endpoint_targets(
    monitor: &str,
    ns: &str,
    job: &str,
    service: Option<(&str, &BTreeMap<String, String>)>,
    workload: &Pods<'_>,
    endpoint: &Value,
    port: &Value,
) -> Vec<Target> {
    let Some((container, number)) = container_port(&workload.containers, port) else {
        return Vec::new();
    };
    let no_labels = BTreeMap::new();
    workload
        .names
        .iter()
        .map(|pod| {
            let mut labels = BTreeMap::from([
                ("namespace".to_string(), ns.to_string()),
                ("job".to_string(), job.to_string()),
                ("pod".to_string(), pod.clone()),
                (
                    "container".to_string(),
                    container["name"].as_str().unwrap_or_default().to_string(),
                ),
                (
                    "endpoint".to_string(),
                    endpoint["port"].as_str().unwrap_or_default().to_string(),
                ),
            ]);
            if let Some((name, _)) = service {
                labels.insert("service".to_string(), name.to_string());
            }
            let service_labels = service.map(|(_, l)| l).unwrap_or(&no_labels);
            relabel(endpoint, service_labels, &workload.labels, &mut labels);
            Target {
                monitor: monitor.to_string(),
                pod: pod.clone(),
                container_port: number,
                container: container.clone(),
                path: endpoint["path"].as_str().unwrap_or("/metrics").to_string(),
                labels,
            }
        })
        .collect()
}

/// A Prometheus configuration scraping `targets` (each `(address, path, labels)`) every
/// second and loading `rules.yaml` beside it.
pub fn config(targets: &[(String, String, BTreeMap<String, String>)]) -> String {
    let scrape: Vec<Json> = targets
        .iter()
        .enumerate()
        .map(|(i, (address, path, labels))| {
            serde_json::json!({
                "job_name": format!("target-{i}"),
                "metrics_path": path,
                "static_configs": [{"targets": [address], "labels": labels}],
            })
        })
        .collect();
    serde_norway::to_string(&serde_json::json!({
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yaml"],
        "scrape_configs": scrape,
    }))
    .unwrap()
}

/// Starts an exporter `program` with `args` and `env` and waits until `port` answers.
pub fn exporter(
    dir: &Path,
    name: &str,
    program: &str,
    args: &[String],
    env: &[(String, String)],
    port: u16,
) -> Service {
    let mut command = Command::new(program);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    let mut service = Service::spawn(name, command, &dir.join(format!("{name}.log")));
    wait_for(name, Duration::from_secs(20), || {
        service.assert_running();
        listening(port)
    });
    service
}
