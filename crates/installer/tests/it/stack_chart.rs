//! The stack's own Helm chart (`charts/messenger`): it lints, every scale profile renders with
//! and without each optional part, the output passes `kubernetes-validate --strict`, checkov
//! (beyond the documented skips) and `haproxy -c`, the schema names the field it rejects, the
//! worker table drives Synapse and HAProxy alike, and nothing points outside the closed network.
//!
//! Needs `helm`, `kubernetes-validate`, `checkov` and `haproxy` on PATH; a missing tool fails
//! the test with an install hint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::Value;
use test_support::ports::reserved_port;
use test_support::{p, require, run, Run};

use crate::harness;

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
pub(crate) const RELEASE: &str = "msg";
pub(crate) const NAMESPACE: &str = "matrix";
/// The site fixture's domain: every URL and host in the output lives under it or in the cluster.
const SITE_DOMAIN: &str = "example.test";

/// Optional parts of the stack, each rendered on top of every profile.
/// The site's own S3 store instead of Garage (`objectStorage.mode: external`).
pub(crate) const EXTERNAL_S3: &[&str] = &[
    "--set",
    "objectStorage.mode=external",
    "--set",
    "objectStorage.external.endpoint=https://s3.example.test:9000",
    "--set",
    "objectStorage.external.region=site-1",
    "--set",
    "objectStorage.external.credentialsSecret=site-s3",
    "--set",
    "objectStorage.external.cidr=10.40.0.0/24",
];

const VARIANTS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    (
        "federation",
        &[
            "--set",
            "federation.enabled=true",
            "--set-json",
            r#"federation.allowList=["partner.example.test"]"#,
        ],
    ),
    ("external-s3", EXTERNAL_S3),
    ("no-turn", &["--set", "turn.enabled=false"]),
    // Group calls (off by default), with as many call nodes as the largest profile's LiveKit.
    (
        "calls",
        &[
            "--set",
            "calls.enabled=true",
            "--set-json",
            r#"calls.externalIPs=["203.0.113.20","203.0.113.21","203.0.113.22","203.0.113.23"]"#,
            "--set-json",
            r#"calls.nodeSelector={"messenger.example.test/calls":"true"}"#,
        ],
    ),
    // Monitoring is on by default: the variant turns it off.
    ("no-monitoring", &["--set", "monitoring.enabled=false"]),
    (
        "restore",
        &[
            "--set",
            "restore.fromArchive=msg-pg",
            "--set",
            "restore.targetTime=2026-11-27T10:00:00Z",
            "--set",
            "backup.archiveName=msg-pg-r1",
        ],
    ),
    // The lawful-intercept instance (tests/it/li_chart.rs), without the site's key_vault
    // (its image is the site's own, not one of images.toml's).
    (
        "li",
        &[
            "--set",
            "li.enabled=true",
            "--set",
            "li.keyVault.enabled=false",
        ],
    ),
    (
        "all-stream-writers",
        &[
            "--set",
            "synapse.workers.typing.replicas=1",
            "--set",
            "synapse.workers.presence.replicas=1",
            "--set",
            "synapse.workers.device-lists.replicas=1",
        ],
    ),
];

pub(crate) fn root() -> PathBuf {
    test_support::workspace_root()
}

pub(crate) fn chart() -> PathBuf {
    root().join("charts/messenger")
}

pub(crate) fn site_file() -> PathBuf {
    root().join("tests/fixtures/site/site.yaml")
}

/// Fails the test when a tool installed from PyPI or by a script is missing.
pub(crate) fn need(tool: &str, hint: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not on PATH: install it with `{hint}`");
}

pub(crate) fn need_helm() {
    need("helm", "scripts/install-helm.sh (helm 4.x)");
}

/// `helm template` of the chart with the site file, a profile file and extra arguments.
pub(crate) fn template(profile: &str, extra: &[&str]) -> Run {
    template_in(&root(), profile, extra)
}

/// [`template`] of the chart and site fixture of the checkout at `root` (the review tests
/// run their assertions against another checkout with it, to show what an older chart did).
pub(crate) fn template_in(root: &Path, profile: &str, extra: &[&str]) -> Run {
    need_helm();
    let chart = root.join("charts/messenger");
    let site = root.join("tests/fixtures/site/site.yaml");
    let profile_file = chart.join(format!("profiles/{profile}.yaml"));
    let mut args = vec![
        "template",
        RELEASE,
        p(&chart),
        "-n",
        NAMESPACE,
        "-f",
        p(&site),
        "-f",
        p(&profile_file),
    ];
    args.extend(extra);
    run("helm", &args, site.parent().unwrap())
}

/// The rendered manifests; panics with helm's message when rendering fails. Renders are
/// cached per process: several tests read the same profile and variant. (Secrets differ per
/// render, so the secrets test renders with `template` directly.)
pub(crate) fn render(profile: &str, extra: &[&str]) -> String {
    static CACHE: std::sync::Mutex<BTreeMap<String, String>> =
        std::sync::Mutex::new(BTreeMap::new());
    let key = format!("{profile} {}", extra.join(" "));
    if let Some(hit) = CACHE.lock().unwrap().get(&key) {
        return hit.clone();
    }
    let rendered = template(profile, extra).ok().stdout;
    CACHE.lock().unwrap().insert(key, rendered.clone());
    rendered
}

pub(crate) fn documents(rendered: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(rendered)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

pub(crate) fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

pub(crate) fn config_map_key(docs: &[Value], name: &str, key: &str) -> String {
    find(docs, "ConfigMap", name)["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {name} has no key {key}"))
        .to_owned()
}

/// `server NAME HOST:PORT ...` lines of an HAProxy config, per backend: backend -> name -> host:port.
pub(crate) fn haproxy_servers(cfg: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut backend = None;
    for line in cfg.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["backend", name, ..] => backend = Some(name.to_string()),
            ["frontend", ..] | ["global", ..] | ["defaults", ..] | ["resolvers", ..] => {
                backend = None
            }
            ["server", name, addr, ..] => {
                let b = backend.clone().expect("server line outside a backend");
                out.entry(b)
                    .or_default()
                    .insert(name.to_string(), addr.to_string());
            }
            _ => {}
        }
    }
    out
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn helm_lint_strict_passes_with_the_site_file_and_every_profile() {
    need_helm();
    for profile in PROFILES {
        let profile_file = chart().join(format!("profiles/{profile}.yaml"));
        run(
            "helm",
            &[
                "lint",
                "--strict",
                p(&chart()),
                "-f",
                p(&site_file()),
                "-f",
                p(&profile_file),
            ],
            &root(),
        )
        .ok();
    }
}

#[test]
fn every_profile_and_variant_renders_and_core_kinds_validate_strictly() {
    need(
        "kubernetes-validate",
        "pip install kubernetes-validate (scripts/setup.sh)",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for profile in PROFILES {
        for (variant, extra) in VARIANTS {
            let rendered = render(profile, extra);
            files.push(write(
                dir.path(),
                &format!("{profile}-{variant}.yaml"),
                &rendered,
            ));
        }
    }
    validated_but_custom_kinds(&validate_strictly(dir.path(), &files));
}

/// Fails on anything `kubernetes-validate` printed but its "no schema" line for the custom
/// resources the chart renders: they have no bundled schema; anything else the validator says
/// about them, or any core kind it cannot check, is a failure.
pub(crate) fn validated_but_custom_kinds(output: &str) {
    const CUSTOM: &[&str] = &[
        "Cluster",
        "Pooler",
        "ScheduledBackup",
        "ObjectStore",
        "Certificate",
        "Gateway",
        "GatewayClass",
        "EnvoyProxy",
        "HTTPRoute",
        "SecurityPolicy",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        // Lawful intercept (templates/li): Gateway API's ReferenceGrant, CloudNativePG's
        // logical replication and database kinds.
        "ReferenceGrant",
        "Publication",
        "Subscription",
        "Database",
    ];
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let known_custom = CUSTOM
            .iter()
            .any(|k| line.contains(&format!("Couldn't find schema for kind {k} ")));
        assert!(known_custom, "kubernetes-validate: {line}");
    }
}

#[test]
fn custom_resources_carry_what_their_operators_require() {
    let docs = documents(&render("5k", &[]));
    let cluster = find(&docs, "Cluster", "msg-pg");
    let initdb = &cluster["spec"]["bootstrap"]["initdb"];
    assert_eq!(initdb["localeCollate"].as_str(), Some("C"));
    assert_eq!(initdb["localeCType"].as_str(), Some("C"));
    assert_eq!(initdb["encoding"].as_str(), Some("UTF8"));
    assert_eq!(cluster["spec"]["instances"].as_u64(), Some(3));
    assert_eq!(cluster["spec"]["minSyncReplicas"].as_u64(), Some(1));
    assert_eq!(cluster["spec"]["maxSyncReplicas"].as_u64(), Some(2));
    assert_eq!(
        cluster["spec"]["postgresql"]["parameters"]["max_connections"].as_str(),
        Some("500")
    );
    assert_eq!(
        cluster["spec"]["plugins"][0]["name"].as_str(),
        Some("barman-cloud.cloudnative-pg.io")
    );
    assert_eq!(
        cluster["spec"]["plugins"][0]["parameters"]["barmanObjectName"].as_str(),
        Some("msg-backup")
    );
    let pooler = find(&docs, "Pooler", "msg-pg-pooler-rw");
    assert_eq!(
        pooler["spec"]["pgbouncer"]["poolMode"].as_str(),
        Some("session")
    );
    let store = find(&docs, "ObjectStore", "msg-backup");
    assert_eq!(store["apiVersion"].as_str(), Some("barmancloud.cnpg.io/v1"));
    let backup = find(&docs, "ScheduledBackup", "msg-pg-daily");
    assert_eq!(backup["spec"]["method"].as_str(), Some("plugin"));
    let gateway = find(&docs, "Gateway", "msg");
    assert_eq!(
        gateway["apiVersion"].as_str(),
        Some("gateway.networking.k8s.io/v1")
    );
    let cert = find(&docs, "Certificate", "msg-tls");
    assert_eq!(
        cert["spec"]["issuerRef"]["name"].as_str(),
        Some("messenger-ca")
    );
    assert_eq!(
        cert["spec"]["issuerRef"]["kind"].as_str(),
        Some("ClusterIssuer")
    );
}

/// Property paths of Envoy Gateway's EnvoyProxy CRD the chart may set
/// (`tests/fixtures/envoyproxy-crd-paths.txt`: `.` between properties, `[]` for array items,
/// `.*` for any key of a map), with the version and CRD file they were derived from.
fn envoyproxy_crd_paths() -> (String, BTreeSet<String>) {
    let text = std::fs::read_to_string(
        root().join("crates/installer/tests/fixtures/envoyproxy-crd-paths.txt"),
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

/// The CRD paths of every field `value` (at `path`) sets: a mapping whose `<path>.*` is in
/// `known` is a map (any key, scalar values); other mappings are objects whose keys are
/// properties.
fn crd_leaf_paths(value: &Value, path: &str, known: &BTreeSet<String>, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(m) if known.contains(&format!("{path}.*")) => {
            assert!(
                m.values().all(|v| !v.is_mapping() && !v.is_sequence()),
                "{path}: a map of scalars"
            );
            out.insert(format!("{path}.*"));
        }
        Value::Mapping(m) => {
            for (key, child) in m {
                let key = key.as_str().unwrap();
                crd_leaf_paths(child, &format!("{path}.{key}"), known, out);
            }
        }
        Value::Sequence(items) => {
            for item in items {
                crd_leaf_paths(item, &format!("{path}[]"), known, out);
            }
        }
        _ => {
            out.insert(path.to_owned());
        }
    }
}

/// The chart's own GatewayClass (templates/edge/gatewayclass.yaml) is the one the Gateway
/// names, for Envoy Gateway's controller, and points at the rendered EnvoyProxy, which gives
/// the proxies the profile's replicas (with a PodDisruptionBudget), the image of images.toml,
/// requests and a memory limit and restricted security contexts, using only fields of Envoy
/// Gateway's CRD. A site bringing its own GatewayClass gets neither object.
#[test]
fn the_gateway_class_points_at_an_envoy_proxy_that_sizes_and_restricts_the_proxies() {
    let (source, crd_paths) = envoyproxy_crd_paths();
    assert!(
        source.starts_with("Envoy Gateway v1.9.") && source.ends_with("envoyproxies.yaml"),
        "the fixture's first line names the version and CRD file: {source}"
    );
    let toml = std::fs::read_to_string(root().join("images.toml")).unwrap();
    let listed: BTreeSet<&str> = toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ref = \""))
        .map(|r| r.trim_end_matches('"'))
        .collect();
    for profile in PROFILES {
        let docs = documents(&render(profile, &[]));
        let of_kind = |kind: &str| -> Vec<&Value> {
            docs.iter()
                .filter(|d| d["kind"].as_str() == Some(kind))
                .collect()
        };
        let (classes, proxies) = (of_kind("GatewayClass"), of_kind("EnvoyProxy"));
        assert_eq!(classes.len(), 1, "{profile}: one GatewayClass");
        assert_eq!(proxies.len(), 1, "{profile}: one EnvoyProxy");
        let (class, proxy) = (classes[0], proxies[0]);
        for object in [class, proxy] {
            let labels = &object["metadata"]["labels"];
            assert_eq!(
                labels["app.kubernetes.io/part-of"].as_str(),
                Some("messenger")
            );
            assert_eq!(labels["app.kubernetes.io/instance"].as_str(), Some(RELEASE));
        }

        let gateway = find(&docs, "Gateway", RELEASE);
        assert_eq!(
            class["metadata"]["name"], gateway["spec"]["gatewayClassName"],
            "{profile}: the Gateway names the chart's GatewayClass"
        );
        assert!(class["metadata"]["namespace"].is_null(), "cluster-scoped");
        assert_eq!(
            class["spec"]["controllerName"].as_str(),
            Some("gateway.envoyproxy.io/gatewayclass-controller")
        );
        let params = &class["spec"]["parametersRef"];
        assert_eq!(params["group"].as_str(), Some("gateway.envoyproxy.io"));
        assert_eq!(params["kind"].as_str(), Some("EnvoyProxy"));
        assert_eq!(
            proxy["apiVersion"].as_str(),
            Some("gateway.envoyproxy.io/v1alpha1")
        );
        assert_eq!(params["name"], proxy["metadata"]["name"], "{profile}");
        assert_eq!(
            params["namespace"], proxy["metadata"]["namespace"],
            "{profile}"
        );
        assert!(params["namespace"].as_str().is_some(), "{profile}");

        let kube = &proxy["spec"]["provider"]["kubernetes"];
        assert_eq!(
            proxy["spec"]["provider"]["type"].as_str(),
            Some("Kubernetes")
        );
        let deployment = &kube["envoyDeployment"];
        let container = &deployment["container"];
        let image = container["image"].as_str().expect("the Envoy image");
        assert!(
            image.starts_with("docker.io/envoyproxy/envoy:") && listed.contains(image),
            "{profile}: {image} is not the Envoy image of images.toml"
        );
        let profile_values: Value = serde_norway::from_str(
            &std::fs::read_to_string(chart().join(format!("profiles/{profile}.yaml"))).unwrap(),
        )
        .unwrap();
        let replicas = deployment["replicas"].as_u64().expect("replicas");
        assert_eq!(
            Some(replicas),
            profile_values["gateway"]["envoy"]["replicas"].as_u64(),
            "{profile}: replicas from the profile"
        );
        assert!(replicas >= 2, "{profile}: {replicas} Envoy proxies");
        let pdb = &kube["envoyPDB"];
        assert!(
            pdb["maxUnavailable"].as_u64() == Some(1) || pdb["minAvailable"].as_u64().is_some(),
            "{profile}: {replicas} proxies and no PodDisruptionBudget"
        );
        let resources = &container["resources"];
        assert_eq!(
            resources, &profile_values["gateway"]["envoy"]["resources"],
            "{profile}: resources from the profile"
        );
        assert!(
            resources["requests"]["cpu"].as_str().is_some()
                && resources["requests"]["memory"].as_str().is_some()
                && resources["limits"]["memory"].as_str().is_some(),
            "{profile}: requests and a memory limit: {resources:?}"
        );

        let pod = &deployment["pod"]["securityContext"];
        assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true), "{profile}");
        assert_eq!(
            pod["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );
        let sc = &container["securityContext"];
        assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{profile}");
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(
            sc["capabilities"]["drop"].as_sequence().map(Vec::as_slice),
            Some(&[Value::from("ALL")][..])
        );
        assert_eq!(
            sc["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );

        let mut set = BTreeSet::new();
        crd_leaf_paths(&proxy["spec"], "spec", &crd_paths, &mut set);
        let unknown: Vec<&String> = set.difference(&crd_paths).collect();
        assert!(
            unknown.is_empty(),
            "{profile}: the EnvoyProxy sets fields not in the CRD of {source}: {unknown:?}"
        );
    }

    // A site with its own GatewayClass: the Gateway still names it, the chart makes neither.
    let dir = tempfile::tempdir().unwrap();
    let own = write(
        dir.path(),
        "own-class.yaml",
        "gateway: {envoy: {manage: false}}\n",
    );
    for profile in PROFILES {
        let docs = documents(&template(profile, &["-f", p(&own)]).ok().stdout);
        for kind in ["GatewayClass", "EnvoyProxy"] {
            assert!(
                !docs.iter().any(|d| d["kind"].as_str() == Some(kind)),
                "{profile}: manage false still renders a {kind}"
            );
        }
        assert_eq!(
            find(&docs, "Gateway", RELEASE)["spec"]["gatewayClassName"].as_str(),
            Some("envoy")
        );
    }
}

#[test]
fn checkov_finds_nothing_beyond_the_documented_skips() {
    need("checkov", "pip install checkov");
    let dir = tempfile::tempdir().unwrap();
    for (variant, extra) in VARIANTS {
        write(
            dir.path(),
            &format!("{variant}.yaml"),
            &render("10k", extra),
        );
    }
    let out = run(
        "sh",
        &[
            "-c",
            "BC_SKIP_MAPPING=TRUE checkov -d . --framework kubernetes -o json --quiet \
             --skip-download 2>checkov.err",
        ],
        dir.path(),
    );
    let report: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("checkov printed no JSON ({e}):\n{}", out.stdout));
    let report = if report.is_array() {
        report[0].clone()
    } else {
        report
    };
    let skips: Vec<(String, String)> = std::fs::read_to_string(chart().join("checkov-skips.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next().unwrap().to_owned();
            let resource = words.next().expect("a skip names a resource").to_owned();
            assert!(words.next().is_some(), "the skip `{l}` gives no reason");
            (id, resource)
        })
        .collect();
    let mut used = BTreeSet::new();
    let mut unexplained = Vec::new();
    let failed = report["results"]["failed_checks"].as_array().unwrap();
    for f in failed {
        let id = f["check_id"].as_str().unwrap();
        let resource = f["resource"].as_str().unwrap();
        match skips
            .iter()
            .position(|(sid, pat)| sid == id && glob(pat, resource))
        {
            Some(i) => {
                used.insert(i);
            }
            None => unexplained.push(format!(
                "{id} {resource}: {}",
                f["check_name"].as_str().unwrap_or("")
            )),
        }
    }
    assert!(
        unexplained.is_empty(),
        "checkov findings not in checkov-skips.txt:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<_> = skips
        .iter()
        .enumerate()
        .filter(|(i, _)| !used.contains(i))
        .map(|(_, s)| format!("{} {}", s.0, s.1))
        .collect();
    assert!(stale.is_empty(), "skips matching no finding: {stale:?}");
    assert!(report["summary"]["passed"].as_u64().unwrap() > 1000);
}

/// `*` matches any run of characters; everything else literally.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

#[test]
fn both_rendered_haproxy_configs_pass_haproxy_check() {
    require("haproxy", "haproxy");
    let dir = tempfile::tempdir().unwrap();
    for profile in PROFILES {
        for (variant, extra) in VARIANTS {
            let docs = documents(&render(profile, extra));
            for cm in ["msg-haproxy", "msg-valkey-proxy"] {
                let cfg = config_map_key(&docs, cm, "haproxy.cfg");
                assert!(cfg.contains("init-addr last,libc,none"), "{cm}: {cfg}");
                // This sandbox has no cluster DNS and each failed lookup costs a fifth of a
                // second: check the config as rendered, but resolving nothing at start-up.
                let cfg = cfg.replace("init-addr last,libc,none", "init-addr none");
                let file = write(dir.path(), &format!("{profile}-{variant}-{cm}.cfg"), &cfg);
                let out = run("haproxy", &["-c", "-f", p(&file)], dir.path());
                assert_eq!(
                    out.code, 0,
                    "haproxy -c rejects {cm} ({profile}, {variant}):\n{}{}",
                    out.stdout, out.stderr
                );
            }
        }
    }
}

#[test]
fn the_schema_rejects_a_missing_server_name_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let site = std::fs::read_to_string(site_file()).unwrap();
    let without: String = site
        .lines()
        .filter(|l| !l.starts_with("serverName:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let file = write(dir.path(), "site.yaml", &without);
    need_helm();
    let profile_file = chart().join("profiles/1k.yaml");
    let out = run(
        "helm",
        &[
            "template",
            RELEASE,
            p(&chart()),
            "-f",
            p(&file),
            "-f",
            p(&profile_file),
        ],
        dir.path(),
    )
    .failed();
    assert!(
        out.stderr.contains("missing property 'serverName'"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_schema_rejects_a_misspelt_field_and_names_it() {
    let out = template("1k", &["--set", "feature.urlPreviews=true"]).failed();
    assert!(
        out.stderr
            .contains("additional properties 'feature' not allowed"),
        "{}",
        out.stderr
    );
    let out = template("1k", &["--set", "turn.externalIP=10.0.0.1"]).failed();
    assert!(
        out.stderr.contains("at '/turn'") && out.stderr.contains("'externalIP'"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_schema_rejects_a_wrong_type_and_names_the_field() {
    let out = template("1k", &["--set-string", "federation.enabled=yes"]).failed();
    assert!(
        out.stderr.contains("at '/federation/enabled'") && out.stderr.contains("want boolean"),
        "{}",
        out.stderr
    );
    let out = template("1k", &["--set", "profile=2k"]).failed();
    assert!(out.stderr.contains("at '/profile'"), "{}", out.stderr);
}

#[test]
fn a_site_without_its_profile_file_is_refused_with_the_file_to_layer() {
    need_helm();
    let out = run(
        "helm",
        &[
            "template",
            RELEASE,
            p(&chart()),
            "-n",
            NAMESPACE,
            "-f",
            p(&site_file()),
        ],
        &root(),
    )
    .failed();
    assert!(
        out.stderr
            .contains("layer charts/messenger/profiles/1k.yaml"),
        "{}",
        out.stderr
    );
}

#[test]
fn two_writers_for_a_single_writer_stream_are_refused() {
    let out = template("1k", &["--set", "synapse.workers.typing.replicas=2"]).failed();
    assert!(
        out.stderr
            .contains("typing stream takes exactly one writer"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_profile_whose_connection_pools_exceed_max_connections_is_refused() {
    let out = template("1k", &["--set", "postgres.maxConnections=60"]).failed();
    assert!(
        out.stderr.contains("postgres.maxConnections"),
        "{}",
        out.stderr
    );
}

/// Synapse's instance_map, stream writers and role assignments, the HAProxy backends, the
/// worker config files and the StatefulSets all name the same instances at the same hosts.
#[test]
fn instance_map_stream_writers_and_haproxy_backends_name_the_same_instances() {
    for profile in PROFILES {
        for (variant, extra) in VARIANTS {
            let docs = documents(&render(profile, extra));
            check_topology(&docs, &format!("{profile}/{variant}"));
        }
    }
}

fn check_topology(docs: &[Value], label: &str) {
    let hs: Value =
        serde_norway::from_str(&config_map_key(docs, "msg-synapse", "homeserver.yaml")).unwrap();
    let map = hs["instance_map"].as_mapping().expect("instance_map");
    let instances: BTreeMap<String, String> = map
        .iter()
        .map(|(k, v)| {
            assert_eq!(v["port"].as_u64(), Some(9093), "{label}: replication port");
            (
                k.as_str().unwrap().to_owned(),
                v["host"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        instances.contains_key("main"),
        "{label}: main in instance_map"
    );

    // Every process named by a role or stream is in instance_map.
    let mut named: BTreeSet<String> = BTreeSet::new();
    for (stream, writers) in hs["stream_writers"].as_mapping().unwrap() {
        let writers: Vec<String> = match writers {
            Value::Sequence(s) => s.iter().map(|w| w.as_str().unwrap().to_owned()).collect(),
            w => vec![w.as_str().unwrap().to_owned()],
        };
        for w in writers {
            assert!(
                instances.contains_key(&w),
                "{label}: writer {w} of {stream:?} not in instance_map"
            );
            named.insert(w);
        }
    }
    for key in ["federation_sender_instances", "pusher_instances"] {
        for w in hs[key].as_sequence().into_iter().flatten() {
            let w = w.as_str().unwrap();
            assert!(instances.contains_key(w), "{label}: {key} {w}");
            named.insert(w.to_owned());
        }
    }
    for key in [
        "run_background_tasks_on",
        "media_instance_running_background_jobs",
        "update_user_directory_from_worker",
        "notify_appservices_from_worker",
    ] {
        if let Some(w) = hs[key].as_str() {
            assert!(instances.contains_key(w), "{label}: {key} {w}");
            named.insert(w.to_owned());
        }
    }

    // HAProxy: every server is an instance at the same host, HTTP port 8008.
    let cfg = config_map_key(docs, "msg-haproxy", "haproxy.cfg");
    let backends = haproxy_servers(&cfg);
    let mut served = BTreeSet::new();
    for (backend, servers) in &backends {
        if backend == "content-scanner" {
            // The antivirus scanner (templates/antivirus), not a Synapse instance.
            continue;
        }
        for (name, addr) in servers {
            let host = instances
                .get(name)
                .unwrap_or_else(|| panic!("{label}: HAProxy {backend}/{name} not in instance_map"));
            assert_eq!(addr, &format!("{host}:8008"), "{label}: {backend}/{name}");
            let pool = name.rsplit_once('-').map(|(p, _)| p).unwrap_or(name);
            let expected = if name == "main" { "main" } else { pool };
            assert_eq!(
                backend,
                &format!("synapse-{expected}"),
                "{label}: {name} in the wrong backend"
            );
            served.insert(name.clone());
        }
    }
    // Writers of streams with client endpoints are HAProxy servers (events has none).
    for (stream, writers) in hs["stream_writers"].as_mapping().unwrap() {
        if stream.as_str() == Some("events") {
            continue;
        }
        let w = writers.as_str().unwrap();
        assert!(
            served.contains(w),
            "{label}: {w} writes {stream:?} but HAProxy never routes to it"
        );
    }
    // Every instance is routed to by HAProxy or named by a role or stream.
    for name in instances.keys() {
        assert!(
            served.contains(name) || named.contains(name),
            "{label}: {name} is in instance_map but has nothing to do"
        );
    }

    // Each instance <pool>-<i> has its worker file, its StatefulSet with enough replicas, and
    // a headless Service giving it the host instance_map names.
    for (name, host) in &instances {
        let (sts_name, ordinal) = if name == "main" {
            ("msg-synapse-main".to_owned(), 0)
        } else {
            let (pool, i) = name.rsplit_once('-').unwrap();
            config_map_key(docs, "msg-synapse", &format!("worker-{pool}.yaml"));
            (format!("msg-synapse-{pool}"), i.parse::<u64>().unwrap())
        };
        let sts = find(docs, "StatefulSet", &sts_name);
        assert!(
            sts["spec"]["replicas"].as_u64().unwrap() > ordinal,
            "{label}: {name}"
        );
        assert_eq!(sts["spec"]["serviceName"].as_str(), Some(sts_name.as_str()));
        let svc = find(docs, "Service", &sts_name);
        assert_eq!(svc["spec"]["clusterIP"].as_str(), Some("None"));
        assert_eq!(
            host,
            &format!("{sts_name}-{ordinal}.{sts_name}.{NAMESPACE}.svc.cluster.local"),
            "{label}: host of {name}"
        );
    }
    // No worker file without instances, no Synapse StatefulSet outside instance_map.
    let cm = find(docs, "ConfigMap", "msg-synapse");
    for key in cm["data"].as_mapping().unwrap().keys() {
        if let Some(pool) = key
            .as_str()
            .unwrap()
            .strip_prefix("worker-")
            .and_then(|k| k.strip_suffix(".yaml"))
        {
            assert!(
                instances.contains_key(&format!("{pool}-0")),
                "{label}: worker-{pool}.yaml without instances"
            );
        }
    }
    for d in docs {
        if d["kind"].as_str() == Some("StatefulSet") {
            let name = d["metadata"]["name"].as_str().unwrap();
            if let Some(pool) = name.strip_prefix("msg-synapse-") {
                let first = if pool == "main" {
                    "main".to_owned()
                } else {
                    format!("{pool}-0")
                };
                assert!(instances.contains_key(&first), "{label}: {name}");
            }
        }
    }
}

#[test]
fn nothing_rendered_points_outside_the_site_domain_or_the_cluster() {
    let forbidden = [
        "matrix.org",
        "element.io",
        "riot.im",
        "vector.im",
        "google",
        "gstatic",
        "posthog",
        "mapbox",
        "maptiler",
        "openstreetmap",
        "jitsi",
        "sentry",
        "gravatar",
        "matrix.to",
    ];
    for profile in PROFILES {
        for (variant, extra) in VARIANTS {
            let rendered = render(profile, extra);
            let lower = rendered.to_lowercase();
            for word in forbidden {
                assert!(
                    !lower.contains(word),
                    "{profile}/{variant}: rendered output mentions {word}"
                );
            }
            for host in url_hosts(&rendered) {
                let ok = host == SITE_DOMAIN
                    || host.ends_with(&format!(".{SITE_DOMAIN}"))
                    || host.ends_with(".svc.cluster.local");
                assert!(ok, "{profile}/{variant}: URL to {host} outside the site");
            }
        }
    }
}

/// Hosts of every http:// and https:// URL in `text`.
fn url_hosts(text: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    for scheme in ["http://", "https://"] {
        let mut rest = text;
        while let Some(at) = rest.find(scheme) {
            rest = &rest[at + scheme.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                .unwrap_or(rest.len());
            hosts.push(rest[..end].to_lowercase());
        }
    }
    hosts
}

#[test]
fn every_rendered_image_is_one_images_toml_carries() {
    let toml = std::fs::read_to_string(root().join("images.toml")).unwrap();
    let listed: BTreeSet<String> = toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ref = \""))
        .map(|r| r.trim_end_matches('"').to_owned())
        .collect();
    for (variant, extra) in VARIANTS {
        let rendered = render("1k", extra);
        let mut seen = 0;
        for line in rendered.lines() {
            let line = line.trim().trim_start_matches("- ");
            let image = line
                .strip_prefix("image: ")
                .or_else(|| line.strip_prefix("imageName: "));
            if let Some(image) = image {
                let image = image.trim_matches('"');
                assert!(
                    listed.contains(image),
                    "{variant}: {image} is not in images.toml"
                );
                seen += 1;
            }
        }
        assert!(seen > 10, "{variant}: only {seen} images found");
    }
}

#[test]
fn every_pod_runs_restricted_except_coturn_on_the_host_network() {
    let docs = documents(&render("1k", &[]));
    let mut pods = 0;
    for d in &docs {
        let spec = match d["kind"].as_str() {
            Some("Deployment" | "StatefulSet" | "DaemonSet" | "Job") => {
                &d["spec"]["template"]["spec"]
            }
            _ => continue,
        };
        let name = d["metadata"]["name"].as_str().unwrap();
        pods += 1;
        let pod = &spec["securityContext"];
        assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true), "{name}");
        assert_eq!(
            pod["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        assert_eq!(
            spec["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{name}"
        );
        assert!(spec["serviceAccountName"].as_str().is_some(), "{name}");
        let host_network = spec["hostNetwork"].as_bool().unwrap_or(false);
        assert_eq!(host_network, name == "msg-coturn", "{name}: hostNetwork");
        let containers = spec["containers"]
            .as_sequence()
            .unwrap()
            .iter()
            .chain(spec["initContainers"].as_sequence().into_iter().flatten());
        for c in containers {
            let sc = &c["securityContext"];
            let cname = c["name"].as_str().unwrap();
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}/{cname}"
            );
            assert_eq!(
                sc["readOnlyRootFilesystem"].as_bool(),
                Some(true),
                "{name}/{cname}"
            );
            assert_eq!(
                sc["capabilities"]["drop"][0].as_str(),
                Some("ALL"),
                "{name}/{cname}"
            );
            assert!(
                c["resources"]["requests"]["memory"].as_str().is_some(),
                "{name}/{cname}: memory request"
            );
        }
        // A replicated component has a PodDisruptionBudget selecting it.
        let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
        if replicas > 1 {
            let labels = &d["spec"]["selector"]["matchLabels"];
            let covered = docs.iter().any(|pdb| {
                pdb["kind"].as_str() == Some("PodDisruptionBudget")
                    && &pdb["spec"]["selector"]["matchLabels"] == labels
            });
            assert!(
                covered,
                "{name}: {replicas} replicas and no PodDisruptionBudget"
            );
        }
    }
    assert!(pods > 15, "only {pods} workloads rendered");
    find(&docs, "NetworkPolicy", "msg-default-deny");
    find(&docs, "ResourceQuota", "msg-quota");
    find(&docs, "LimitRange", "msg-limits");
}

/// Adds to `out` every Secret name `value` references: pod specs' `secretName`, `secretKeyRef`
/// and `secretRef`; Barman Cloud's `accessKeyId`/`secretAccessKey`/`region`; CloudNativePG's
/// `passwordSecret`, initdb `secret` and externalClusters' `password` (each `{name, key}`).
pub(crate) fn referenced_secrets(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                let name = match key.as_str() {
                    Some("secretName") => child.as_str(),
                    Some(
                        "secretKeyRef" | "secretRef" | "accessKeyId" | "secretAccessKey" | "region"
                        | "passwordSecret" | "secret" | "password",
                    ) => child["name"].as_str(),
                    _ => None,
                };
                if let Some(name) = name {
                    out.insert(name.to_owned());
                }
                referenced_secrets(child, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|i| referenced_secrets(i, out)),
        _ => {}
    }
}

#[test]
fn the_chart_renders_no_secret_and_references_only_the_installers_and_cert_managers() {
    for (variant, extra) in VARIANTS {
        let docs = documents(&render("1k", extra));
        // Only the external S3 region (a site value the operator wrote) is a rendered Secret.
        for secret in docs.iter().filter(|d| d["kind"].as_str() == Some("Secret")) {
            let name = secret["metadata"]["name"].as_str().unwrap();
            let keys: Vec<&str> = ["data", "stringData"]
                .iter()
                .filter_map(|f| secret[*f].as_mapping())
                .flat_map(|m| m.keys().filter_map(|k| k.as_str()))
                .collect();
            assert_eq!((name, keys), ("msg-s3-region", vec!["REGION"]), "{variant}");
        }
        let mut referenced = BTreeSet::new();
        docs.iter()
            .for_each(|d| referenced_secrets(d, &mut referenced));
        let mut provided: BTreeSet<String> =
            harness::chart::installer_secrets(RELEASE, NAMESPACE, &docs)
                .iter()
                .map(|s| s["metadata"]["name"].as_str().unwrap().to_owned())
                .collect();
        // The chart's own (the S3 region) and the site's external S3 credentials.
        provided.extend(
            docs.iter()
                .filter(|d| d["kind"].as_str() == Some("Secret"))
                .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        provided.extend(
            extra
                .iter()
                .filter_map(|a| a.strip_prefix("objectStorage.external.credentialsSecret="))
                .map(str::to_owned),
        );
        // cert-manager writes each Certificate's Secret.
        provided.extend(
            docs.iter()
                .filter(|d| d["kind"].as_str() == Some("Certificate"))
                .map(|d| d["spec"]["secretName"].as_str().unwrap().to_owned()),
        );
        let missing: Vec<&String> = referenced.difference(&provided).collect();
        assert!(missing.is_empty(), "{variant}: nothing creates {missing:?}");
        assert!(referenced.contains("msg-synapse-secrets"), "{referenced:?}");
    }
}

#[test]
fn the_chart_holds_no_placeholder_and_no_site_domain() {
    let out = run(
        "grep",
        &[
            "-rIl",
            "-i",
            "-e",
            "CHANGE_ME",
            "-e",
            "changeme",
            "-e",
            SITE_DOMAIN,
            ".",
        ],
        &chart(),
    );
    assert_eq!(
        out.code, 1,
        "placeholders or a domain in the chart:\n{}",
        out.stdout
    );
}

#[test]
fn well_known_and_federation_follow_the_site_switches() {
    let docs = documents(&render("1k", &[]));
    let cfg = config_map_key(&docs, "msg-haproxy", "haproxy.cfg");
    assert!(cfg.contains(r#"{"m.homeserver":{"base_url":"https://matrix.example.test"}}"#));
    assert!(cfg.contains(r#"{"m.server":"matrix.example.test:443"}"#));
    assert!(cfg.contains("deny_status 403 if { path_beg /_matrix/federation/"));
    let hs: Value =
        serde_norway::from_str(&config_map_key(&docs, "msg-synapse", "homeserver.yaml")).unwrap();
    assert_eq!(
        hs["federation_domain_whitelist"]
            .as_sequence()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(hs["trusted_key_servers"].as_sequence().unwrap().len(), 0);
    assert_eq!(hs["report_stats"].as_bool(), Some(false));
    assert_eq!(hs["enable_registration"].as_bool(), Some(false));
    assert_eq!(hs["url_preview_enabled"].as_bool(), Some(false));
    assert!(!cfg.contains("synapse-federation-reader"));

    let fed = VARIANTS.iter().find(|v| v.0 == "federation").unwrap().1;
    let docs = documents(&render("1k", fed));
    let cfg = config_map_key(&docs, "msg-haproxy", "haproxy.cfg");
    assert!(!cfg.contains("deny_status 403 if { path_beg /_matrix/federation/"));
    assert!(cfg.contains("use_backend synapse-federation-reader if route_federation"));
    let hs: Value =
        serde_norway::from_str(&config_map_key(&docs, "msg-synapse", "homeserver.yaml")).unwrap();
    assert_eq!(
        hs["federation_domain_whitelist"][0].as_str(),
        Some("partner.example.test")
    );

    let element: serde_json::Value =
        serde_json::from_str(&config_map_key(&docs, "msg-element", "config.json")).unwrap();
    for absent in [
        "bug_report_endpoint_url",
        "map_style_url",
        "posthog",
        "jitsi",
    ] {
        assert!(element.get(absent).is_none(), "Element config has {absent}");
    }
    assert_eq!(element["disable_guests"], true);
    assert_eq!(element["integrations_ui_url"], "");
    assert_eq!(
        element["setting_defaults"]["UIFeature.locationSharing"],
        false
    );
}

/// Synapse itself (PyPI matrix-synapse) loads main's and every worker's config exactly as the
/// pods pass it: homeserver.yaml, secrets.yaml, worker-<pool>.yaml, the worker_name file.
#[test]
fn synapse_loads_the_rendered_config_of_main_and_every_worker() {
    require("python3", "python3");
    let probe = run("python3", &["-c", "import synapse"], &root());
    assert_eq!(
        probe.code, 0,
        "Synapse is not importable: install it with `pip install matrix-synapse`\n{}",
        probe.stderr
    );
    for (variant, extra) in VARIANTS {
        let docs = documents(&render("5k", extra));
        let dir = tempfile::tempdir().unwrap();
        let base = format!("{}/", dir.path().display());
        let relocate = |text: &str| {
            text.replace("/secrets/", &base)
                .replace("/media", &format!("{base}media"))
        };
        let cm = find(&docs, "ConfigMap", "msg-synapse");
        let mut pools = Vec::new();
        for (key, text) in cm["data"].as_mapping().unwrap() {
            let key = key.as_str().unwrap();
            write(dir.path(), key, &relocate(text.as_str().unwrap()));
            if let Some(pool) = key
                .strip_prefix("worker-")
                .and_then(|k| k.strip_suffix(".yaml"))
            {
                pools.push(pool.to_owned());
            }
        }
        // The antivirus module, as the pods mount it on PYTHONPATH (`python3 -c` imports from
        // the working directory); Synapse imports it and parses its config.
        if let Some(av) = docs.iter().find(|d| {
            d["kind"].as_str() == Some("ConfigMap")
                && d["metadata"]["name"].as_str() == Some("msg-antivirus")
        }) {
            for (key, text) in av["data"].as_mapping().unwrap() {
                write(dir.path(), key.as_str().unwrap(), text.as_str().unwrap());
            }
        }
        let secrets = harness::chart::installer_secrets(RELEASE, NAMESPACE, &docs);
        let secret = find(&secrets, "Secret", "msg-synapse-secrets");
        for (key, text) in secret["stringData"].as_mapping().unwrap() {
            write(
                dir.path(),
                key.as_str().unwrap(),
                &relocate(text.as_str().unwrap()),
            );
        }
        let mut script = String::from(
            "from synapse.config.homeserver import HomeServerConfig\n\
             HomeServerConfig.load_config('main', ['-c', 'homeserver.yaml', '-c', 'secrets.yaml'])\n",
        );
        for pool in &pools {
            write(
                dir.path(),
                &format!("name-{pool}.yaml"),
                &format!("worker_name: {pool}-0\n"),
            );
            script.push_str(&format!(
                "c = HomeServerConfig.load_config('{pool}', ['-c', 'homeserver.yaml', '-c', \
                 'secrets.yaml', '-c', 'worker-{pool}.yaml', '-c', 'name-{pool}.yaml'])\n\
                 assert c.worker.worker_name == '{pool}-0'\n"
            ));
        }
        let out = run("python3", &["-c", &script], dir.path());
        assert_eq!(
            out.code, 0,
            "{variant}: Synapse refuses the config:\n{}",
            out.stderr
        );
        assert!(pools.len() >= 8, "{variant}: only {} pools", pools.len());
    }
}

/// Synapse reaches Valkey only through the role-checking proxy, whose servers are exactly the
/// Valkey StatefulSet's instances.
#[test]
fn synapse_reaches_the_valkey_primary_through_the_role_checking_proxy() {
    for profile in PROFILES {
        let docs = documents(&render(profile, &[]));
        let hs: Value =
            serde_norway::from_str(&config_map_key(&docs, "msg-synapse", "homeserver.yaml"))
                .unwrap();
        assert_eq!(
            hs["redis"]["host"].as_str(),
            Some("msg-valkey-proxy.matrix.svc.cluster.local")
        );
        assert_eq!(hs["redis"]["port"].as_u64(), Some(6379));
        let cfg = config_map_key(&docs, "msg-valkey-proxy", "haproxy.cfg");
        for line in [
            "bind :6379",
            "tcp-check send \"info replication\\r\\n\"",
            "tcp-check expect string role:master",
            "on-marked-down shutdown-sessions",
            "init-addr last,libc,none",
        ] {
            assert!(cfg.contains(line), "{profile}: valkey proxy lacks `{line}`");
        }
        let replicas = find(&docs, "StatefulSet", "msg-valkey")["spec"]["replicas"]
            .as_u64()
            .unwrap();
        let servers = &haproxy_servers(&cfg)["valkey-primary"];
        let expected: BTreeMap<String, String> = (0..replicas)
            .map(|i| {
                (
                    format!("valkey-{i}"),
                    format!("msg-valkey-{i}.msg-valkey.matrix.svc.cluster.local:6379"),
                )
            })
            .collect();
        assert_eq!(servers, &expected, "{profile}");
        let sentinel = config_map_key(&docs, "msg-valkey", "sentinel-start.sh");
        assert!(sentinel.contains("sentinel monitor messenger"));
    }
}

/// Tiny HTTP servers, one per Synapse instance, that answer every request with their name.
pub(crate) fn name_servers(names: &[String]) -> BTreeMap<String, u16> {
    use std::io::{Read, Write};
    let mut ports = BTreeMap::new();
    for name in names {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ports.insert(name.clone(), listener.local_addr().unwrap().port());
        let name = name.clone();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().flatten() {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{name}",
                    name.len()
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        });
    }
    ports
}

/// One HTTP/1.1 request: (status, body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    http_as(
        port,
        &format!("matrix.{SITE_DOMAIN}"),
        method,
        path,
        headers,
    )
}

/// One HTTP/1.1 request with `Host: host` to 127.0.0.1:`port`: (status, body).
pub(crate) fn http_as(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    http_with_body(port, host, method, path, headers, "")
}

/// [`http_as`] with a request body (sent with its length); a chunked answer is joined.
pub(crate) fn http_with_body(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    conn.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return (status, body.to_owned());
    }
    let mut joined = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        joined.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    (status, joined)
}

/// The rendered HAProxy running in front of stand-ins; stopped (and its directory removed)
/// when dropped.
pub(crate) struct RoutedHaproxy {
    pub(crate) port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for RoutedHaproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Synapse's `instance_map` in the rendered homeserver.yaml: instance name -> host.
pub(crate) fn instance_hosts(docs: &[Value]) -> BTreeMap<String, String> {
    let hs: Value = serde_norway::from_str(&config_map_key(
        docs,
        &format!("{RELEASE}-synapse"),
        "homeserver.yaml",
    ))
    .unwrap();
    hs["instance_map"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_owned(),
                v["host"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// One routing case: method, path, headers, and the instance prefix that must answer.
type RouteCase<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a str);

/// Runs the rendered HAProxy config against stand-ins for every Synapse instance and checks
/// where each kind of request lands.
fn route_through_haproxy(profile: &str, extra: &[&str]) -> RoutedHaproxy {
    start_haproxy(&documents(&render(profile, extra)))
}

/// Starts the rendered HAProxy config of `docs` on loopback with every Synapse instance
/// replaced by a stand-in answering with its name; up once main answers.
pub(crate) fn start_haproxy(docs: &[Value]) -> RoutedHaproxy {
    require("haproxy", "haproxy");
    let instances = instance_hosts(docs);
    let mut names: Vec<String> = instances.keys().cloned().collect();
    // The antivirus content scanner (templates/antivirus) stands in by name too.
    names.push("content-scanner".into());
    let ports = name_servers(&names);
    let mut cfg = config_map_key(docs, &format!("{RELEASE}-haproxy"), "haproxy.cfg");
    cfg = cfg.replace(
        &format!("{RELEASE}-content-scanner.{NAMESPACE}.svc.cluster.local:8080"),
        &format!("127.0.0.1:{}", ports["content-scanner"]),
    );
    for (name, host) in &instances {
        cfg = cfg.replace(
            &format!("{host}:8008"),
            &format!("127.0.0.1:{}", ports[name]),
        );
    }
    let (front, health) = (reserved_port(), reserved_port());
    cfg = cfg
        .replace("bind :8008", &format!("bind 127.0.0.1:{front}"))
        .replace("bind :8405", &format!("bind 127.0.0.1:{health}"))
        .replace("log stdout format raw local0 info", "")
        .replace("init-addr last,libc,none", "init-addr none");
    // The profile's maxconn needs more file descriptors than this sandbox may open.
    cfg = cfg
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("maxconn ") {
                "    maxconn 1000"
            } else {
                l
            }
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "haproxy.cfg", &cfg);
    let child = std::process::Command::new("haproxy")
        .args(["-db", "-f", p(&file)])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("haproxy.log")).unwrap())
        .spawn()
        .unwrap();
    // Up once /healthz answers and main answers through the frontend.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", front)).is_ok()
            && http(front, "GET", "/_synapse/client/ready", &[]).1 == "main"
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "HAProxy did not start: {:?}\n{}",
            std::net::TcpStream::connect(("127.0.0.1", front)).map(|_| http(
                front,
                "GET",
                "/_synapse/client/ready",
                &[]
            )),
            std::fs::read_to_string(dir.path().join("haproxy.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    RoutedHaproxy {
        port: front,
        child,
        _dir: dir,
    }
}

#[test]
fn haproxy_sends_each_kind_of_request_to_its_pool() {
    require("haproxy", "haproxy");
    let haproxy = route_through_haproxy("1k", &[]);
    let port = haproxy.port;
    let bearer = |t: &str| format!("Bearer {t}");
    let auth_a = bearer("token-a");
    let a = [("Authorization", auth_a.as_str())];
    let room = "/_matrix/client/v3/rooms/!room:example.test";
    let cases: Vec<RouteCase> = vec![
        ("GET", "/_matrix/client/v3/sync".into(), &a, "initial-sync-"),
        (
            "GET",
            "/_matrix/client/v3/sync?since=s1&full_state=true".into(),
            &a,
            "initial-sync-",
        ),
        (
            "GET",
            "/_matrix/client/v3/sync?since=s1".into(),
            &a,
            "synchrotron-",
        ),
        (
            "GET",
            "/_matrix/client/v3/sync?since=s1&access_token=t".into(),
            &[],
            "synchrotron-",
        ),
        (
            "PUT",
            format!("{room}/send/m.room.message/1"),
            &a,
            "event-creator-",
        ),
        (
            "PUT",
            format!("{room}/state/m.room.topic/"),
            &a,
            "event-creator-",
        ),
        (
            "POST",
            "/_matrix/client/v3/join/!room:example.test".into(),
            &a,
            "event-creator-",
        ),
        (
            "PUT",
            format!("{room}/typing/@u:example.test"),
            &a,
            "typing-0",
        ),
        (
            "PUT",
            "/_matrix/client/v3/sendToDevice/m.x/1".into(),
            &a,
            "to-device-0",
        ),
        (
            "PUT",
            "/_matrix/client/v3/user/@u:example.test/account_data/x".into(),
            &a,
            "account-data-0",
        ),
        (
            "POST",
            format!("{room}/receipt/m.read/$e"),
            &a,
            "receipts-0",
        ),
        (
            "PUT",
            "/_matrix/client/v3/presence/@u:example.test/status".into(),
            &a,
            "presence-0",
        ),
        (
            "GET",
            "/_matrix/client/v3/pushrules/".into(),
            &a,
            "push-rules-0",
        ),
        (
            "POST",
            "/_matrix/client/v3/keys/upload".into(),
            &a,
            "device-lists-0",
        ),
        ("GET", format!("{room}/messages"), &a, "client-reader-"),
        (
            "POST",
            "/_matrix/client/v3/login".into(),
            &[],
            "client-reader-",
        ),
        (
            "POST",
            "/_matrix/client/v3/keys/query".into(),
            &a,
            "client-reader-",
        ),
        // Downloads and thumbnails through the antivirus content scanner; uploads to media.
        (
            "GET",
            "/_matrix/media/v3/download/example.test/abc".into(),
            &a,
            "content-scanner",
        ),
        (
            "GET",
            "/_matrix/client/v1/media/download/example.test/abc".into(),
            &a,
            "content-scanner",
        ),
        (
            "GET",
            "/_matrix/client/v1/media/thumbnail/example.test/abc?width=32&height=32".into(),
            &a,
            "content-scanner",
        ),
        (
            "POST",
            "/_matrix/media/v3/upload".into(),
            &a,
            "media-repository-0",
        ),
        ("POST", "/_matrix/client/v3/logout".into(), &a, "main"),
        (
            "GET",
            "/_matrix/federation/v1/openid/userinfo?access_token=x".into(),
            &[],
            "main",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, headers, want) in &cases {
        let (status, body) = http(port, method, path, headers);
        if status != 200 || !body.starts_with(want) {
            failures.push(format!("{method} {path}: {status} {body} (want {want})"));
        }
    }
    // The same token always reaches the same synchrotron; the same room the same creator.
    let first = http(port, "GET", "/_matrix/client/v3/sync?since=s1", &a).1;
    for _ in 0..5 {
        assert_eq!(
            http(port, "GET", "/_matrix/client/v3/sync?since=s2", &a).1,
            first
        );
    }
    // The admin API is refused on the Matrix host (review_edge.rs: the admin host's rules).
    assert_eq!(http(port, "GET", "/_synapse/admin/v2/users", &a).0, 403);
    // Delegation comes from HAProxy itself; federation is refused.
    let (status, body) = http(port, "GET", "/.well-known/matrix/client", &[]);
    assert_eq!(status, 200);
    assert!(
        body.contains("\"base_url\":\"https://matrix.example.test\""),
        "{body}"
    );
    let (status, body) = http(port, "GET", "/.well-known/matrix/server", &[]);
    assert_eq!(
        (status, body.as_str()),
        (200, "{\"m.server\":\"matrix.example.test:443\"}")
    );
    assert_eq!(
        http(port, "GET", "/_matrix/federation/v1/version", &[]).0,
        403
    );
    assert_eq!(http(port, "GET", "/_matrix/key/v2/server", &[]).0, 403);
    drop(haproxy);
    assert!(failures.is_empty(), "misrouted:\n{}", failures.join("\n"));
}

#[test]
fn with_federation_on_haproxy_sends_federation_to_its_readers() {
    require("haproxy", "haproxy");
    let fed = VARIANTS.iter().find(|v| v.0 == "federation").unwrap().1;
    let haproxy = route_through_haproxy("5k", fed);
    let port = haproxy.port;
    let event = http(port, "GET", "/_matrix/federation/v1/event/$e", &[]);
    let send = http(port, "PUT", "/_matrix/federation/v1/send/1", &[]);
    let version = http(port, "GET", "/_matrix/federation/v1/version", &[]);
    // Two event creators: one room always lands on one of them.
    let path = "/_matrix/client/v3/rooms/!one:example.test/send/m.room.message/";
    let creators: BTreeSet<String> = (0..6)
        .map(|i| http(port, "PUT", &format!("{path}{i}"), &[]).1)
        .collect();
    drop(haproxy);
    assert!(event.1.starts_with("federation-reader-"), "{event:?}");
    assert!(send.1.starts_with("federation-reader-"), "{send:?}");
    assert_eq!(version, (200, "main".to_owned()));
    assert_eq!(creators.len(), 1, "{creators:?}");
}

/// Kills the child processes a test started when it ends, even by a panic.
struct Children(Vec<std::process::Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let mut all = vec![
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-a",
        "pw",
        "--no-auth-warning",
    ];
    all.extend(args);
    run("redis-cli", &all, &root()).stdout
}

/// The rendered Valkey proxy, in front of a real primary and replica, follows a failover:
/// Synapse's connection always lands on whichever instance says role:master.
#[test]
fn the_valkey_proxy_follows_the_primary_through_a_failover() {
    require("haproxy", "haproxy");
    require("redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let (p0, p1, dead) = (reserved_port(), reserved_port(), reserved_port());
    let mut children = Children(Vec::new());
    for (port, replica_of) in [(p0, None), (p1, Some(p0))] {
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--requirepass".into(),
            "pw".into(),
            "--masterauth".into(),
            "pw".into(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            p(dir.path()).into(),
            "--dbfilename".into(),
            format!("dump-{port}.rdb"),
        ];
        if let Some(primary) = replica_of {
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.to_string(),
            ]);
        }
        children.0.push(
            std::process::Command::new("redis-server")
                .args(&args)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    let docs = documents(&render("1k", &[]));
    let mut cfg = config_map_key(&docs, "msg-valkey-proxy", "haproxy.cfg");
    for (i, port) in [p0, p1, dead].iter().enumerate() {
        cfg = cfg.replace(
            &format!("msg-valkey-{i}.msg-valkey.matrix.svc.cluster.local:6379"),
            &format!("127.0.0.1:{port}"),
        );
    }
    let (front, health) = (reserved_port(), reserved_port());
    cfg = cfg
        .replace("bind :6379", &format!("bind 127.0.0.1:{front}"))
        .replace("bind :8405", &format!("bind 127.0.0.1:{health}"))
        .replace("log stdout format raw local0 info", "")
        .replace("maxconn 4096", "maxconn 100");
    let file = write(dir.path(), "valkey-proxy.cfg", &cfg);
    children.0.push(
        std::process::Command::new("haproxy")
            .args(["-db", "-f", p(&file)])
            .env("VALKEY_PASSWORD", "pw")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let primary_port = || {
        redis_cli(front, &["info", "server"])
            .lines()
            .find_map(|l| l.trim().strip_prefix("tcp_port:").map(str::to_owned))
    };
    let wait_for = |want: u16| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if primary_port().as_deref() == Some(want.to_string().as_str()) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the proxy never reached the primary on {want} (last: {:?})",
                primary_port()
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    };
    wait_for(p0);
    assert!(redis_cli(front, &["info", "replication"]).contains("role:master"));
    // Promote the replica and demote the old primary, as Sentinel would.
    redis_cli(p1, &["replicaof", "no", "one"]);
    redis_cli(p0, &["replicaof", "127.0.0.1", &p1.to_string()]);
    wait_for(p1);
    assert!(redis_cli(front, &["set", "k", "v"]).contains("OK"));
}

/// Every shell script the chart ships (ConfigMap `*.sh` keys and `sh -c` container commands)
/// parses.
#[test]
fn every_shell_script_in_the_chart_parses() {
    require("sh", "dash");
    let dir = tempfile::tempdir().unwrap();
    let mut scripts = 0;
    for (variant, extra) in VARIANTS {
        let docs = documents(&render("5k", extra));
        let mut check = |what: String, script: &str| {
            let file = write(dir.path(), "script.sh", script);
            let out = run("sh", &["-n", p(&file)], dir.path());
            assert_eq!(
                out.code, 0,
                "{variant}: {what} does not parse:\n{}",
                out.stderr
            );
            scripts += 1;
        };
        for d in &docs {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            if d["kind"].as_str() == Some("ConfigMap") {
                for (key, text) in d["data"].as_mapping().unwrap() {
                    let key = key.as_str().unwrap();
                    if key.ends_with(".sh") {
                        check(format!("{name}/{key}"), text.as_str().unwrap());
                    }
                }
            }
            let spec = &d["spec"]["template"]["spec"];
            let containers = spec["containers"]
                .as_sequence()
                .into_iter()
                .flatten()
                .chain(spec["initContainers"].as_sequence().into_iter().flatten());
            for c in containers {
                let cmd: Vec<&str> = c["command"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if cmd.len() == 3 && cmd[0] == "/bin/sh" && cmd[1] == "-c" {
                    check(format!("{name}/{}", c["name"].as_str().unwrap()), cmd[2]);
                }
            }
        }
    }
    assert!(scripts > 20, "only {scripts} scripts found");
}

/// A worker pod's command writes its worker_name from the pod name and starts Synapse with
/// the four config files, in order.
#[test]
fn a_worker_command_names_the_worker_after_its_pod() {
    let docs = documents(&render("1k", &[]));
    let sts = find(&docs, "StatefulSet", "msg-synapse-synchrotron");
    let cmd = &sts["spec"]["template"]["spec"]["containers"][0]["command"];
    assert_eq!(cmd[0].as_str(), Some("/bin/sh"));
    let dir = tempfile::tempdir().unwrap();
    let script = cmd[2]
        .as_str()
        .unwrap()
        .replace("/run/synapse/", &format!("{}/", dir.path().display()))
        .replace("exec python", "exec echo python");
    let out = run(
        "sh",
        &[
            "-c",
            &format!("POD_NAME=msg-synapse-synchrotron-1; {script}"),
        ],
        dir.path(),
    )
    .ok();
    let written = std::fs::read_to_string(dir.path().join("worker-name.yaml")).unwrap();
    assert_eq!(written, "worker_name: synchrotron-1\n");
    let args: Vec<&str> = out.stdout.split_whitespace().collect();
    let configs: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--config-path="))
        .collect();
    assert_eq!(&args[..3], &["python", "-m", "synapse.app.generic_worker"]);
    assert_eq!(
        configs,
        [
            "/config/homeserver.yaml",
            "/secrets/secrets.yaml",
            "/config/worker-synchrotron.yaml",
            &format!("{}/worker-name.yaml", dir.path().display()),
        ]
    );
    let main = find(&docs, "StatefulSet", "msg-synapse-main");
    let cmd: Vec<&str> = main["spec"]["template"]["spec"]["containers"][0]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        cmd,
        [
            "python",
            "-m",
            "synapse.app.homeserver",
            "--config-path=/config/homeserver.yaml",
            "--config-path=/secrets/secrets.yaml"
        ]
    );
}

/// What the fake Garage admin API saw: (method, absolute URL, body).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A stand-in for Garage's admin API v2, reached as an HTTP proxy so the setup script runs
/// unchanged against the in-cluster host names. `layout_version` is what GetClusterLayout says.
pub(crate) fn fake_garage_admin(layout_version: u32, bucket_exists: bool) -> (u16, Seen) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Default::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, url) = (
                parts.next().unwrap_or("").to_owned(),
                parts.next().unwrap_or("").to_owned(),
            );
            let mut length = 0;
            let mut authorized = false;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if header == "Authorization: Bearer admin-token" {
                    authorized = true;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8(body).unwrap();
            log.lock()
                .unwrap()
                .push((method.clone(), url.clone(), body));
            let host = url.split('/').nth(2).unwrap_or("");
            let node = host
                .split('.')
                .next()
                .unwrap_or("")
                .rsplit('-')
                .next()
                .unwrap_or("0");
            let id = node.repeat(64);
            let op = url
                .split("/v2/")
                .nth(1)
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap_or("");
            let (status, reply) = match op {
                _ if !authorized => (403, String::new()),
                "GetNodeInfo" => (
                    200,
                    format!(r#"{{"success":{{"{id}":{{"nodeId": "{id}"}}}},"error":{{}}}}"#),
                ),
                // An applied layout assigns the three nodes (200 GiB each, the fixture's
                // storage.garage), as the setup script left it.
                "GetClusterLayout" => {
                    let roles: Vec<String> = (0..3)
                        .filter(|_| layout_version > 0)
                        .map(|i| {
                            format!(
                                r#"{{"id":"{}","zone":"z1","tags":[],"capacity":{}}}"#,
                                i.to_string().repeat(64),
                                200u64 << 30
                            )
                        })
                        .collect();
                    (
                        200,
                        format!(
                            r#"{{"version": {layout_version},"roles":[{}]}}"#,
                            roles.join(",")
                        ),
                    )
                }
                "CreateBucket" if bucket_exists => {
                    (409, r#"{"code":"BucketAlreadyExists"}"#.into())
                }
                "GetBucketInfo" => (
                    200,
                    format!(r#"{{"id": "{}","globalAliases":[]}}"#, "b".repeat(64)),
                ),
                _ => (200, "{}".into()),
            };
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (port, seen)
}

fn run_garage_setup(layout_version: u32, bucket_exists: bool) -> Vec<(String, String, String)> {
    require("wget", "wget");
    let docs = documents(&render("5k", &[]));
    let script = config_map_key(&docs, "msg-garage", "setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "setup.sh", &script);
    let (port, seen) = fake_garage_admin(layout_version, bucket_exists);
    let out = std::process::Command::new("sh")
        .arg(&file)
        .env("http_proxy", format!("http://127.0.0.1:{port}"))
        .env("no_proxy", "")
        .env("GARAGE_ADMIN_TOKEN", "admin-token")
        .env("ACCESS_KEY_ID", "GK0123456789abcdef01234567")
        .env("ACCESS_SECRET_KEY", "s".repeat(64))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap().clone();
    seen
}

#[test]
fn the_garage_setup_joins_the_nodes_applies_the_layout_and_grants_the_backup_key() {
    let seen = run_garage_setup(0, false);
    let call = |op: &str| {
        seen.iter()
            .find(|(_, url, _)| url.contains(&format!("/v2/{op}")))
            .unwrap_or_else(|| panic!("no {op} call in {seen:?}"))
            .clone()
    };
    let hosts: Vec<String> = (0..3)
        .map(|i| format!("msg-garage-{i}.msg-garage.matrix.svc.cluster.local"))
        .collect();
    let connect: serde_json::Value = serde_json::from_str(&call("ConnectClusterNodes").2).unwrap();
    let expected: Vec<String> = (0..3)
        .map(|i| format!("{}@{}:3901", i.to_string().repeat(64), hosts[i]))
        .collect();
    assert_eq!(connect, serde_json::json!(expected));
    let layout: serde_json::Value = serde_json::from_str(&call("UpdateClusterLayout").2).unwrap();
    let roles = layout["roles"].as_array().unwrap();
    assert_eq!(roles.len(), 3);
    assert_eq!(roles[0]["zone"], "z1");
    assert!(roles[0]["capacity"].as_u64().unwrap() >= 200 << 30);
    let apply: serde_json::Value = serde_json::from_str(&call("ApplyClusterLayout").2).unwrap();
    assert_eq!(apply["version"], 1);
    let key: serde_json::Value = serde_json::from_str(&call("ImportKey").2).unwrap();
    assert_eq!(key["accessKeyId"], "GK0123456789abcdef01234567");
    let bucket: serde_json::Value = serde_json::from_str(&call("CreateBucket").2).unwrap();
    assert_eq!(bucket["globalAlias"], "messenger-backups");
    let allow: serde_json::Value = serde_json::from_str(&call("AllowBucketKey").2).unwrap();
    assert_eq!(allow["bucketId"], "b".repeat(64));
    assert_eq!(allow["accessKeyId"], "GK0123456789abcdef01234567");
    assert_eq!(allow["permissions"]["write"], true);
    // Every call went to a Garage node's admin port.
    for (_, url, _) in &seen {
        assert!(
            hosts
                .iter()
                .any(|h| url.starts_with(&format!("http://{h}:3903/v2/"))),
            "{url}"
        );
    }
}

#[test]
fn a_second_garage_setup_run_changes_no_layout_and_tolerates_the_existing_bucket() {
    let seen = run_garage_setup(3, true);
    for op in ["UpdateClusterLayout", "ApplyClusterLayout"] {
        assert!(
            !seen.iter().any(|(_, url, _)| url.contains(op)),
            "{op} on an applied layout"
        );
    }
    assert!(seen
        .iter()
        .any(|(_, url, _)| url.contains("AllowBucketKey")));
}

#[test]
fn a_profile_too_big_for_the_sites_nodes_is_refused() {
    let out = template("20k", &["--set", "nodes.count=2"]).failed();
    assert!(
        out.stderr.contains("nodes: profile 20k requests") && out.stderr.contains("CPU"),
        "{}",
        out.stderr
    );
}

/// The chart's own capacity check (`messenger.requests` in _helpers.tpl, refused by
/// _validate.tpl) counts what `installer capacity` and the preflight count (the capacity
/// crate): the same CPU and memory for every profile, with the Envoy proxies the chart's
/// EnvoyProxy sizes (`gateway.envoy.manage`, each with the shutdown-manager sidecar's 10m and
/// 32Mi) and without them.
#[test]
fn the_charts_capacity_check_requests_what_installer_capacity_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut site: Value =
        serde_norway::from_str(&std::fs::read_to_string(site_file()).unwrap()).unwrap();
    site["gateway"]["envoy"] = serde_norway::from_str("{manage: false}").unwrap();
    let own_class = write(
        dir.path(),
        "site.yaml",
        &serde_norway::to_string(&site).unwrap(),
    );
    // One node of 1 CPU and 1 GiB: every profile fails, and the message gives its requests.
    let tiny = [
        "--set",
        "nodes.count=1",
        "--set",
        "nodes.cpu=1",
        "--set",
        "nodes.memoryGiB=1",
    ];
    for profile in PROFILES {
        let mut envoy_terms = Vec::new();
        for (manage, crate_site) in [("true", site_file()), ("false", own_class.clone())] {
            let set = format!("gateway.envoy.manage={manage}");
            let mut args = tiny.to_vec();
            args.extend(["--set", &set]);
            let stderr = template(profile, &args).failed().stderr;
            // `nodes: profile P requests 12650m CPU but ...`, `... requests 25952Mi memory but`.
            let requested = |unit: &str| -> u64 {
                let prefix = format!("nodes: profile {profile} requests ");
                stderr
                    .split(&prefix)
                    .skip(1)
                    .find_map(|rest| rest.split_once(unit)?.0.parse().ok())
                    .unwrap_or_else(|| panic!("no {unit} in\n{stderr}"))
            };
            let (cpu, memory_mib) = (requested("m CPU"), requested("Mi memory"));
            let counted = capacity::requests(&chart(), &crate_site, Some(profile)).unwrap();
            assert_eq!(
                (cpu, memory_mib),
                (counted.cpu, counted.memory / (1024 * 1024)),
                "profile {profile}, gateway.envoy.manage={manage}"
            );
            envoy_terms.push((cpu, memory_mib));
        }
        // The proxies' share: replicas × (gateway.envoy.resources + 10m, 32Mi).
        let values: Value = serde_norway::from_str(
            &std::fs::read_to_string(chart().join(format!("profiles/{profile}.yaml"))).unwrap(),
        )
        .unwrap();
        let envoy = &values["gateway"]["envoy"];
        let replicas = envoy["replicas"].as_u64().unwrap();
        let requests = &envoy["resources"]["requests"];
        let cpu = capacity::parse_cpu(requests["cpu"].as_str().unwrap()).unwrap();
        let memory = capacity::parse_memory(requests["memory"].as_str().unwrap()).unwrap();
        assert_eq!(
            (
                envoy_terms[0].0 - envoy_terms[1].0,
                envoy_terms[0].1 - envoy_terms[1].1
            ),
            (
                replicas * (cpu + 10),
                replicas * (memory / (1024 * 1024) + 32)
            ),
            "profile {profile}"
        );
    }
}

/// `kubernetes-validate --strict` of `files` (run in `dir`), which must pass; what it said.
pub(crate) fn validate_strictly(dir: &Path, files: &[PathBuf]) -> String {
    let mut args = vec!["--strict", "--quiet"];
    args.extend(files.iter().map(|f| p(f)));
    let out = run("kubernetes-validate", &args, dir);
    assert_eq!(
        out.code, 0,
        "kubernetes-validate failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    format!("{}\n{}", out.stdout, out.stderr)
}

/// Asserts that rclone `container` reaches the S3 `endpoint` with the keys of Secret `secret`
/// (`RCLONE_S3_*` variables), for the render `variant`.
pub(crate) fn assert_rclone_s3_env(container: &Value, endpoint: &str, secret: &str, variant: &str) {
    let env: BTreeMap<&str, &Value> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(
        env["RCLONE_S3_ENDPOINT"]["value"].as_str(),
        Some(endpoint),
        "{variant}"
    );
    for key in ["RCLONE_S3_ACCESS_KEY_ID", "RCLONE_S3_SECRET_ACCESS_KEY"] {
        assert_eq!(
            env[key]["valueFrom"]["secretKeyRef"]["name"].as_str(),
            Some(secret),
            "{variant}"
        );
    }
}

/// The `[[release]]` of releases.toml that installs the locked upstream chart `chart`.
pub(crate) fn locked_release(chart: &str) -> toml::Value {
    let releases: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("releases.toml")).unwrap()).unwrap();
    releases["release"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["chart"].as_str() == Some(&format!("locked:{chart}")))
        .unwrap_or_else(|| panic!("{chart} in releases.toml"))
        .clone()
}
