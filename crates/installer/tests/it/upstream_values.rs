//! The values files of the upstream releases (`charts/upstream/`, compiled into the installer)
//! are checked like our own chart, without the charts themselves, which cannot be downloaded
//! here: each parses as YAML; every key path it sets is one its pinned chart's default values
//! define (`tests/fixtures/upstream-values-keys/<chart>.txt`, derived from the chart by
//! `scripts/upstream-value-keys.sh`); the settings that keep the stack off the internet, leave
//! out images the bundle does not carry and install the CRDs are there; every resources block
//! has CPU and memory requests and a memory limit no smaller than the request; no security
//! context is loosened. Each check is also shown to fail on a bad file. And `installer deploy
//! --dry-run` of a bundle with a stand-in upstream chart renders it with the compiled-in file.
//!
//! With `UPSTREAM_CHARTS=DIR` (the pinned charts, each as `DIR/<chart>/` or
//! `DIR/<chart>-<version>.tgz`) every upstream release is also rendered with helm and its
//! output checked: the chart is the fixture's version, every container has requests and a
//! memory limit and a restricted security context, the internet switches reach the rendered
//! configuration, no helm test pod is rendered, and the core kinds pass
//! `kubernetes-validate --strict`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use installer::deploy::upstream_values;
use online::discover::{documents, object_name};
use online::spec::{Release, LOCKED_PREFIX};
use serde_norway::Value;
use test_support::p;

/// Keys below which a values file may set anything: maps the charts hand to Kubernetes as
/// they are (pod and container security contexts, container resources), checked by the API
/// server's schema and, with the charts, by the rendering test.
const PASS_THROUGH: &[&str] = &[
    "resources",
    "securityContext",
    "containerSecurityContext",
    "podSecurityContext",
];

/// What each upstream chart's values file must hold beyond known keys.
struct Chart {
    /// The chart's name (`locked:NAME` in releases.toml, the fixture's file name).
    name: &'static str,
    /// Maps handed to the program's own configuration file as they are, whose keys the
    /// chart's defaults cannot list (checked against the program's reference instead).
    free_form: &'static [&'static [&'static str]],
    /// Settings the file must hold: key path, value (YAML), why.
    required: &'static [(&'static [&'static str], &'static str, &'static str)],
    /// Text the rendered manifests must contain (with `UPSTREAM_CHARTS`).
    rendered: &'static [&'static str],
}

const GRAFANA_INI: &[&str] = &["grafana", "grafana.ini"];

const CHARTS: &[Chart] = &[
    Chart {
        name: "cert-manager",
        free_form: &[],
        required: &[(&["crds", "enabled"], "true", "the chart installs its CRDs")],
        rendered: &["kind: CustomResourceDefinition"],
    },
    Chart {
        name: "cloudnative-pg",
        free_form: &[],
        required: &[(&["crds", "create"], "true", "the chart installs its CRDs")],
        rendered: &["kind: CustomResourceDefinition"],
    },
    Chart {
        name: "plugin-barman-cloud",
        free_form: &[],
        required: &[(&["crds", "create"], "true", "the chart installs its CRDs")],
        rendered: &["kind: CustomResourceDefinition"],
    },
    Chart {
        name: "kube-prometheus-stack",
        free_form: &[GRAFANA_INI],
        required: &[
            (&["crds", "enabled"], "true", "the chart installs its CRDs"),
            (
                &["grafana", "plugins"],
                "[]",
                "Grafana downloads listed plugins from grafana.com",
            ),
            (
                &["grafana", "dashboards"],
                "{}",
                "dashboards given by gnetId or URL are downloaded",
            ),
            (
                &["grafana", "testFramework", "enabled"],
                "false",
                "the helm test pod runs an image the bundle does not carry",
            ),
            (
                &["grafana", "initChownData", "enabled"],
                "false",
                "the chown init container runs as root, from an image the bundle does not carry",
            ),
            (
                &["grafana", "grafana.ini", "analytics", "reporting_enabled"],
                "false",
                "usage reports go to stats.grafana.org",
            ),
            (
                &["grafana", "grafana.ini", "analytics", "check_for_updates"],
                "false",
                "update checks call grafana.com",
            ),
            (
                &[
                    "grafana",
                    "grafana.ini",
                    "analytics",
                    "check_for_plugin_updates",
                ],
                "false",
                "plugin update checks call grafana.com",
            ),
            (
                &[
                    "grafana",
                    "grafana.ini",
                    "analytics",
                    "feedback_links_enabled",
                ],
                "false",
                "feedback links point to the internet",
            ),
            (
                &["grafana", "grafana.ini", "news", "news_feed_enabled"],
                "false",
                "the news feed is fetched from grafana.com",
            ),
            (
                &["grafana", "grafana.ini", "plugins", "preinstall_disabled"],
                "true",
                "the plugin preinstaller downloads from grafana.com at start",
            ),
            (
                &["grafana", "grafana.ini", "security", "disable_gravatar"],
                "true",
                "avatars are loaded from gravatar.com",
            ),
            (
                &["grafana", "grafana.ini", "snapshots", "external_enabled"],
                "false",
                "external snapshots are published to snapshots.raintank.io",
            ),
            (
                &[
                    "prometheusOperator",
                    "admissionWebhooks",
                    "certManager",
                    "enabled",
                ],
                "true",
                "the webhook certificate Jobs run an image the bundle does not carry",
            ),
        ],
        rendered: &[
            "reporting_enabled = false",
            "check_for_updates = false",
            "check_for_plugin_updates = false",
            "preinstall_disabled = true",
            "disable_gravatar = true",
            "kind: CustomResourceDefinition",
        ],
    },
    Chart {
        name: "loki",
        free_form: &[],
        required: &[
            (
                &["loki", "analytics", "reporting_enabled"],
                "false",
                "usage reports go to stats.grafana.org",
            ),
            (
                &["lokiCanary", "enabled"],
                "false",
                "the canary runs an image the bundle does not carry",
            ),
            (
                &["test", "enabled"],
                "false",
                "the helm test pod runs an image the bundle does not carry",
            ),
            (
                &["gateway", "enabled"],
                "false",
                "the nginx gateway runs an image the bundle does not carry",
            ),
            (
                &["chunksCache", "enabled"],
                "false",
                "memcached runs an image the bundle does not carry",
            ),
            (
                &["resultsCache", "enabled"],
                "false",
                "memcached runs an image the bundle does not carry",
            ),
        ],
        rendered: &["reporting_enabled: false"],
    },
    Chart {
        name: "alloy",
        free_form: &[],
        required: &[
            (
                &["alloy", "enableReporting"],
                "false",
                "usage reports go to stats.grafana.org",
            ),
            (&["crds", "create"], "true", "the chart installs its CRD"),
        ],
        rendered: &["--disable-reporting"],
    },
    Chart {
        name: "gateway-helm",
        free_form: &[],
        required: &[(&["crds", "enabled"], "true", "the chart installs its CRDs")],
        rendered: &["kind: CustomResourceDefinition"],
    },
];

fn root() -> PathBuf {
    test_support::workspace_root()
}

/// The chart of `name`.
fn chart(name: &str) -> &'static Chart {
    CHARTS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no checks for chart {name}: add it to CHARTS"))
}

/// A release's values files: path as releases.toml writes it, compiled-in text.
type Files = Vec<(String, &'static str)>;

/// Every upstream release with its chart name and its values files.
fn releases() -> Vec<(Release, &'static str, Files)> {
    let plan = installer::deploy::releases().unwrap();
    plan.releases
        .into_iter()
        .filter_map(|r| {
            let name = r.chart.written.strip_prefix(LOCKED_PREFIX)?.to_string();
            let chart = chart(&name).name;
            let files = r
                .values
                .iter()
                .map(|v| {
                    let text = upstream_values::text(&v.written)
                        .unwrap_or_else(|| panic!("{} is not compiled in", v.written));
                    (v.written.clone(), text)
                })
                .collect();
            Some((r, chart, files))
        })
        .collect()
}

/// A key path for messages: keys joined by '.', a '.' inside a key as '\.'.
fn show(path: &[String]) -> String {
    path.iter()
        .map(|k| k.replace('.', "\\."))
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys of a fixture line (`a.b\.c.d`), split at the dots that are not escaped.
fn split(path: &str) -> Vec<String> {
    let mut keys = vec![String::new()];
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => keys.last_mut().unwrap().extend(chars.next()),
            '.' => keys.push(String::new()),
            c => keys.last_mut().unwrap().push(c),
        }
    }
    keys
}

/// A chart's default key paths, read from its fixture.
struct Keys {
    /// The chart version the fixture was derived from.
    version: String,
    /// Every key path with a default value.
    known: BTreeSet<Vec<String>>,
    /// Key paths whose default is an empty map or null: anything may be set below them.
    open: BTreeSet<Vec<String>>,
    /// Every proper prefix of a known key path (the maps on the way).
    maps: BTreeSet<Vec<String>>,
}

impl Keys {
    fn parse(text: &str) -> Keys {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default();
        let version = header
            .strip_prefix("# ")
            .and_then(|h| h.split(':').next())
            .and_then(|h| h.split_whitespace().nth(1))
            .unwrap_or_else(|| panic!("fixture header {header:?} names no chart version"))
            .to_string();
        let mut keys = Keys {
            version,
            known: BTreeSet::new(),
            open: BTreeSet::new(),
            maps: BTreeSet::new(),
        };
        for line in lines.filter(|l| !l.is_empty()) {
            let (path, open) = match line.strip_suffix(" {}").or_else(|| line.strip_suffix(" ~")) {
                Some(path) => (split(path), true),
                None => (split(line), false),
            };
            for end in 1..path.len() {
                keys.maps.insert(path[..end].to_vec());
            }
            if open {
                keys.open.insert(path.clone());
            }
            keys.known.insert(path);
        }
        keys
    }

    fn of(chart: &str) -> Keys {
        let path = root().join(format!(
            "crates/installer/tests/fixtures/upstream-values-keys/{chart}.txt"
        ));
        Keys::parse(&std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (derive it with scripts/upstream-value-keys.sh)",
                path.display()
            )
        }))
    }

    /// Whether a values file may set `path`.
    fn allows(&self, path: &[String], free_form: &[&[&str]]) -> bool {
        if self.known.contains(path) {
            return true;
        }
        let below = |prefix: &[String]| prefix.len() < path.len() && path.starts_with(prefix);
        if self.open.iter().any(|o| below(o)) {
            return true;
        }
        if free_form.iter().any(|f| {
            let f: Vec<String> = f.iter().map(|k| k.to_string()).collect();
            below(&f) && (self.known.contains(&f) || self.maps.contains(&f))
        }) {
            return true;
        }
        (0..path.len()).any(|i| {
            let prefix = &path[..=i];
            PASS_THROUGH.contains(&path[i].as_str())
                && i + 1 < path.len()
                && (self.known.contains(prefix) || self.maps.contains(prefix))
        })
    }
}

/// A mapping key as text.
fn key(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// The key paths a values document sets: down to scalars, lists and empty maps.
fn set_paths(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(key(k));
                set_paths(v, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

/// Every (path, map) below a key named one of `names` whose value is a map.
fn blocks<'a>(
    value: &'a Value,
    names: &[&str],
    path: &mut Vec<String>,
    out: &mut Vec<(String, &'a serde_norway::Mapping)>,
) {
    if let Value::Mapping(map) = value {
        for (k, v) in map {
            path.push(key(k));
            if let Value::Mapping(block) = v {
                if names.contains(&key(k).as_str()) {
                    out.push((show(path), block));
                }
            }
            blocks(v, names, path, out);
            path.pop();
        }
    }
}

fn parse(file: &str, text: &str) -> Value {
    let value: Value =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
    assert!(value.is_mapping(), "{file} is not a map of values");
    value
}

/// Keys a values file sets that its chart's defaults do not define.
fn unknown_keys(values: &Value, keys: &Keys, free_form: &[&[&str]]) -> Vec<String> {
    let mut paths = Vec::new();
    set_paths(values, &mut Vec::new(), &mut paths);
    paths
        .into_iter()
        .filter(|p| !keys.allows(p, free_form))
        .map(|p| show(&p))
        .collect()
}

/// Required settings a values file lacks or sets otherwise.
fn missing_settings(values: &Value, chart: &Chart) -> Vec<String> {
    let mut out = Vec::new();
    for (path, want, why) in chart.required {
        let want: Value = serde_norway::from_str(want).unwrap();
        let mut at = Some(values);
        for k in *path {
            at = at.and_then(|v| v.get(*k));
        }
        if at != Some(&want) {
            let path: Vec<String> = path.iter().map(|k| k.to_string()).collect();
            out.push(format!(
                "{} must be {} ({why}), is {}",
                show(&path),
                serde_norway::to_string(&want).unwrap().trim(),
                at.map(|v| serde_norway::to_string(v).unwrap().trim().to_string())
                    .unwrap_or_else(|| "not set".into())
            ));
        }
    }
    out
}

/// A memory quantity in bytes (`512Mi`, `2Gi`, `1G`, `1048576`).
fn bytes(quantity: &Value) -> Option<f64> {
    let text = match quantity {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let units: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    for (unit, factor) in units {
        if let Some(number) = text.strip_suffix(unit) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    text.parse().ok()
}

/// What is wrong with one container resources block.
fn resources_problem(block: &serde_norway::Mapping) -> Option<String> {
    let get = |section: &str, what: &str| {
        block
            .get(section)
            .and_then(|s| s.get(what))
            .filter(|v| !v.is_null())
    };
    let mut missing = Vec::new();
    for (section, what) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        if get(section, what).is_none() {
            missing.push(format!("{section}.{what}"));
        }
    }
    if !missing.is_empty() {
        return Some(format!("has no {}", missing.join(", ")));
    }
    let request = bytes(get("requests", "memory")?);
    let limit = bytes(get("limits", "memory")?);
    match (request, limit) {
        (Some(r), Some(l)) if r <= l => None,
        (Some(_), Some(_)) => Some("asks for more memory than its limit".into()),
        _ => Some("has a memory quantity that does not parse".into()),
    }
}

/// Resources blocks without CPU and memory requests and a memory limit.
fn resources_problems(values: &Value) -> Vec<String> {
    let mut found = Vec::new();
    blocks(values, &["resources"], &mut Vec::new(), &mut found);
    found
        .into_iter()
        .filter_map(|(path, block)| resources_problem(block).map(|p| format!("{path} {p}")))
        .collect()
}

/// Security contexts a values file loosens.
fn security_problems(values: &Value) -> Vec<String> {
    let mut found = Vec::new();
    blocks(
        values,
        &[
            "securityContext",
            "containerSecurityContext",
            "podSecurityContext",
        ],
        &mut Vec::new(),
        &mut found,
    );
    let mut out = Vec::new();
    for (path, block) in found {
        let is = |k: &str, want: &Value| block.get(k).is_none_or(|v| v == want);
        if !is("allowPrivilegeEscalation", &Value::Bool(false)) {
            out.push(format!("{path} allows privilege escalation"));
        }
        if !is("privileged", &Value::Bool(false)) {
            out.push(format!("{path} is privileged"));
        }
        if !is("runAsNonRoot", &Value::Bool(true)) {
            out.push(format!("{path} does not require a non-root user"));
        }
        if block.get("runAsUser").and_then(Value::as_u64) == Some(0) {
            out.push(format!("{path} runs as root"));
        }
        if block
            .get("capabilities")
            .and_then(|c| c.get("add"))
            .and_then(Value::as_sequence)
            .is_some_and(|add| !add.is_empty())
        {
            out.push(format!("{path} adds capabilities"));
        }
        if let Some(kind) = block
            .get("seccompProfile")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
        {
            if kind != "RuntimeDefault" && kind != "Localhost" {
                out.push(format!("{path} sets seccomp profile {kind}"));
            }
        }
    }
    out
}

#[test]
fn every_upstream_release_has_checks_and_a_key_fixture() {
    let releases = releases();
    assert_eq!(
        releases.len(),
        7,
        "the seven upstream releases of releases.toml"
    );
    for (release, chart, files) in &releases {
        assert!(
            !files.is_empty(),
            "release {} names no values file",
            release.name
        );
        let keys = Keys::of(chart);
        assert!(
            keys.known.len() > 20,
            "fixture of {chart} lists only {} keys",
            keys.known.len()
        );
    }
}

#[test]
fn fixtures_are_of_the_chart_versions_charts_toml_pins() {
    let text = std::fs::read_to_string(root().join("charts.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    for entry in doc["chart"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let pinned = entry["version"].as_str().unwrap();
        let fixture = Keys::of(name).version;
        // `~X.Y` and `X.Y.Z` pin a minor release, `~X` a major one: the fixture must be of it.
        let level = if pinned.starts_with('~') && pinned.matches('.').count() == 0 {
            1
        } else {
            2
        };
        let parts = |v: &str| -> Vec<String> {
            v.trim_start_matches(['~', 'v'])
                .split('.')
                .take(level)
                .map(String::from)
                .collect()
        };
        assert_eq!(
            parts(&fixture),
            parts(pinned),
            "fixture of {name} is of {fixture}, charts.toml pins {pinned}: derive it again \
             with scripts/upstream-value-keys.sh"
        );
    }
}

#[test]
fn every_values_file_parses_and_sets_only_keys_its_chart_defines() {
    for (_, chart, files) in releases() {
        let keys = Keys::of(chart);
        for (file, text) in files {
            let unknown = unknown_keys(&parse(&file, text), &keys, self::chart(chart).free_form);
            assert!(
                unknown.is_empty(),
                "{file} sets keys chart {chart} {} does not define: {unknown:?}",
                keys.version
            );
        }
    }
}

#[test]
fn every_values_file_keeps_the_stack_off_the_internet_and_the_crds_on() {
    for (_, chart, files) in releases() {
        // The settings may be spread over a release's files: the last one wins, as in helm.
        let mut merged = Value::Mapping(Default::default());
        for (file, text) in &files {
            capacity::merge(&mut merged, parse(file, text));
        }
        let missing = missing_settings(&merged, self::chart(chart));
        assert!(
            missing.is_empty(),
            "values of chart {chart} ({}):\n{}",
            files
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            missing.join("\n")
        );
    }
}

#[test]
fn every_resources_block_has_requests_and_a_memory_limit() {
    for (_, _, files) in releases() {
        for (file, text) in files {
            let problems = resources_problems(&parse(&file, text));
            assert!(problems.is_empty(), "{file}: {problems:?}");
        }
    }
}

#[test]
fn no_values_file_loosens_a_security_context() {
    for (_, _, files) in releases() {
        for (file, text) in files {
            let problems = security_problems(&parse(&file, text));
            assert!(problems.is_empty(), "{file}: {problems:?}");
        }
    }
}

#[test]
fn each_check_fails_on_a_bad_file() {
    let keys = Keys::parse(
        "# demo 1.2.3: key paths\nreplicas\nresources {}\nweb.config.ini.analytics.on\n\
         web.config\\.d ~\nweb.securityContext.runAsUser\nweb.plugins\n",
    );
    assert_eq!(keys.version, "1.2.3");
    let free: &[&[&str]] = &[&["web", "config"]];
    let doc = |text: &str| parse("bad.yaml", text);
    // Known, open, escaped, pass-through and free-form keys pass; a typo does not.
    let good = doc(
        "replicas: 2\nresources: {requests: {cpu: 1}}\nweb:\n  config.d: {a: 1}\n  \
         securityContext: {seccompProfile: {type: RuntimeDefault}}\n  config: {news: {x: 1}}\n",
    );
    assert_eq!(unknown_keys(&good, &keys, free), Vec::<String>::new());
    assert_eq!(
        unknown_keys(&doc("replica: 2\nweb: {plugin: []}\n"), &keys, free),
        ["replica", "web.plugin"]
    );
    assert_eq!(
        unknown_keys(&doc("web: {config: {news: 1}}\n"), &keys, &[]),
        ["web.config.news"],
        "without the free-form entry"
    );
    assert_eq!(
        unknown_keys(&doc("replicas: {count: 2}\n"), &keys, free),
        ["replicas.count"],
        "a map where the chart has a scalar"
    );

    // A required setting missing, or set otherwise.
    let chart = Chart {
        name: "demo",
        free_form: &[],
        required: &[(&["web", "plugins"], "[]", "downloads")],
        rendered: &[],
    };
    assert!(missing_settings(&doc("web: {plugins: []}\n"), &chart).is_empty());
    assert_eq!(
        missing_settings(&doc("web: {plugins: [clock]}\n"), &chart),
        ["web.plugins must be [] (downloads), is - clock"]
    );
    assert_eq!(
        missing_settings(&doc("web: {}\n"), &chart),
        ["web.plugins must be [] (downloads), is not set"]
    );

    // Resources without a limit, a request, or with a request over the limit.
    let ok = "resources: {requests: {cpu: 10m, memory: 64Mi}, limits: {memory: 128Mi}}\n";
    assert!(resources_problems(&doc(ok)).is_empty());
    assert_eq!(
        resources_problems(&doc(
            "a: {resources: {requests: {cpu: 10m, memory: 64Mi}}}\n"
        )),
        ["a.resources has no limits.memory"]
    );
    assert_eq!(
        resources_problems(&doc("resources: {limits: {memory: 1Gi}}\n")),
        ["resources has no requests.cpu, requests.memory"]
    );
    assert_eq!(
        resources_problems(&doc(
            "resources: {requests: {cpu: 1, memory: 2Gi}, limits: {memory: 1Gi}}\n"
        )),
        ["resources asks for more memory than its limit"]
    );
    assert!(
        resources_problems(&doc("rbac: {rules: [{resources: [pods]}]}\n")).is_empty(),
        "RBAC rule lists are not container resources"
    );

    // Security contexts that loosen the defaults.
    assert!(security_problems(&doc(
        "securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false, \
         seccompProfile: {type: RuntimeDefault}, capabilities: {drop: [ALL]}}\n"
    ))
    .is_empty());
    assert_eq!(
        security_problems(&doc(
            "x:\n  containerSecurityContext: {allowPrivilegeEscalation: true, privileged: true, \
             capabilities: {add: [NET_ADMIN]}}\n  podSecurityContext: {runAsNonRoot: false, \
             runAsUser: 0, seccompProfile: {type: Unconfined}}\n"
        )),
        [
            "x.containerSecurityContext allows privilege escalation",
            "x.containerSecurityContext is privileged",
            "x.containerSecurityContext adds capabilities",
            "x.podSecurityContext does not require a non-root user",
            "x.podSecurityContext runs as root",
            "x.podSecurityContext sets seccomp profile Unconfined",
        ]
    );
}

/// The pinned chart of `name` under `dir`: `dir/NAME/` or `dir/NAME-*.tgz`.
fn chart_in(dir: &Path, name: &str) -> PathBuf {
    let unpacked = dir.join(name);
    if unpacked.join("Chart.yaml").is_file() {
        return unpacked;
    }
    let packed: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|rest| {
                    rest.ends_with(".tgz")
                        && rest.starts_with(|c: char| c.is_ascii_digit() || c == 'v')
                })
        })
        .collect();
    match packed.as_slice() {
        [one] => one.clone(),
        _ => panic!(
            "UPSTREAM_CHARTS={}: expected {name}/ or one {name}-<version>.tgz, found {packed:?}",
            dir.display()
        ),
    }
}

/// Every pod spec in `object` (anything holding a `containers` list).
fn pod_specs<'a>(object: &'a Value, out: &mut Vec<&'a Value>) {
    match object {
        Value::Mapping(map) => {
            if object.get("containers").is_some_and(Value::is_sequence) {
                out.push(object);
            }
            for (_, v) in map {
                pod_specs(v, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|v| pod_specs(v, out)),
        _ => {}
    }
}

/// What a rendered container lacks: requests and a memory limit, a restricted context.
fn container_problems(pod: &Value, container: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match container.get("resources").and_then(Value::as_mapping) {
        Some(block) => out.extend(resources_problem(block)),
        None => out.push("has no resources".into()),
    }
    let own = container.get("securityContext");
    let at_pod = pod.get("securityContext");
    let either = |k: &str| {
        own.and_then(|s| s.get(k))
            .or_else(|| at_pod.and_then(|s| s.get(k)))
    };
    if either("runAsNonRoot") != Some(&Value::Bool(true)) {
        out.push("may run as root (runAsNonRoot)".into());
    }
    if own.and_then(|s| s.get("allowPrivilegeEscalation")) != Some(&Value::Bool(false)) {
        out.push("allows privilege escalation".into());
    }
    let drops_all = own
        .and_then(|s| s.get("capabilities"))
        .and_then(|c| c.get("drop"))
        .and_then(Value::as_sequence)
        .is_some_and(|d| d.iter().any(|c| c.as_str() == Some("ALL")));
    if !drops_all {
        out.push("keeps capabilities (drop ALL)".into());
    }
    let seccomp = either("seccompProfile")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str);
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        out.push("has no seccomp profile".into());
    }
    out
}

/// The pinned upstream charts cannot be downloaded where CI runs: run it with
/// `UPSTREAM_CHARTS=DIR cargo test -p installer --test it -- --ignored rendered_with`.
#[test]
#[ignore = "needs UPSTREAM_CHARTS=DIR holding the pinned upstream charts"]
fn rendered_with_the_pinned_charts_every_container_is_bounded_and_restricted() {
    let dir = std::env::var_os("UPSTREAM_CHARTS")
        .expect("set UPSTREAM_CHARTS to a directory holding the pinned upstream charts");
    test_support::require("helm", "scripts/install-helm.sh");
    test_support::require("kubernetes-validate", "scripts/setup.sh");
    let dir = PathBuf::from(dir);
    let plan = installer::deploy::releases().unwrap();
    let work = tempfile::tempdir().unwrap();
    for (release, chart_name, _) in releases() {
        let archive = chart_in(&dir, chart_name);
        let meta: Value = serde_norway::from_str(
            &test_support::run("helm", &["show", "chart", p(&archive)], work.path())
                .ok()
                .stdout,
        )
        .unwrap();
        let version = meta["version"].as_str().unwrap();
        let fixture = Keys::of(chart_name).version;
        assert_eq!(
            version,
            fixture,
            "{}: the fixture of {chart_name} is of {fixture}: derive it again with \
             scripts/upstream-value-keys.sh {}",
            archive.display(),
            archive.display()
        );
        let values = upstream_values::write(&release, work.path()).unwrap();
        let mut args = vec![
            "template",
            release.name.as_str(),
            p(&archive),
            "--namespace",
            release.namespace.as_str(),
            "--include-crds",
        ];
        if let Some(kube) = &plan.kube_version {
            args.extend(["--kube-version", kube]);
        }
        for file in &values {
            args.extend(["-f", p(file)]);
        }
        let manifests = test_support::run("helm", &args, work.path()).ok().stdout;
        let docs = documents(&manifests).unwrap_or_else(|bad| {
            panic!(
                "{}: {} does not parse: {}",
                release.name, bad.template, bad.message
            )
        });
        let mut problems = Vec::new();
        for doc in &docs {
            let object = &doc.value;
            let name = object_name(object);
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind == "CustomResourceDefinition" {
                continue;
            }
            let hook = object
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("helm.sh/hook"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if hook.split(',').any(|h| h.trim().starts_with("test")) {
                problems.push(format!("{name} is a helm test"));
            }
            if matches!(kind, "Prometheus" | "Alertmanager") {
                match object["spec"].get("resources").and_then(Value::as_mapping) {
                    Some(block) => problems.extend(
                        resources_problem(block).map(|p| format!("{name} spec.resources {p}")),
                    ),
                    None => problems.push(format!("{name} has no spec.resources")),
                }
            }
            let mut pods = Vec::new();
            pod_specs(object, &mut pods);
            for pod in pods {
                for list in ["initContainers", "containers"] {
                    for container in pod
                        .get(list)
                        .and_then(Value::as_sequence)
                        .into_iter()
                        .flatten()
                    {
                        let cname = container["name"].as_str().unwrap_or("?");
                        for problem in container_problems(pod, container) {
                            problems.push(format!("{name} {list}/{cname} {problem}"));
                        }
                    }
                }
            }
        }
        for text in chart(chart_name).rendered {
            if !manifests.contains(text) {
                problems.push(format!("the manifests do not contain {text:?}"));
            }
        }
        // Core kinds against the Kubernetes schema; custom resources have none bundled.
        let file = work.path().join(format!("{}.yaml", release.name));
        std::fs::write(&file, &manifests).unwrap();
        let mut validate = vec!["--strict", "--quiet"];
        if let Some(kube) = &plan.kube_version {
            validate.extend(["-k", kube]);
        }
        validate.push(p(&file));
        let run = test_support::run("kubernetes-validate", &validate, work.path());
        problems.extend(
            run.stdout
                .lines()
                .chain(run.stderr.lines())
                .filter(|l| !l.trim().is_empty() && !l.contains("Couldn't find schema for kind"))
                .map(|l| format!("kubernetes-validate: {l}")),
        );
        assert!(
            problems.is_empty(),
            "release {} ({chart_name} {version}):\n{}",
            release.name,
            problems.join("\n")
        );
        eprintln!(
            "release {}: {chart_name} {version} rendered, {} objects checked",
            release.name,
            docs.len()
        );
    }
}

/// A bundle carrying the messenger chart and a stand-in chart `name` that renders the values
/// helm gave it into a ConfigMap.
pub(crate) fn bundle_with_stand_in(dir: &Path, key: &Path, name: &str) -> PathBuf {
    let stage = dir.join("stage");
    let charts = stage.join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    std::fs::write(
        stage.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        stage.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    let stand_in = dir.join(name);
    std::fs::create_dir_all(stand_in.join("templates")).unwrap();
    std::fs::write(
        stand_in.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: 0.0.1\n"),
    )
    .unwrap();
    std::fs::write(
        stand_in.join("templates/values.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values-seen\ndata:\n  \
         values.yaml: {{ toYaml .Values | quote }}\n",
    )
    .unwrap();
    for chart in [root().join("charts/messenger"), stand_in] {
        test_support::run("helm", &["package", p(&chart), "-d", p(&charts)], dir).ok();
    }
    test_support::run("helm", &["repo", "index", p(&charts)], dir).ok();
    test_support::pack_signed(dir, "bundle.tar.zst", key, &[]);
    dir.join("bundle.tar.zst")
}

/// `installer deploy --dry-run --only <release>` of a site with `extra` appended: the values
/// helm rendered the release's stand-in chart with, and the release's values files in
/// plan.json.
pub(crate) fn values_seen(chart: &str, release: &str, extra: &str) -> (Value, serde_json::Value) {
    test_support::require("helm", "scripts/install-helm.sh");
    let dir = tempfile::tempdir().unwrap();
    let (public, secret) = test_support::test_key("stand-in-values");
    let bundle = bundle_with_stand_in(dir.path(), &secret, chart);
    let site = crate::deploy::site(dir.path(), "1k", extra);
    let out = dir.path().join("out");
    test_support::installer(
        &[
            "deploy",
            p(&bundle),
            "--key",
            p(&public),
            "--config",
            p(&site),
            "--registry",
            crate::deploy::REGISTRY,
            "--dry-run",
            p(&out),
            "--only",
            release,
        ],
        dir.path(),
    )
    .ok();
    let plan = crate::deploy::plan_json(&out);
    let planned = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["releases"].as_array().cloned().unwrap_or_default())
        .find(|r| r["name"] == release)
        .unwrap_or_else(|| panic!("{release} is not in the plan"));
    let manifests = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.to_string_lossy().ends_with(&format!("-{release}.yaml")))
        .expect("the release's manifests");
    let docs = crate::stack_chart::documents(&std::fs::read_to_string(manifests).unwrap());
    let seen = serde_norway::from_str(docs[0]["data"]["values.yaml"].as_str().unwrap()).unwrap();
    (seen, planned["values"].clone())
}

#[test]
fn the_deploy_plan_renders_an_upstream_release_with_its_compiled_in_values_file() {
    let (seen, files) = values_seen("cert-manager", "cert-manager", "");
    assert_eq!(files, serde_json::json!(["cert-manager.yaml"]));
    // helm got the file: what the stand-in chart renders is the file's values.
    let file: Value =
        serde_norway::from_str(upstream_values::text("charts/upstream/cert-manager.yaml").unwrap())
            .unwrap();
    assert_eq!(seen, file);
}
