//! The lawful-intercept instance's deployment (issue 15, `li.enabled`): off renders nothing of
//! it; on, every profile renders and validates as the core stack does, the LI namespace runs
//! restricted pods behind its own quota and default-deny policies, a table of flows evaluated
//! over every rendered NetworkPolicy (both namespaces) allows exactly the LI paths, the LI
//! routes attach only to the Gateway's LI listeners (and main routes never do), the images are
//! images.toml's, the Garage setup grants the LI key read only, and every Secret the LI objects
//! name is one the installer makes in that namespace.
//!
//! Needs `helm` and `kubernetes-validate` on PATH (and `wget` for the Garage setup script).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde_norway::Value;
use test_support::process::Service;
use test_support::{p, run};

use crate::stack_chart::{
    config_map_key, documents, fake_garage_admin, find, need, render, root, template, write,
    NAMESPACE, RELEASE,
};

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
const LI_NS: &str = "matrix-li";
/// The site's key_vault image in these tests (no public image exists; a site names its own).
const KEY_VAULT_IMAGE: &str = "registry.example.test/site/key-vault:1.0";
const LI_ON: &[&str] = &[
    "--set",
    "li.enabled=true",
    "--set",
    "li.keyVault.image=registry.example.test/site/key-vault:1.0",
];
/// The site's S3 store (the core stack's external variant) and its read-only key for LI.
fn external_s3() -> Vec<&'static str> {
    [
        crate::stack_chart::EXTERNAL_S3,
        &["--set", "li.mediaSync.credentialsSecret=site-s3-read"],
    ]
    .concat()
}

fn li_docs(profile: &str, extra: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = LI_ON.iter().chain(extra).copied().collect();
    documents(&render(profile, &args))
}

fn ns_of(doc: &Value) -> &str {
    doc["metadata"]["namespace"].as_str().unwrap_or(NAMESPACE)
}

fn key(doc: &Value) -> (String, String, String) {
    (
        ns_of(doc).to_owned(),
        doc["kind"].as_str().unwrap_or("").to_owned(),
        doc["metadata"]["name"].as_str().unwrap_or("").to_owned(),
    )
}

/// The pod template of a workload.
fn pod_template(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => Some(&doc["spec"]["template"]),
        "CronJob" => Some(&doc["spec"]["jobTemplate"]["spec"]["template"]),
        _ => None,
    }
}

// --- on and off -------------------------------------------------------------------------------

/// Off (the default) renders nothing of LI: no object in the LI namespace, no LI object, listener,
/// key or audit label in the release namespace. On adds, in the release namespace, only the two
/// allowances the main side must give (replication into the main PostgreSQL, the media sync into
/// Garage), and changes there only the Gateway (its LI listeners) and the Garage setup (the LI
/// read-only key): every other main object is byte-identical.
#[test]
fn li_off_renders_nothing_of_it_and_on_touches_the_main_namespace_only_where_it_must() {
    let off_text = render("1k", &[]);
    assert_eq!(off_text, render("1k", &["--set", "li.enabled=false"]));
    let off = documents(&off_text);
    // Monitoring's LI dashboard (charts/messenger/dashboards/li-sync.json) ships with every
    // dashboard, LI on or off (monitoring_dashboards.rs counts one ConfigMap per file); it reads
    // metrics only and creates nothing of LI.
    let dashboard = "msg-dashboard-li-sync";
    let off: Vec<Value> = off
        .into_iter()
        .filter(|d| d["metadata"]["name"].as_str() != Some(dashboard))
        .collect();
    let off_text = serde_norway::to_string(&off).unwrap();
    for doc in &off {
        let (ns, kind, name) = key(doc);
        assert_ne!(ns, LI_NS, "{kind}/{name} in the LI namespace with LI off");
        assert!(
            !name.contains("-li-") && !name.ends_with("-li"),
            "{kind}/{name} with LI off"
        );
    }
    for needle in [
        "matrix-li",
        "li-s3-read",
        "LI_ACCESS",
        "https-li-",
        "logs.messenger/stream",
        "synapse-li",
    ] {
        assert!(!off_text.contains(needle), "{needle} rendered with LI off");
    }

    let on = li_docs("1k", &[]);
    let off_by_key: BTreeMap<_, _> = off.iter().map(|d| (key(d), d)).collect();
    let mut added_main = BTreeSet::new();
    let mut changed_main = BTreeSet::new();
    let mut in_li = 0;
    for doc in &on {
        let k = key(doc);
        if k.0 == LI_NS {
            in_li += 1;
            continue;
        }
        // LI-DATA's publications live beside the main cluster they publish
        // (templates/li/replication.yaml); the LI dashboard is monitoring's (above).
        if (k.1 == "Publication" && k.0 == NAMESPACE) || k.2 == dashboard {
            continue;
        }
        match off_by_key.get(&k) {
            None => {
                added_main.insert(format!("{}/{}/{}", k.0, k.1, k.2));
            }
            Some(before) if *before != doc => {
                changed_main.insert(format!("{}/{}", k.1, k.2));
            }
            Some(_) => {}
        }
    }
    assert!(in_li > 25, "only {in_li} objects in {LI_NS}");
    assert_eq!(
        added_main,
        BTreeSet::from([
            "matrix/NetworkPolicy/msg-garage-li-media-sync".to_owned(),
            "matrix/NetworkPolicy/msg-postgres-li-replication".to_owned(),
        ]),
        "LI objects outside the LI namespace"
    );
    for changed in &changed_main {
        assert!(
            [
                "Gateway/msg",
                "ConfigMap/msg-garage",
                "Job/msg-bucket-setup",
                // Synapse's config (and so its pods' checksums) may name LI (LI-DATA's
                // redaction retention; the publication on the main cluster).
                "Cluster/msg-pg",
            ]
            .contains(&changed.as_str())
                || changed.starts_with("ConfigMap/msg-synapse")
                || changed.starts_with("StatefulSet/msg-synapse-"),
            "LI changes {changed} in the release namespace"
        );
    }
    assert!(changed_main.contains("Gateway/msg"), "{changed_main:?}");
}

/// Every profile renders with LI on (Garage and external object storage, key_vault on and
/// off) and the output passes `kubernetes-validate --strict` as the core stack's does
/// (stack_chart.rs), custom resources aside.
#[test]
fn every_profile_with_li_on_renders_and_validates_strictly() {
    need(
        "kubernetes-validate",
        "pip install kubernetes-validate (scripts/setup.sh)",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let external = external_s3();
    let variants: &[(&str, &[&str])] = &[
        ("garage", &[]),
        ("external-s3", &external),
        ("no-key-vault", &["--set", "li.keyVault.enabled=false"]),
        (
            "sources",
            &["--set-json", r#"li.allowedSourceRanges=["10.30.7.0/24"]"#],
        ),
    ];
    for profile in PROFILES {
        for (variant, extra) in variants {
            let args: Vec<&str> = LI_ON.iter().chain(extra.iter()).copied().collect();
            let rendered = render(profile, &args);
            let docs = documents(&rendered);
            find(&docs, "Deployment", "msg-synapse-li");
            files.push(write(
                dir.path(),
                &format!("{profile}-{variant}.yaml"),
                &rendered,
            ));
        }
    }
    let said = crate::stack_chart::validate_strictly(dir.path(), &files);
    // The core stack's custom kinds include LI's (ReferenceGrant, CloudNativePG's
    // Publication, Subscription and Database).
    crate::stack_chart::validated_but_custom_kinds(&said);
}

/// The chart refuses an LI site it cannot deploy safely, naming the field.
#[test]
fn li_settings_that_cannot_work_are_refused_naming_the_field() {
    let refused = |extra: &[&str]| {
        let mut args = vec!["--set", "li.enabled=true"];
        args.extend(extra);
        template("1k", &args).failed().stderr
    };
    let e = refused(&[]);
    assert!(e.contains("li.keyVault.image: required"), "{e}");
    let e = refused(&[
        "--set",
        &format!("li.keyVault.image={KEY_VAULT_IMAGE}"),
        "--set",
        "li.namespace=matrix",
    ]);
    assert!(e.contains("li.namespace: matrix is shared"), "{e}");
    let e = refused(&[
        "--set",
        &format!("li.keyVault.image={KEY_VAULT_IMAGE}"),
        "--set",
        "li.keyVault.port=8080",
    ]);
    assert!(
        e.contains("li.keyVault.port: 8080 is key_vault's audit proxy's port"),
        "{e}"
    );
    let e = refused(&[
        "--set",
        "li.keyVault.enabled=false",
        "--set-json",
        r#"li.allowedSourceRanges=["0.0.0.0/0"]"#,
    ]);
    assert!(
        e.contains("li.allowedSourceRanges: 0.0.0.0/0 admits every address"),
        "{e}"
    );
    let e = refused(&[
        "--set",
        "li.keyVault.enabled=false",
        "--set-json",
        r#"li.allowedSourceRanges=["10.30.7.0/24"]"#,
        "--set",
        "gateway.envoy.manage=false",
    ]);
    assert!(
        e.contains("li.allowedSourceRanges: enforced by an Envoy Gateway SecurityPolicy"),
        "{e}"
    );
    let e = refused(&[
        "--set",
        "li.keyVault.enabled=false",
        "--set",
        "li.hosts.element=chat",
    ]);
    assert!(
        e.contains("li.hosts.element: chat is a host of the main instance"),
        "{e}"
    );
    let e = refused(&[
        "--set",
        "li.keyVault.enabled=false",
        "--set",
        "backup.media.enabled=false",
    ]);
    assert!(
        e.contains("backup.media.enabled: the LI media sync copies"),
        "{e}"
    );
    let mut external: Vec<&str> = crate::stack_chart::EXTERNAL_S3.to_vec();
    external.extend(["--set", "li.keyVault.enabled=false"]);
    let e = refused(&external);
    assert!(
        e.contains("li.mediaSync.credentialsSecret: required"),
        "{e}"
    );
    let e = refused(&["--set", "li.keyVault.enabled=false", "--set", "li.bogus=1"]);
    assert!(
        e.contains("bogus"),
        "the schema names the unknown field: {e}"
    );
}

// --- the LI namespace -------------------------------------------------------------------------

/// The installer plans the LI namespace from the rendered manifests with the strictest Pod
/// Security level (no LI pod needs more), every LI pod is restricted like the core stack's, and
/// the namespace has its own ResourceQuota (covering what its pods request), LimitRange and
/// default-deny policy.
#[test]
fn the_li_namespace_is_restricted_with_its_own_quota_and_default_deny() {
    use installer::deploy::namespaces;
    use installer::deploy::plan::{PlannedRelease, Rendered};
    use installer::deploy::render::ReleaseInput;
    let rendered = render("1k", LI_ON);
    let release = Rendered {
        release: PlannedRelease {
            name: RELEASE.into(),
            namespace: NAMESPACE.into(),
            chart: "messenger".into(),
            values: Vec::new(),
            objects: 0,
            images: Vec::new(),
            waits: Vec::new(),
        },
        input: ReleaseInput {
            name: RELEASE.into(),
            namespace: NAMESPACE.into(),
            chart: "messenger.tgz".into(),
            values: Vec::new(),
        },
        manifests: rendered.clone(),
    };
    let plan = namespaces::plan(&[release]);
    let li = plan
        .iter()
        .find(|n| n.name == LI_NS)
        .unwrap_or_else(|| panic!("{LI_NS} not planned: {plan:?}"));
    assert_eq!(li.enforce, "restricted", "{li:?}");
    let ns: serde_json::Value =
        serde_json::from_str(namespaces::manifest(li).trim_start_matches("---\n")).unwrap();
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );

    let docs = documents(&rendered);
    let mut pods = 0;
    for doc in docs.iter().filter(|d| ns_of(d) == LI_NS) {
        let Some(template) = pod_template(doc) else {
            continue;
        };
        pods += 1;
        let name = doc["metadata"]["name"].as_str().unwrap();
        let spec = &template["spec"];
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault"),
            "{name}"
        );
        assert_eq!(
            spec["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{name}"
        );
        assert!(spec["hostNetwork"].is_null(), "{name}");
        for c in spec["containers"].as_sequence().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(
                sc["allowPrivilegeEscalation"].as_bool(),
                Some(false),
                "{name}"
            );
            assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true), "{name}");
            assert_eq!(
                sc["capabilities"]["drop"][0].as_str(),
                Some("ALL"),
                "{name}"
            );
            assert!(c["resources"]["requests"]["memory"].is_string(), "{name}");
        }
    }
    assert_eq!(
        pods, 5,
        "synapse-li, element-web-li, synapse-admin-li, key_vault, media sync"
    );

    let deny = find(&docs, "NetworkPolicy", "msg-li-default-deny");
    assert_eq!(ns_of(deny), LI_NS);
    assert_eq!(
        deny["spec"]["podSelector"],
        serde_norway::from_str::<Value>("{}").unwrap()
    );
    let limits = find(&docs, "LimitRange", "msg-li-limits");
    assert_eq!(ns_of(limits), LI_NS);
    let quota = find(&docs, "ResourceQuota", "msg-li-quota");
    assert_eq!(ns_of(quota), LI_NS);
    // The quota covers the pods' own requests: synapse-li, the two web apps, key_vault, the
    // media sync and the LI PostgreSQL instances (profile 1k's li values).
    let hard = &quota["spec"]["hard"];
    let mib = |q: &str| -> u64 {
        q.strip_suffix("Mi")
            .map(|n| n.parse().unwrap())
            .or_else(|| {
                q.strip_suffix("Gi")
                    .map(|n| n.parse::<u64>().unwrap() * 1024)
            })
            .unwrap()
    };
    let mut requested = 0;
    for doc in docs.iter().filter(|d| ns_of(d) == LI_NS) {
        if let Some(t) = pod_template(doc) {
            let replicas = doc["spec"]["replicas"].as_u64().unwrap_or(1);
            for c in t["spec"]["containers"].as_sequence().unwrap() {
                requested += replicas * mib(c["resources"]["requests"]["memory"].as_str().unwrap());
            }
        }
    }
    assert!(
        mib(hard["requests.memory"].as_str().unwrap()) > requested,
        "quota {} below the workloads' {requested}Mi",
        hard["requests.memory"].as_str().unwrap()
    );
    assert_eq!(hard["services.loadbalancers"].as_str(), Some("0"));
    assert_eq!(hard["services.nodeports"].as_str(), Some("0"));
}

// --- NetworkPolicy flows ----------------------------------------------------------------------

/// One endpoint of a flow: a pod (namespace, labels, address) or an address outside the cluster.
#[derive(Debug, Clone)]
struct Endpoint {
    name: String,
    /// None: not a pod (an address outside the cluster's pods).
    namespace: Option<String>,
    labels: BTreeMap<String, String>,
    ip: Ipv4Addr,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The pods of every rendered workload, plus those the operators and the cluster run (CNPG
/// instances and poolers, the Gateway's Envoy proxies and its controller, DNS, Prometheus,
/// Loki, the CNPG operator, a pod of another namespace), and addresses outside the cluster.
fn endpoints(docs: &[Value]) -> BTreeMap<String, Endpoint> {
    let mut out = BTreeMap::new();
    let mut next = 1u32;
    let mut add =
        |name: &str, ns: Option<&str>, labels: BTreeMap<String, String>, ip: Option<Ipv4Addr>| {
            let ip = ip.unwrap_or_else(|| {
                next += 1;
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + next)
            });
            out.insert(
                name.to_owned(),
                Endpoint {
                    name: name.to_owned(),
                    namespace: ns.map(str::to_owned),
                    labels,
                    ip,
                },
            );
        };
    for doc in docs {
        if let Some(t) = pod_template(doc) {
            let l: BTreeMap<String, String> =
                serde_norway::from_value(t["metadata"]["labels"].clone()).unwrap();
            add(
                doc["metadata"]["name"].as_str().unwrap(),
                Some(ns_of(doc)),
                l,
                None,
            );
        }
    }
    add(
        "main-postgres",
        Some(NAMESPACE),
        labels(&[("cnpg.io/cluster", "msg-pg")]),
        None,
    );
    add(
        "main-pooler",
        Some(NAMESPACE),
        labels(&[("cnpg.io/poolerName", "msg-pg-pooler-rw")]),
        None,
    );
    add(
        "li-postgres",
        Some(LI_NS),
        labels(&[("cnpg.io/cluster", "msg-li-postgres")]),
        None,
    );
    add(
        "li-postgres-import",
        Some(LI_NS),
        labels(&[
            ("cnpg.io/cluster", "msg-li-postgres"),
            ("cnpg.io/jobRole", "import"),
        ]),
        None,
    );
    add(
        "envoy",
        Some("envoy-gateway-system"),
        labels(&[
            ("app.kubernetes.io/name", "envoy"),
            ("app.kubernetes.io/component", "proxy"),
            ("gateway.envoyproxy.io/owning-gateway-name", RELEASE),
            ("gateway.envoyproxy.io/owning-gateway-namespace", NAMESPACE),
        ]),
        None,
    );
    add(
        "envoy-gateway-controller",
        Some("envoy-gateway-system"),
        labels(&[("control-plane", "envoy-gateway")]),
        None,
    );
    add(
        "kube-dns",
        Some("kube-system"),
        labels(&[("k8s-app", "kube-dns")]),
        None,
    );
    add(
        "prometheus",
        Some("monitoring"),
        labels(&[("app.kubernetes.io/name", "prometheus")]),
        None,
    );
    add(
        "loki",
        Some("monitoring"),
        labels(&[("app.kubernetes.io/name", "loki")]),
        None,
    );
    add(
        "cnpg-operator",
        Some("cnpg-system"),
        labels(&[("app.kubernetes.io/name", "cloudnative-pg")]),
        None,
    );
    add(
        "other-namespace-pod",
        Some("default"),
        labels(&[("app", "x")]),
        None,
    );
    add(
        "internet",
        None,
        BTreeMap::new(),
        Some(Ipv4Addr::new(203, 0, 113, 7)),
    );
    add(
        "api-server",
        None,
        BTreeMap::new(),
        Some(Ipv4Addr::new(10, 20, 0, 5)),
    );
    add(
        "external-s3",
        None,
        BTreeMap::new(),
        Some(Ipv4Addr::new(10, 40, 0, 10)),
    );
    out
}

fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    assert!(
        selector["matchExpressions"].is_null(),
        "the evaluator knows matchLabels only: {selector:?}"
    );
    match selector["matchLabels"].as_mapping() {
        None => true,
        Some(m) => m.iter().all(|(k, v)| {
            labels.get(k.as_str().unwrap()).map(String::as_str) == Some(v.as_str().unwrap())
        }),
    }
}

fn cidr_contains(cidr: &str, ip: Ipv4Addr) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let net: Ipv4Addr = net.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(net) & mask == u32::from(ip) & mask
}

/// Whether a NetworkPolicy peer (`from`/`to` entry) of a policy in `policy_ns` is `e`.
fn peer_matches(peer: &Value, policy_ns: &str, e: &Endpoint) -> bool {
    if let Some(cidr) = peer["ipBlock"]["cidr"].as_str() {
        let except = peer["ipBlock"]["except"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        return cidr_contains(cidr, e.ip)
            && !except
                .iter()
                .any(|x| cidr_contains(x.as_str().unwrap(), e.ip));
    }
    let Some(ns) = &e.namespace else {
        return false;
    };
    let ns_ok = match peer.get("namespaceSelector") {
        Some(sel) => selector_matches(sel, &labels(&[("kubernetes.io/metadata.name", ns)])),
        None => ns == policy_ns,
    };
    let pod_ok = match peer.get("podSelector") {
        Some(sel) => selector_matches(sel, &e.labels),
        None => true,
    };
    ns_ok && pod_ok
}

fn port_matches(rule: &Value, protocol: &str, port: u16) -> bool {
    match rule["ports"].as_sequence() {
        None => true,
        Some(ports) if ports.is_empty() => true,
        Some(ports) => ports.iter().any(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            let number = p["port"].as_u64().expect("numeric ports only");
            proto == protocol && number == u64::from(port)
        }),
    }
}

/// Whether the rendered NetworkPolicies let `from` open `protocol`/`port` to `to`: the sender's
/// egress (when a policy of Egress type selects it) and the receiver's ingress (likewise) must
/// both allow it, as Kubernetes NetworkPolicy semantics say.
fn allowed(policies: &[&Value], from: &Endpoint, to: &Endpoint, protocol: &str, port: u16) -> bool {
    let side = |pod: &Endpoint, other: &Endpoint, direction: &str| -> bool {
        let Some(ns) = &pod.namespace else {
            return true;
        };
        let field = if direction == "Egress" {
            "egress"
        } else {
            "ingress"
        };
        let peers = if direction == "Egress" { "to" } else { "from" };
        let mut isolated = false;
        for policy in policies {
            if ns_of(policy) != ns || !selector_matches(&policy["spec"]["podSelector"], &pod.labels)
            {
                continue;
            }
            let types: Vec<&str> = policy["spec"]["policyTypes"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            if !types.contains(&direction) {
                continue;
            }
            isolated = true;
            for rule in policy["spec"][field].as_sequence().into_iter().flatten() {
                let peer_ok = match rule[peers].as_sequence() {
                    None => true,
                    Some(list) => list.iter().any(|peer| peer_matches(peer, ns, other)),
                };
                if peer_ok && port_matches(rule, protocol, port) {
                    return true;
                }
            }
        }
        !isolated
    };
    side(from, to, "Egress") && side(to, from, "Ingress")
}

/// (from, to, protocol, port, allowed)
type Flow = (&'static str, &'static str, &'static str, u16, bool);

fn check_flows(docs: &[Value], flows: &[Flow], label: &str) {
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    let ends = endpoints(docs);
    let get = |n: &str| {
        ends.get(n)
            .unwrap_or_else(|| panic!("{label}: no endpoint {n}: {:?}", ends.keys()))
    };
    let mut wrong = Vec::new();
    for (from, to, proto, port, expected) in flows {
        let got = allowed(&policies, get(from), get(to), proto, *port);
        if got != *expected {
            wrong.push(format!(
                "{from} -> {to} {proto}/{port}: {} but must be {}",
                if got { "allowed" } else { "denied" },
                if *expected { "allowed" } else { "denied" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{label}:\n{}", wrong.join("\n"));
}

const SYNAPSE_LI: &str = "msg-synapse-li";
const ELEMENT_LI: &str = "msg-element-web-li";
const ADMIN_LI: &str = "msg-synapse-admin-li";
const KEY_VAULT: &str = "msg-li-key-vault";
const MEDIA_SYNC: &str = "msg-li-media-sync";

/// Every allowed and forbidden flow the issue names, evaluated over every rendered NetworkPolicy
/// of both namespaces: only the Gateway's proxies reach the LI services; LI pods reach their own
/// database, DNS and (the LI PostgreSQL only) the main PostgreSQL on 5432, the media sync the
/// object store's S3 port only; nothing reaches the internet, Loki or the rest of the main
/// instance; no main pod and nothing else reaches the LI namespace.
#[test]
fn the_rendered_network_policies_allow_exactly_the_li_flows() {
    let docs = li_docs("1k", &[]);
    let li_pods = [
        SYNAPSE_LI,
        ELEMENT_LI,
        ADMIN_LI,
        KEY_VAULT,
        MEDIA_SYNC,
        "li-postgres",
    ];
    #[rustfmt::skip]
    let mut flows: Vec<Flow> = vec![
        // The Gateway's proxies reach the LI services on their ports, and nothing else of LI.
        ("envoy", SYNAPSE_LI, "TCP", 8008, true),
        ("envoy", ELEMENT_LI, "TCP", 8080, true),
        ("envoy", ADMIN_LI, "TCP", 8080, true),
        // key_vault only through its audit proxy, never on its own port.
        ("envoy", KEY_VAULT, "TCP", 8080, true),
        ("envoy", KEY_VAULT, "TCP", 8000, false),
        ("envoy", "li-postgres", "TCP", 5432, false),
        ("envoy", SYNAPSE_LI, "TCP", 9000, false),
        ("envoy", MEDIA_SYNC, "TCP", 8080, false),
        // Other pods of the Gateway's namespace are not the proxies.
        ("envoy-gateway-controller", SYNAPSE_LI, "TCP", 8008, false),
        // LI's own database path.
        (SYNAPSE_LI, "li-postgres", "TCP", 5432, true),
        (KEY_VAULT, "li-postgres", "TCP", 5432, true),
        ("li-postgres", "li-postgres", "TCP", 5432, true),
        (ELEMENT_LI, "li-postgres", "TCP", 5432, false),
        (MEDIA_SYNC, "li-postgres", "TCP", 5432, false),
        // The replication source: the LI PostgreSQL (and its import job) to the main
        // PostgreSQL on 5432 only; nothing else of LI reaches the main database.
        ("li-postgres", "main-postgres", "TCP", 5432, true),
        ("li-postgres-import", "main-postgres", "TCP", 5432, true),
        ("li-postgres", "main-postgres", "TCP", 8000, false),
        ("li-postgres", "main-pooler", "TCP", 5432, false),
        (SYNAPSE_LI, "main-postgres", "TCP", 5432, false),
        (SYNAPSE_LI, "main-pooler", "TCP", 5432, false),
        (KEY_VAULT, "main-postgres", "TCP", 5432, false),
        (MEDIA_SYNC, "main-postgres", "TCP", 5432, false),
        // The media sync reaches Garage's S3 port only.
        (MEDIA_SYNC, "msg-garage", "TCP", 3900, true),
        (MEDIA_SYNC, "msg-garage", "TCP", 3903, false),
        (MEDIA_SYNC, "msg-garage", "TCP", 3901, false),
        (SYNAPSE_LI, "msg-garage", "TCP", 3900, false),
        ("li-postgres", "msg-garage", "TCP", 3900, false),
        // CloudNativePG manages the LI cluster; the cluster reaches the API server.
        ("cnpg-operator", "li-postgres", "TCP", 8000, true),
        ("li-postgres", "api-server", "TCP", 6443, true),
        (SYNAPSE_LI, "api-server", "TCP", 6443, false),
        // LI -> the rest of the main instance.
        (SYNAPSE_LI, "msg-synapse-main", "TCP", 8008, false),
        (SYNAPSE_LI, "msg-haproxy", "TCP", 8008, false),
        (SYNAPSE_LI, "msg-valkey", "TCP", 6379, false),
        (SYNAPSE_LI, "msg-valkey-proxy", "TCP", 6379, false),
        (ADMIN_LI, "msg-synapse-main", "TCP", 8008, false),
        // LI -> Loki: logs leave through the API server (Alloy reads them), never pushed.
        (SYNAPSE_LI, "loki", "TCP", 3100, false),
        (KEY_VAULT, "loki", "TCP", 3100, false),
        // Inside LI: the web apps reach nothing, synapse-li not key_vault.
        (ELEMENT_LI, SYNAPSE_LI, "TCP", 8008, false),
        (ADMIN_LI, SYNAPSE_LI, "TCP", 8008, false),
        (SYNAPSE_LI, KEY_VAULT, "TCP", 8000, false),
        (SYNAPSE_LI, KEY_VAULT, "TCP", 8080, false),
        // Anything else -> LI.
        ("prometheus", SYNAPSE_LI, "TCP", 8008, false),
        ("prometheus", "li-postgres", "TCP", 9187, false),
        ("other-namespace-pod", ELEMENT_LI, "TCP", 8080, false),
        ("other-namespace-pod", SYNAPSE_LI, "TCP", 8008, false),
        ("kube-dns", SYNAPSE_LI, "TCP", 8008, false),
        // Main -> LI.
        ("msg-synapse-main", SYNAPSE_LI, "TCP", 8008, false),
        ("msg-haproxy", SYNAPSE_LI, "TCP", 8008, false),
        ("main-postgres", "li-postgres", "TCP", 5432, false),
        ("msg-garage", MEDIA_SYNC, "TCP", 3900, false),
        // The main side is unchanged for its own flows.
        ("envoy", "msg-haproxy", "TCP", 8008, true),
        ("main-pooler", "main-postgres", "TCP", 5432, true),
    ];
    // Every LI pod: DNS yes, the internet never (HTTPS, federation, anything).
    for pod in li_pods {
        flows.push((pod, "kube-dns", "UDP", 53, true));
        for port in [443, 8448, 80, 5432] {
            flows.push((pod, "internet", "TCP", port, false));
        }
    }
    check_flows(&docs, &flows, "garage");

    // No pod of the main instance reaches any LI pod on any port an LI pod listens on.
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
        .collect();
    let ends = endpoints(&docs);
    let mut main_pods = 0;
    for from in ends
        .values()
        .filter(|e| e.namespace.as_deref() == Some(NAMESPACE))
    {
        main_pods += 1;
        for to in ends
            .values()
            .filter(|e| e.namespace.as_deref() == Some(LI_NS))
        {
            for port in [8008, 8080, 8000, 5432, 9000, 9187] {
                assert!(
                    !allowed(&policies, from, to, "TCP", port),
                    "{} reaches {} on {port}",
                    from.name,
                    to.name
                );
            }
        }
    }
    assert!(main_pods > 15, "only {main_pods} main pods");

    // External object storage: the media sync reaches the store's range on its port only.
    let external = li_docs("1k", &external_s3());
    #[rustfmt::skip]
    let flows: Vec<Flow> = vec![
        (MEDIA_SYNC, "external-s3", "TCP", 9000, true),
        (MEDIA_SYNC, "external-s3", "TCP", 22, false),
        (MEDIA_SYNC, "internet", "TCP", 9000, false),
        (SYNAPSE_LI, "external-s3", "TCP", 9000, false),
        ("li-postgres", "main-postgres", "TCP", 5432, true),
    ];
    check_flows(&external, &flows, "external-s3");
    assert!(
        !external
            .iter()
            .any(|d| d["metadata"]["name"].as_str() == Some("msg-garage-li-media-sync")),
        "no Garage allowance without Garage"
    );
}

/// The evaluator itself: a default deny denies, a rule admits only its peers and ports, an
/// unselected pod is open, and ipBlocks match addresses.
#[test]
fn the_policy_evaluator_follows_networkpolicy_semantics() {
    let docs: Vec<Value> = documents(
        "kind: NetworkPolicy\nmetadata: {name: deny, namespace: a}\nspec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n\
         ---\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n  ingress:\n    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: b}}, podSelector: {matchLabels: {app: client}}}]\n      ports: [{protocol: TCP, port: 80}]\n\
         ---\nkind: NetworkPolicy\nmetadata: {name: out, namespace: a}\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n  egress:\n    - to: [{ipBlock: {cidr: 10.1.0.0/16, except: [10.1.2.0/24]}}]\n",
    );
    let policies: Vec<&Value> = docs.iter().collect();
    let pod = |ns: &str, app: &str, ip: [u8; 4]| Endpoint {
        name: app.into(),
        namespace: Some(ns.into()),
        labels: labels(&[("app", app)]),
        ip: Ipv4Addr::from(ip),
    };
    let addr = |ip: [u8; 4]| Endpoint {
        name: "addr".into(),
        namespace: None,
        labels: BTreeMap::new(),
        ip: Ipv4Addr::from(ip),
    };
    let web = pod("a", "web", [10, 0, 0, 1]);
    let client = pod("b", "client", [10, 0, 0, 2]);
    let other = pod("b", "other", [10, 0, 0, 3]);
    let same_ns_client = pod("a", "client", [10, 0, 0, 4]);
    assert!(allowed(&policies, &client, &web, "TCP", 80));
    assert!(!allowed(&policies, &client, &web, "TCP", 81));
    assert!(!allowed(&policies, &client, &web, "UDP", 80));
    assert!(!allowed(&policies, &other, &web, "TCP", 80));
    // Its egress is denied by the namespace's default deny (no egress rule admits b).
    assert!(!allowed(&policies, &same_ns_client, &web, "TCP", 80));
    assert!(allowed(&policies, &web, &addr([10, 1, 3, 4]), "TCP", 443));
    assert!(!allowed(&policies, &web, &addr([10, 1, 2, 4]), "TCP", 443));
    assert!(!allowed(&policies, &web, &addr([10, 2, 0, 1]), "TCP", 443));
    // Namespace b has no policy: open both ways.
    assert!(allowed(&policies, &other, &client, "TCP", 1));
}

// --- the Gateway -------------------------------------------------------------------------------

/// Which listeners of the Gateway a route attaches to: each parentRef's listener, if that
/// listener admits the route's namespace (Gateway API v1: allowedRoutes.namespaces from Same or
/// Selector) and shares a host name with the route. Returns (route namespace/name, listener).
fn attachments(docs: &[Value]) -> Vec<(String, String, bool)> {
    let gateway = find(docs, "Gateway", RELEASE);
    let gw_ns = ns_of(gateway);
    let listeners: BTreeMap<&str, &Value> = gateway["spec"]["listeners"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l))
        .collect();
    let mut out = Vec::new();
    for route in docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("HTTPRoute"))
    {
        let route_ns = ns_of(route);
        let route_name = format!("{route_ns}/{}", route["metadata"]["name"].as_str().unwrap());
        for parent in route["spec"]["parentRefs"].as_sequence().unwrap() {
            let parent_ns = parent["namespace"].as_str().unwrap_or(route_ns);
            assert_eq!(parent["name"].as_str(), Some(RELEASE), "{route_name}");
            assert_eq!(
                parent_ns, gw_ns,
                "{route_name}: parentRef to another namespace"
            );
            let section = parent["sectionName"]
                .as_str()
                .unwrap_or_else(|| panic!("{route_name}: parentRef without sectionName"));
            let listener = listeners
                .get(section)
                .unwrap_or_else(|| panic!("{route_name}: no listener {section}"));
            let from = &listener["allowedRoutes"]["namespaces"];
            let admitted = match from["from"].as_str() {
                Some("Same") | None => route_ns == gw_ns,
                Some("All") => true,
                Some("Selector") => selector_matches(
                    &from["selector"],
                    &labels(&[("kubernetes.io/metadata.name", route_ns)]),
                ),
                Some(other) => panic!("from {other}"),
            };
            let host_ok = match route["spec"]["hostnames"].as_sequence() {
                None => true,
                Some(h) => h.iter().any(|h| h == &listener["hostname"]),
            };
            out.push((route_name.clone(), section.to_owned(), admitted && host_ok));
        }
    }
    out
}

/// The LI hosts have their own listeners (HTTPS with the LI certificate from the LI namespace,
/// granted by a ReferenceGrant, and HTTP redirecting), which admit routes of the LI namespace
/// only; every LI route attaches to LI listeners only and every main route to main listeners
/// only, and no listener of one side would admit a route of the other. li.allowedSourceRanges
/// becomes an Envoy Gateway SecurityPolicy on every LI route.
#[test]
fn li_routes_attach_only_to_li_listeners_and_main_routes_never_do() {
    let docs = li_docs("1k", &[]);
    let gateway = find(&docs, "Gateway", RELEASE);
    let li_hosts = [
        "li-matrix.example.test",
        "li-chat.example.test",
        "li-admin.example.test",
        "li-keyvault.example.test",
    ];
    let mut li_listeners = BTreeSet::new();
    for l in gateway["spec"]["listeners"].as_sequence().unwrap() {
        let name = l["name"].as_str().unwrap();
        let host = l["hostname"].as_str().unwrap();
        let is_li = name.contains("-li-");
        assert_eq!(is_li, li_hosts.contains(&host), "{name} {host}");
        let from = &l["allowedRoutes"]["namespaces"];
        if is_li {
            li_listeners.insert(name.to_owned());
            assert_eq!(from["from"].as_str(), Some("Selector"), "{name}");
            assert!(selector_matches(
                &from["selector"],
                &labels(&[("kubernetes.io/metadata.name", LI_NS)])
            ));
            assert!(!selector_matches(
                &from["selector"],
                &labels(&[("kubernetes.io/metadata.name", NAMESPACE)])
            ));
            if l["protocol"].as_str() == Some("HTTPS") {
                let cert = &l["tls"]["certificateRefs"][0];
                assert_eq!(cert["name"].as_str(), Some("msg-li-tls"));
                assert_eq!(cert["namespace"].as_str(), Some(LI_NS));
            }
        } else {
            assert_eq!(from["from"].as_str(), Some("Same"), "{name}");
        }
    }
    assert_eq!(li_listeners.len(), 8, "{li_listeners:?}");
    let cert = find(&docs, "Certificate", "msg-li-tls");
    assert_eq!(ns_of(cert), LI_NS);
    let names: BTreeSet<&str> = cert["spec"]["dnsNames"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(names, li_hosts.into_iter().collect());
    assert_eq!(
        cert["spec"]["issuerRef"]["name"].as_str(),
        Some("messenger-ca")
    );
    let grant = find(&docs, "ReferenceGrant", "msg-li-gateway-tls");
    assert_eq!(ns_of(grant), LI_NS);
    assert_eq!(grant["spec"]["from"][0]["kind"].as_str(), Some("Gateway"));
    assert_eq!(
        grant["spec"]["from"][0]["namespace"].as_str(),
        Some(NAMESPACE)
    );
    assert_eq!(grant["spec"]["to"][0]["name"].as_str(), Some("msg-li-tls"));

    let all = attachments(&docs);
    let mut li_routes = 0;
    for (route, listener, ok) in &all {
        assert!(ok, "{route} does not attach to {listener}");
        let li_route = route.starts_with(&format!("{LI_NS}/"));
        li_routes += usize::from(li_route);
        assert_eq!(
            li_route,
            li_listeners.contains(listener),
            "{route} -> {listener}"
        );
    }
    assert!(li_routes >= 8, "{all:?}");
    // A route of either side pointed at the other side's listeners would not attach.
    let mut crossed = docs.clone();
    for route in crossed
        .iter_mut()
        .filter(|d| d["kind"].as_str() == Some("HTTPRoute"))
    {
        let li = ns_of(route) == LI_NS;
        for parent in route["spec"]["parentRefs"].as_sequence_mut().unwrap() {
            let section = parent["sectionName"].as_str().unwrap().to_owned();
            let other = if li {
                section
                    .replace("-li-synapse", "-matrix")
                    .replace("-li-", "-")
            } else {
                section
                    .replace("https-matrix", "https-li-synapse")
                    .replace("http-matrix", "http-li-synapse")
            };
            parent["sectionName"] = Value::from(other);
        }
    }
    crossed.retain(|d| {
        d["kind"].as_str() != Some("HTTPRoute")
            || d["spec"]["parentRefs"]
                .as_sequence()
                .unwrap()
                .iter()
                .all(|p| {
                    gateway["spec"]["listeners"]
                        .as_sequence()
                        .unwrap()
                        .iter()
                        .any(|l| l["name"] == p["sectionName"])
                })
    });
    for (route, listener, ok) in attachments(&crossed) {
        if route.starts_with(&format!("{LI_NS}/")) != li_listeners.contains(&listener) {
            assert!(!ok, "{route} would attach to {listener}");
        }
    }

    // No SecurityPolicy without li.allowedSourceRanges; with it, one covering every LI route.
    assert!(!docs
        .iter()
        .any(|d| d["kind"].as_str() == Some("SecurityPolicy") && ns_of(d) == LI_NS));
    let docs = li_docs(
        "1k",
        &[
            "--set-json",
            r#"li.allowedSourceRanges=["10.30.7.0/24","10.30.8.0/24"]"#,
        ],
    );
    let policy = find(&docs, "SecurityPolicy", "msg-li-sources");
    assert_eq!(ns_of(policy), LI_NS);
    assert_eq!(
        policy["spec"]["authorization"]["defaultAction"].as_str(),
        Some("Deny")
    );
    let cidrs: Vec<&str> = policy["spec"]["authorization"]["rules"][0]["principal"]["clientCIDRs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cidrs, ["10.30.7.0/24", "10.30.8.0/24"]);
    let targets: BTreeSet<&str> = policy["spec"]["targetRefs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let served: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["kind"].as_str() == Some("HTTPRoute") && ns_of(d) == LI_NS)
        .filter(|d| !d["spec"]["hostnames"].is_null())
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(targets, served);
    // Only fields of Envoy Gateway v1.9's SecurityPolicy CRD (the fixture review_edge.rs uses).
    let fixture = std::fs::read_to_string(
        root().join("crates/installer/tests/fixtures/securitypolicy-crd-paths.txt"),
    )
    .unwrap();
    for path in [
        "spec.targetRefs[].group",
        "spec.targetRefs[].kind",
        "spec.targetRefs[].name",
        "spec.authorization.defaultAction",
        "spec.authorization.rules[].principal.clientCIDRs[]",
    ] {
        assert!(fixture.lines().any(|l| l == path), "{path}");
    }
    let mut set = BTreeSet::new();
    leaf_paths(&policy["spec"], "spec", &mut set);
    for path in &set {
        assert!(
            fixture.lines().any(|l| l == path),
            "{path} not in the CRD fixture"
        );
    }
}

fn leaf_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(m) => {
            for (k, child) in m {
                leaf_paths(child, &format!("{path}.{}", k.as_str().unwrap()), out);
            }
        }
        Value::Sequence(items) => items
            .iter()
            .for_each(|i| leaf_paths(i, &format!("{path}[]"), out)),
        _ => {
            out.insert(path.to_owned());
        }
    }
}

// --- images, workloads, secrets ----------------------------------------------------------------

/// The LI images are the site file's (`images.synapseLi`, `elementWebLi`, `synapseAdminLi`,
/// `li.keyVault.image`), by default the same upstream images as the main instance, each in
/// images.toml; key_vault's is the site's own.
#[test]
fn li_images_are_the_configured_ones_and_images_toml_carries_them() {
    let toml = std::fs::read_to_string(root().join("images.toml")).unwrap();
    let listed: BTreeSet<String> = toml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ref = \""))
        .map(|r| r.trim_end_matches('"').to_owned())
        .collect();
    let values: Value = serde_norway::from_str(
        &std::fs::read_to_string(crate::stack_chart::chart().join("values.yaml")).unwrap(),
    )
    .unwrap();
    let images = &values["images"];
    for (li, main) in [
        ("synapseLi", "synapse"),
        ("elementWebLi", "elementWeb"),
        ("synapseAdminLi", "synapseAdmin"),
    ] {
        assert_eq!(images[li], images[main], "{li} defaults to {main}'s image");
        assert!(listed.contains(images[li].as_str().unwrap()), "{li}");
    }
    let docs = li_docs("1k", &[]);
    let image_of = |kind: &str, name: &str| {
        let doc = find(&docs, kind, name);
        pod_template(doc).unwrap()["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        image_of("Deployment", SYNAPSE_LI),
        images["synapseLi"].as_str().unwrap()
    );
    assert_eq!(
        image_of("Deployment", ELEMENT_LI),
        images["elementWebLi"].as_str().unwrap()
    );
    assert_eq!(
        image_of("Deployment", ADMIN_LI),
        images["synapseAdminLi"].as_str().unwrap()
    );
    assert_eq!(image_of("Deployment", KEY_VAULT), KEY_VAULT_IMAGE);
    assert_eq!(
        image_of("CronJob", MEDIA_SYNC),
        images["setup"].as_str().unwrap()
    );
    for doc in docs.iter().filter(|d| ns_of(d) == LI_NS) {
        if let Some(t) = pod_template(doc) {
            for c in t["spec"]["containers"].as_sequence().unwrap() {
                let image = c["image"].as_str().unwrap();
                assert!(
                    listed.contains(image) || image == KEY_VAULT_IMAGE,
                    "{image} is not in images.toml"
                );
            }
        }
    }
    // A site's own LI images are what renders.
    let own = li_docs(
        "1k",
        &[
            "--set",
            "images.synapseLi=registry.example.test/site/synapse:v1.164.2-li",
        ],
    );
    assert_eq!(
        pod_template(find(&own, "Deployment", SYNAPSE_LI)).unwrap()["spec"]["containers"][0]
            ["image"]
            .as_str(),
        Some("registry.example.test/site/synapse:v1.164.2-li")
    );
    // key_vault off: no key_vault object, host, listener or policy.
    let without = li_docs("1k", &["--set", "li.keyVault.enabled=false"]);
    assert!(!without.iter().any(|d| d["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n.contains("key-vault"))));
    assert!(!render(
        "1k",
        &[LI_ON[0], LI_ON[1], "--set", "li.keyVault.enabled=false"]
    )
    .contains("li-keyvault"));
}

/// synapse-li mounts LI-DATA's ConfigMap and Secret as the contract says (config at /config,
/// the module on PYTHONPATH /modules, media at /media from the LI media volume, secrets at
/// /secrets), serves 8008, and the pods whose requests are audited carry the audit stream label;
/// the media sync copies the main media backup from the bucket with a read-only key into the
/// volume synapse-li mounts, on its node, on li.mediaSync.schedule.
#[test]
fn synapse_li_and_the_media_sync_are_wired_as_the_contract_says() {
    let docs = li_docs("1k", &[]);
    let synapse = find(&docs, "Deployment", SYNAPSE_LI);
    assert_eq!(ns_of(synapse), LI_NS);
    let pod = &synapse["spec"]["template"];
    let spec = &pod["spec"];
    let c = &spec["containers"][0];
    let mounts: BTreeMap<&str, &str> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["mountPath"].as_str().unwrap(),
                m["name"].as_str().unwrap(),
            )
        })
        .collect();
    let volume = |name: &str| {
        spec["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap()
    };
    assert_eq!(
        volume(mounts["/config"])["configMap"]["name"].as_str(),
        Some("msg-synapse-li")
    );
    assert_eq!(
        volume(mounts["/modules"])["configMap"]["name"].as_str(),
        Some("msg-synapse-li")
    );
    assert_eq!(
        volume(mounts["/secrets"])["secret"]["secretName"].as_str(),
        Some("msg-li-synapse-secrets")
    );
    assert_eq!(
        volume(mounts["/media"])["persistentVolumeClaim"]["claimName"].as_str(),
        Some("msg-li-media")
    );
    let env: BTreeMap<&str, &Value> = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e))
        .collect();
    assert_eq!(env["PYTHONPATH"]["value"].as_str(), Some("/modules"));
    assert_eq!(
        env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"].as_str(),
        Some("msg-li-pg-app")
    );
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(8008));
    assert_eq!(
        synapse["spec"]["strategy"]["type"].as_str(),
        Some("Recreate")
    );
    let svc = find(&docs, "Service", SYNAPSE_LI);
    assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(8008));
    for (kind, name, audited) in [
        ("Deployment", SYNAPSE_LI, true),
        ("Deployment", ADMIN_LI, true),
        ("Deployment", KEY_VAULT, true),
        ("Deployment", ELEMENT_LI, false),
    ] {
        let labels = &find(&docs, kind, name)["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            labels["logs.messenger/stream"].as_str() == Some("audit"),
            audited,
            "{name}"
        );
    }
    // No audit label outside the LI namespace.
    for doc in docs.iter().filter(|d| ns_of(d) != LI_NS) {
        if let Some(t) = pod_template(doc) {
            assert!(t["metadata"]["labels"]["logs.messenger/stream"].is_null());
        }
    }

    let external = external_s3();
    for (variant, extra, secret, endpoint) in [
        (
            "garage",
            &[][..],
            "msg-li-s3-read",
            "http://msg-garage.matrix.svc.cluster.local:3900",
        ),
        (
            "external",
            &external[..],
            "site-s3-read",
            "https://s3.example.test:9000",
        ),
    ] {
        let docs = li_docs("1k", extra);
        let cron = find(&docs, "CronJob", MEDIA_SYNC);
        assert_eq!(ns_of(cron), LI_NS);
        assert_eq!(cron["spec"]["schedule"].as_str(), Some("15 * * * *"));
        assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
        let spec = &pod_template(cron).unwrap()["spec"];
        let c = &spec["containers"][0];
        crate::stack_chart::assert_rclone_s3_env(c, endpoint, secret, variant);
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["claimName"].as_str(),
            Some("msg-li-media")
        );
        let affinity =
            &spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(
            affinity["labelSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str(),
            Some("li-synapse")
        );
        let script = config_map_key(&docs, MEDIA_SYNC, "sync.sh");
        assert!(
            script.contains(r#"src=":s3:messenger-backups/media/msg/current""#)
                && script.contains(r#"rclone copy "$src" /media"#),
            "{script}"
        );
        assert!(
            !script.contains("rclone sync"),
            "LI keeps what main removes"
        );
    }
    // The main media backup writes exactly what the sync reads.
    let backup = config_map_key(&docs, "msg-media-backup", "backup.sh");
    assert!(
        backup.contains(r#"dest=":s3:messenger-backups/media/msg""#)
            && backup.contains(r#""$dest/current""#)
    );
}

/// With LI on, the Garage setup (the rendered script, against a stand-in of Garage's admin API
/// as stack_chart.rs runs it) imports the installer's LI key and leaves it read only on the
/// bucket: write and owner denied, read allowed; the backup key keeps its rights.
#[test]
fn the_garage_setup_grants_the_li_media_key_read_only() {
    crate::stack_chart::need("wget", "apt-get install wget");
    let docs = li_docs("5k", &[]);
    let script = config_map_key(&docs, "msg-garage", "setup.sh");
    let job = find(&docs, "Job", "msg-bucket-setup");
    let env: Vec<&str> = job["spec"]["template"]["spec"]["initContainers"][0]["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"]["secretKeyRef"]["name"].as_str() == Some("msg-li-s3-read"))
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["LI_ACCESS_KEY_ID", "LI_ACCESS_SECRET_KEY"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "setup.sh", &script);
    let (port, seen) = fake_garage_admin(0, false);
    let li_key = "GKfedcba9876543210fedcba98";
    let out = std::process::Command::new("sh")
        .arg(&file)
        .env("http_proxy", format!("http://127.0.0.1:{port}"))
        .env("no_proxy", "")
        .env("GARAGE_ADMIN_TOKEN", "admin-token")
        .env("ACCESS_KEY_ID", "GK0123456789abcdef01234567")
        .env("ACCESS_SECRET_KEY", "s".repeat(64))
        .env("LI_ACCESS_KEY_ID", li_key)
        .env("LI_ACCESS_SECRET_KEY", "r".repeat(64))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = seen.lock().unwrap().clone();
    let calls = |op: &str, key: &str| -> Vec<serde_json::Value> {
        seen.iter()
            .filter(|(_, url, _)| url.contains(&format!("/v2/{op}")))
            .map(|(_, _, body)| serde_json::from_str::<serde_json::Value>(body).unwrap())
            .filter(|b| b["accessKeyId"] == key)
            .collect()
    };
    let import = calls("ImportKey", li_key);
    assert_eq!(import.len(), 1, "{seen:?}");
    assert_eq!(import[0]["secretAccessKey"], "r".repeat(64));
    let deny = calls("DenyBucketKey", li_key);
    assert_eq!(deny.len(), 1);
    assert_eq!(deny[0]["permissions"]["write"], true);
    assert_eq!(deny[0]["permissions"]["owner"], true);
    assert_eq!(deny[0]["permissions"]["read"], false);
    let allow = calls("AllowBucketKey", li_key);
    assert_eq!(allow.len(), 1);
    assert_eq!(
        allow[0]["permissions"],
        serde_json::json!({"read": true, "write": false, "owner": false})
    );
    assert_eq!(allow[0]["bucketId"], "b".repeat(64));
    // The deny comes before the allow, so a key that once had more is read only afterwards.
    let position = |op: &str| {
        seen.iter()
            .position(|(_, url, body)| url.contains(op) && body.contains(li_key))
            .unwrap()
    };
    assert!(position("DenyBucketKey") < position("AllowBucketKey"));
    let backup = calls("AllowBucketKey", "GK0123456789abcdef01234567");
    assert_eq!(backup[0]["permissions"]["write"], true);
}

/// Every Secret an LI object names is one the installer creates in that object's namespace
/// (crates/installer/src/secrets, with LI's namespace as the deploy plan finds it), the site's
/// read-only key in external mode, or a certificate's: nothing LI references is missing or in
/// the wrong namespace.
#[test]
fn every_secret_li_references_is_made_in_its_namespace() {
    let external = external_s3();
    for (variant, extra) in [("garage", &[][..]), ("external", &external[..])] {
        let docs = li_docs("1k", extra);
        let mut provided: BTreeSet<(String, String)> =
            crate::harness::chart::installer_secrets(RELEASE, NAMESPACE, &docs)
                .iter()
                .map(|s| {
                    (
                        s["metadata"]["namespace"].as_str().unwrap().to_owned(),
                        s["metadata"]["name"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
        provided.extend(
            docs.iter()
                .filter(|d| matches!(d["kind"].as_str(), Some("Certificate")))
                .map(|d| {
                    (
                        ns_of(d).to_owned(),
                        d["spec"]["secretName"].as_str().unwrap().to_owned(),
                    )
                }),
        );
        provided.insert((LI_NS.into(), "site-s3-read".into()));
        provided.insert((NAMESPACE.into(), "site-s3".into()));
        provided.insert((NAMESPACE.into(), "msg-s3-region".into()));
        let mut missing = Vec::new();
        let mut li_refs = 0;
        for doc in &docs {
            let mut names = BTreeSet::new();
            crate::stack_chart::referenced_secrets(doc, &mut names);
            for name in names {
                let ns = ns_of(doc).to_owned();
                if ns == LI_NS || name.contains("-li-") {
                    li_refs += 1;
                }
                if !provided.contains(&(ns.clone(), name.clone())) {
                    missing.push(format!(
                        "{ns}/{name} ({})",
                        doc["metadata"]["name"].as_str().unwrap()
                    ));
                }
            }
        }
        assert!(missing.is_empty(), "{variant}: nothing creates {missing:?}");
        assert!(li_refs >= 6, "{variant}: {li_refs}");
    }
}

// --- the deploy plan ---------------------------------------------------------------------------

/// `installer deploy --dry-run` with LI on plans the LI namespace (restricted), creates every
/// `<release>-li-*` Secret in the namespace that references it, and waits in its `li` step for
/// the LI workloads, database and certificate (they are part of the stack's release).
#[test]
fn the_deploy_plan_creates_the_li_namespace_and_secrets_and_waits_for_li() {
    use crate::deploy::{plan_json, planned_step, site};
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    // key_vault off: the fixture bundle carries images.toml's images only.
    let site = site(
        work.path(),
        "1k",
        "li: {enabled: true, keyVault: {enabled: false}}\n",
    );
    crate::deploy::dry_run("bundle.tar.zst", &site, &out, &["--only=messenger"]).ok();
    let plan = plan_json(&out);
    let strings = |step: &str, field: &str| -> Vec<String> {
        planned_step(&plan, step)[field]
            .as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    assert!(
        strings("namespaces", "creates")
            .contains(&format!("Namespace/{LI_NS} (enforce restricted)")),
        "{:?}",
        strings("namespaces", "creates")
    );
    let secrets = strings("secrets", "creates");
    for name in [
        "li-replication",
        "li-pg-app",
        "li-key-vault-pg",
        "li-synapse-secrets",
        "li-key-vault",
        "li-s3-read",
    ] {
        assert!(
            secrets.contains(&format!("{LI_NS}/Secret/messenger-{name}")),
            "{name}: {secrets:?}"
        );
    }
    for name in ["li-replication", "li-s3-read"] {
        assert!(
            secrets.contains(&format!("{NAMESPACE}/Secret/messenger-{name}")),
            "{name}: {secrets:?}"
        );
    }
    let li = planned_step(&plan, "li");
    assert!(li["skipped"].is_null(), "{li}");
    let waits = strings("li", "waits");
    for object in [
        "Deployment/messenger-synapse-li",
        "Deployment/messenger-element-web-li",
        "Deployment/messenger-synapse-admin-li",
        "Certificate/messenger-li-tls",
    ] {
        assert!(
            waits.iter().any(|w| w == &format!("{LI_NS}/{object}")),
            "{object}: {waits:?}"
        );
    }
    // Nothing of LI is waited for by the main instance's steps.
    for step in ["data", "synapse", "clients"] {
        let other = strings(step, "waits");
        assert!(
            !other.iter().any(|w| w.starts_with(&format!("{LI_NS}/"))),
            "{step}: {other:?}"
        );
    }
    // LI off: the step installs and waits for nothing.
    let off = work.path().join("off");
    let site = crate::deploy::site(work.path(), "100", "");
    crate::deploy::dry_run("bundle.tar.zst", &site, &off, &["--only=messenger"]).ok();
    let plan = plan_json(&off);
    assert!(planned_step(&plan, "li")["skipped"].is_string());
    assert!(!planned_step(&plan, "secrets")["creates"]
        .to_string()
        .contains("-li-"));
}

// --- key_vault's audit proxy ---------------------------------------------------------------------

/// A stand-in for key_vault: answers every HTTP request 200 `key_vault`; counts them.
fn key_vault_stand_in() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nkey_vault"
            );
        }
    });
    (port, seen)
}

/// One HTTP/1.1 request with `headers` to the loopback port: the status.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: li-keyvault.example.test\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Every request to key_vault passes its audit proxy, which writes one JSON line per request
/// to the audit stream: when, who (the SHA-256 of the credential presented, never the
/// credential), from where (the client the Gateway appended last to X-Forwarded-For), what
/// (method, URI, status). The rendered config, run by Debian's HAProxy (2.6; the image carries
/// 3.2) in front of a stand-in; only the listening address and key_vault's address are
/// rewritten to loopback ports.
#[test]
fn every_key_vault_request_is_written_to_the_audit_stream_as_json() {
    crate::stack_chart::need("haproxy", "apt-get install haproxy");
    let docs = li_docs("1k", &[]);
    let cfg = config_map_key(&docs, "msg-li-key-vault-audit", "haproxy.cfg");
    let deployment = find(&docs, "Deployment", KEY_VAULT);
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .unwrap();
    let audit = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("audit"))
        .unwrap();
    assert_eq!(audit["ports"][0]["containerPort"].as_u64(), Some(8080));
    let service = find(&docs, "Service", KEY_VAULT);
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_str(),
        Some("audit")
    );
    let route = find(&docs, "HTTPRoute", "msg-li-key-vault");
    assert_eq!(
        route["spec"]["rules"][0]["backendRefs"][0]["port"].as_u64(),
        Some(8080)
    );
    assert!(cfg.contains("bind :8080\n") && cfg.contains("server key_vault 127.0.0.1:8000\n"));

    let dir = tempfile::tempdir().unwrap();
    let (backend, seen) = key_vault_stand_in();
    let port = test_support::ports::reserved_port();
    let local = cfg
        .replace("bind :8080\n", &format!("bind 127.0.0.1:{port}\n"))
        .replace(
            "server key_vault 127.0.0.1:8000\n",
            &format!("server key_vault 127.0.0.1:{backend}\n"),
        );
    let file = write(dir.path(), "haproxy.cfg", &local);
    let check = run("haproxy", &["-c", "-f", p(&file)], dir.path());
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let mut command = std::process::Command::new("haproxy");
    command.args(["-db", "-f", p(&file)]);
    let mut proxy = Service::spawn("key-vault-audit", command, &dir.path().join("haproxy.log"));
    test_support::net::wait_for(
        "the audit proxy",
        std::time::Duration::from_secs(10),
        || test_support::net::listening(port),
    );
    let token = "Bearer kv-secret-token";
    let cookie = "sessionid=django-session-value";
    assert_eq!(
        request(
            port,
            "POST",
            "/api/v1/store-key?user=%22x%22",
            &[
                ("Authorization", token),
                ("X-Forwarded-For", "10.9.9.9, 10.30.7.5")
            ]
        ),
        200
    );
    assert_eq!(
        request(
            port,
            "GET",
            "/admin/",
            &[("Cookie", cookie), ("X-Forwarded-For", "10.30.7.6")]
        ),
        200
    );
    assert_eq!(request(port, "GET", "/", &[]), 200);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
    let mut lines = Vec::new();
    test_support::net::wait_for(
        "three audit lines",
        std::time::Duration::from_secs(10),
        || {
            lines = proxy
                .log_text()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .collect();
            lines.len() >= 3
        },
    );
    proxy.assert_running();
    let log = proxy.log_text();
    assert!(
        !log.contains("kv-secret-token") && !log.contains("django-session-value"),
        "a credential in the audit log:\n{log}"
    );
    let sha = |s: &str| test_support::images::sha256(s.as_bytes())["sha256:".len()..].to_owned();
    // HAProxy's threads may write the lines in another order than the requests came.
    let line = |uri: &str| {
        lines
            .iter()
            .find(|l| l["uri"] == uri)
            .unwrap_or_else(|| panic!("no audit line for {uri}: {lines:?}"))
    };
    let first = line("/api/v1/store-key?user=%22x%22");
    assert_eq!(first["event"], "key_vault.request");
    assert_eq!(first["who"], sha(token));
    assert_eq!(first["from"], "10.30.7.5");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["uri"], "/api/v1/store-key?user=%22x%22");
    assert_eq!(first["status"], 200);
    let time = first["time"].as_str().unwrap();
    assert!(
        time.len() == 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    assert_eq!(line("/admin/")["who"], sha("django-session-value"));
    assert_eq!(line("/admin/")["from"], "10.30.7.6");
    assert_eq!(line("/")["who"], "-");
    assert_eq!(line("/")["from"], "-");
}
