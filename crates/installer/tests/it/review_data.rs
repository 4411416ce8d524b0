//! The review of issue 16, items 1, 3 and 13, against the rendered chart:
//!
//! - Valkey (1): each profile's memory limit holds `maxmemory` x 1.3 + 64Mi (fragmentation,
//!   replica output buffers, the process), nothing is persisted (no AOF, no RDB: Synapse keeps
//!   nothing durable in Redis), and the chart refuses a limit that cannot hold `maxmemory`;
//! - PostgreSQL (3): the database pods are Guaranteed (requests equal limits, the barman-cloud
//!   sidecar too), shared_buffers is 25% of the limit, effective_cache_size 75%,
//!   maintenance_work_mem min(limit/16, 1GB), work_mem x max_connections within 25%; the chart
//!   refuses a profile beyond that bound or with requests below limits;
//! - the ResourceQuota (13): the release namespace's pods' requests (and memory limits) plus
//!   25%, not the whole declared cluster.
//!
//! `REVIEW_DATA_ROOT=DIR` runs the same assertions against another checkout's chart and site
//! fixture (e.g. a `git worktree` of the commit before 1277a25, where they fail). Needs `helm`.

use std::path::PathBuf;

use serde_norway::Value;
use test_support::Run;

use crate::stack_chart::{config_map_key, documents, find, NAMESPACE, RELEASE};

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];

fn root() -> PathBuf {
    std::env::var_os("REVIEW_DATA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(test_support::workspace_root)
}

fn reviewing_other_root() -> bool {
    std::env::var_os("REVIEW_DATA_ROOT").is_some()
}

fn template(profile: &str, extra: &[&str]) -> Run {
    crate::stack_chart::template_in(&root(), profile, extra)
}

fn docs(profile: &str, extra: &[&str]) -> Vec<Value> {
    if !reviewing_other_root() {
        return documents(&crate::stack_chart::render(profile, extra));
    }
    documents(&template(profile, extra).ok().stdout)
}

/// A refused render's message.
fn refused(profile: &str, extra: &[&str]) -> String {
    let out = template(profile, extra);
    assert_ne!(out.code, 0, "the chart rendered {extra:?} at {profile}");
    out.stderr
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// A Kubernetes memory quantity in MiB (rounded up).
fn mib(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len()));
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("memory {q}"));
    match unit {
        "Ti" => n * 1024 * 1024,
        "Gi" => n * 1024,
        "Mi" => n,
        "Ki" => n.div_ceil(1024),
        _ => panic!("memory {q}: unit"),
    }
}

/// A CPU quantity in millicores.
fn millicores(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => (q.parse::<f64>().unwrap() * 1000.0).round() as u64,
    }
}

/// PostgreSQL's `NNMB`/`NNkB`/`NNGB` in kB.
fn pg_kib(q: &str) -> u64 {
    let (n, unit) = q.split_at(q.find(|c: char| !c.is_ascii_digit()).unwrap());
    let n: u64 = n.parse().unwrap();
    match unit {
        "GB" => n * 1024 * 1024,
        "MB" => n * 1024,
        "kB" => n,
        _ => panic!("PostgreSQL memory {q}"),
    }
}

/// Valkey's `maxmemory` (`mb`, `gb`: MiB, GiB) in MiB.
fn valkey_mib(q: &str) -> u64 {
    if let Some(n) = q.strip_suffix("gb") {
        n.parse::<u64>().unwrap() * 1024
    } else {
        q.strip_suffix("mb").unwrap().parse().unwrap()
    }
}

fn config_line<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
}

#[test]
fn valkey_memory_limit_holds_maxmemory_with_headroom_and_nothing_is_persisted() {
    for profile in PROFILES {
        let docs = docs(profile, &[]);
        let conf = config_map_key(&docs, &format!("{RELEASE}-valkey"), "valkey.conf");
        let max = valkey_mib(config_line(&conf, "maxmemory").unwrap());
        let sts = find(&docs, "StatefulSet", &format!("{RELEASE}-valkey"));
        let limit = mib(&text(
            &sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        ));
        let need = (max * 13).div_ceil(10) + 64;
        assert!(
            limit >= need,
            "profile {profile}: Valkey limit {limit}Mi < maxmemory {max}Mi x 1.3 + 64Mi = {need}Mi"
        );
        assert_eq!(config_line(&conf, "appendonly"), Some("no"), "{profile}");
        assert_eq!(
            config_line(&conf, "save"),
            Some("\"\""),
            "{profile}: RDB snapshots"
        );
        // Replica output buffers stay within the 10% of maxmemory the headroom keeps for them.
        let buf = config_line(&conf, "client-output-buffer-limit replica")
            .unwrap_or_else(|| panic!("{profile}: no replica output buffer limit"));
        let hard = valkey_mib(buf.split_whitespace().next().unwrap());
        let replicas = sts["spec"]["replicas"].as_u64().unwrap();
        assert!(
            hard * (replicas - 1) <= (max / 10).max(16 * (replicas - 1)),
            "{profile}: {buf}"
        );
    }
}

#[test]
fn a_valkey_limit_that_cannot_hold_maxmemory_is_refused() {
    let err = refused("100", &["--set", "valkey.maxmemory=1gb"]);
    assert!(
        err.contains(
            "valkey.resources.limits.memory: 384Mi cannot hold maxmemory 1gb: at least 1396Mi"
        ),
        "{err}"
    );
}

#[test]
fn postgres_pods_are_guaranteed_and_memory_settings_follow_the_limit() {
    for profile in PROFILES {
        let docs = docs(profile, &[]);
        let cluster = find(&docs, "Cluster", &format!("{RELEASE}-pg"));
        let res = &cluster["spec"]["resources"];
        let limit = mib(&text(&res["limits"]["memory"]));
        assert_eq!(
            mib(&text(&res["requests"]["memory"])),
            limit,
            "{profile}: memory"
        );
        assert!(
            !res["limits"]["cpu"].is_null(),
            "{profile}: no CPU limit: not Guaranteed"
        );
        assert_eq!(
            millicores(&text(&res["requests"]["cpu"])),
            millicores(&text(&res["limits"]["cpu"])),
            "{profile}: cpu"
        );
        let store = find(&docs, "ObjectStore", &format!("{RELEASE}-backup"));
        let side = &store["spec"]["instanceSidecarConfiguration"]["resources"];
        assert!(
            !side["limits"]["cpu"].is_null(),
            "{profile}: barman sidecar not Guaranteed"
        );
        assert_eq!(text(&side["requests"]["cpu"]), text(&side["limits"]["cpu"]));
        assert_eq!(
            text(&side["requests"]["memory"]),
            text(&side["limits"]["memory"])
        );

        let params = &cluster["spec"]["postgresql"]["parameters"];
        let kib = |k: &str| pg_kib(&text(&params[k]));
        let limit_kib = limit * 1024;
        assert_eq!(kib("shared_buffers"), limit_kib / 4, "{profile}");
        assert_eq!(kib("effective_cache_size"), limit_kib * 3 / 4, "{profile}");
        assert_eq!(
            kib("maintenance_work_mem"),
            (limit_kib / 16).min(1024 * 1024),
            "{profile}"
        );
        let conns: u64 = text(&params["max_connections"]).parse().unwrap();
        assert!(
            kib("work_mem") * conns <= limit_kib / 4,
            "profile {profile}: work_mem {} x {conns} connections > 25% of {limit}Mi",
            text(&params["work_mem"])
        );
    }
}

#[test]
fn a_postgres_profile_beyond_the_work_mem_bound_or_burstable_is_refused() {
    let err = refused("1k", &["--set", "postgres.workMem=16MB"]);
    assert!(
        err.contains("postgres.workMem: 16MB x max_connections 300 = 4800MB exceeds a quarter of the memory limit 4Gi (1024MB): at most 3495kB"),
        "{err}"
    );
    let err = refused("1k", &["--set", "postgres.resources.limits.memory=8Gi"]);
    assert!(
        err.contains("postgres.resources: requests") && err.contains("Guaranteed QoS"),
        "{err}"
    );
}

/// Requests (CPU, memory) and memory limits of the pods the release namespace runs, as rendered.
fn namespace_pods(docs: &[Value]) -> (u64, u64, u64) {
    let (mut cpu, mut mem, mut lim) = (0, 0, 0);
    let mut add = |n: u64, containers: &[&Value]| {
        for c in containers {
            let r = &c["resources"];
            cpu += n * millicores(&text(&r["requests"]["cpu"]));
            mem += n * mib(&text(&r["requests"]["memory"]));
            lim += n * mib(&text(&r["limits"]["memory"]));
        }
    };
    for d in docs {
        if d["metadata"]["namespace"].as_str() != Some(NAMESPACE) {
            continue;
        }
        match d["kind"].as_str().unwrap_or("") {
            "Deployment" | "StatefulSet" => {
                let n = d["spec"]["replicas"].as_u64().unwrap_or(1);
                let cs = d["spec"]["template"]["spec"]["containers"]
                    .as_sequence()
                    .unwrap();
                add(n, &cs.iter().collect::<Vec<_>>());
            }
            "Cluster" => {
                let n = d["spec"]["instances"].as_u64().unwrap();
                add(n, &[&d["spec"]]);
            }
            "ObjectStore" if !d["spec"]["instanceSidecarConfiguration"]["resources"].is_null() => {
                let n = find(docs, "Cluster", &format!("{RELEASE}-pg"))["spec"]["instances"]
                    .as_u64()
                    .unwrap();
                add(n, &[&d["spec"]["instanceSidecarConfiguration"]]);
            }
            "Pooler" => {
                let n = d["spec"]["instances"].as_u64().unwrap();
                let cs = d["spec"]["template"]["spec"]["containers"]
                    .as_sequence()
                    .unwrap();
                add(n, &cs.iter().collect::<Vec<_>>());
            }
            _ => {}
        }
    }
    (cpu, mem, lim)
}

#[test]
fn the_resource_quota_is_the_namespaces_requests_and_limits_plus_a_quarter() {
    for profile in PROFILES {
        let docs = docs(profile, &[]);
        let hard = &find(&docs, "ResourceQuota", &format!("{RELEASE}-quota"))["spec"]["hard"];
        let (cpu, mem, lim) = namespace_pods(&docs);
        let quota_cpu = millicores(&text(&hard["requests.cpu"]));
        let quota_mem = mib(&text(&hard["requests.memory"]));
        let quota_lim = mib(&text(&hard["limits.memory"]));
        for (what, quota, pods) in [
            ("requests.cpu", quota_cpu, cpu),
            ("requests.memory", quota_mem, mem),
            ("limits.memory", quota_lim, lim),
        ] {
            let want = (pods * 125).div_ceil(100);
            assert!(
                quota >= want && quota <= want + 1,
                "profile {profile}: quota {what} {quota} for pods asking {pods}: want {want} (+25%)"
            );
        }
    }
}
