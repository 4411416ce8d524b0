//! The chart's Grafana dashboards (charts/messenger/dashboards/*.json, shipped by
//! templates/monitoring/dashboards.yaml): each ships as a ConfigMap Grafana's sidecar loads,
//! parses, queries the provisioned Prometheus, and every panel's query passes promtool's
//! parser. The allow-list of metrics that exist only in a cluster
//! (fixtures/cluster-only-metrics.txt) names a source and a reason for each, and only metrics
//! a dashboard or rule reads. Which metrics the rehearsal's processes expose:
//! monitoring_scrape.rs.

use crate::harness::prometheus::{check_rules, metric_names, recording_rules};
use crate::stack_chart::{documents, render, root};
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The dashboards as the chart ships them: ConfigMap name and the dashboard.
pub(crate) fn dashboards(docs: &[Value]) -> Vec<(String, serde_json::Value)> {
    docs.iter()
        .filter(|d| {
            d["kind"].as_str() == Some("ConfigMap")
                && d["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1")
        })
        .flat_map(|d| {
            let name = d["metadata"]["name"].as_str().unwrap().to_string();
            d["data"]
                .as_mapping()
                .unwrap()
                .iter()
                .map(move |(key, text)| {
                    let json = serde_json::from_str(text.as_str().unwrap()).unwrap_or_else(|e| {
                        panic!("{name}/{}: not JSON: {e}", key.as_str().unwrap())
                    });
                    (name.clone(), json)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every panel's query of a dashboard.
pub(crate) fn queries(dashboard: &serde_json::Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect()
}

/// Every rule expression of the rendered PrometheusRules: (alert or record name, expr).
pub(crate) fn rule_exprs(docs: &[Value]) -> Vec<(String, String)> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some("PrometheusRule"))
        .flat_map(|d| d["spec"]["groups"].as_sequence().into_iter().flatten())
        .flat_map(|g| g["rules"].as_sequence().into_iter().flatten())
        .map(|r| {
            let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or("?");
            (
                name.to_string(),
                r["expr"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every metric a dashboard panel or a rule reads, with who reads it.
pub(crate) fn metrics_read(docs: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, dashboard) in dashboards(docs) {
        for expr in queries(&dashboard) {
            for metric in metric_names(&expr) {
                read.entry(metric).or_default().insert(name.clone());
            }
        }
    }
    for (rule, expr) in rule_exprs(docs) {
        for metric in metric_names(&expr) {
            read.entry(metric)
                .or_default()
                .insert(format!("rule {rule}"));
        }
    }
    read
}

/// Parses the allow-list's text: metric -> (source, why it cannot be scraped here), or the
/// first line that is not `metric | source | why`.
pub(crate) fn parse_cluster_only(text: &str) -> Result<BTreeMap<String, (String, String)>, String> {
    let mut list = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(" | ").map(str::trim).collect();
        if fields.len() != 3 || fields.iter().any(|f| f.is_empty()) {
            return Err(format!(
                "line {}: want `metric | source | why`, got {line:?}",
                n + 1
            ));
        }
        let source = (fields[1].to_string(), fields[2].to_string());
        if list.insert(fields[0].to_string(), source).is_some() {
            return Err(format!("line {}: {} listed twice", n + 1, fields[0]));
        }
    }
    Ok(list)
}

/// The reviewed allow-list, crates/installer/tests/fixtures/cluster-only-metrics.txt.
pub(crate) fn cluster_only() -> BTreeMap<String, (String, String)> {
    let path = root().join("crates/installer/tests/fixtures/cluster-only-metrics.txt");
    parse_cluster_only(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard_files() -> BTreeSet<String> {
    std::fs::read_dir(root().join("charts/messenger/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect()
}

#[test]
fn every_dashboard_ships_as_a_configmap_grafana_loads_and_parses() {
    let docs = documents(&render("100", &[]));
    let shipped = dashboards(&docs);
    let files = dashboard_files();
    assert!(files.len() >= 9, "dashboards: {files:?}");
    assert_eq!(shipped.len(), files.len(), "one ConfigMap per file");
    let mut uids = BTreeSet::new();
    for (name, dashboard) in &shipped {
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        assert!(uids.insert(uid.to_string()), "{name}: uid {uid:?} twice");
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
        let text = dashboard.to_string();
        assert!(
            !text.contains("_NAMESPACE__"),
            "{name}: a placeholder is left"
        );
        let panels = dashboard["panels"].as_array().unwrap();
        assert!(!panels.is_empty(), "{name}: no panels");
        for panel in panels {
            let targets = panel["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty(),
                "{name}: {} has no query",
                panel["title"]
            );
            for source in [&panel["datasource"], &targets[0]["datasource"]] {
                assert_eq!(
                    source["uid"].as_str(),
                    Some("prometheus"),
                    "{name}: {} does not query the provisioned Prometheus",
                    panel["title"]
                );
            }
        }
        for expr in queries(dashboard) {
            assert!(
                !expr.contains("namespace=\"__"),
                "{name}: {expr} kept a placeholder"
            );
        }
    }
    let off = documents(&render("100", &["--set", "monitoring.dashboards=false"]));
    assert!(
        dashboards(&off).is_empty(),
        "monitoring.dashboards=false ships none"
    );
}

#[test]
fn every_panel_query_passes_promtools_parser() {
    let docs = documents(&render("100", &[]));
    let exprs: Vec<String> = dashboards(&docs)
        .iter()
        .flat_map(|(_, d)| queries(d))
        .collect();
    assert!(exprs.len() >= 50, "{} queries", exprs.len());
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = check_rules(dir.path(), &recording_rules(&exprs)) {
        panic!("promtool refuses a panel query:\n{e}");
    }
    // The check is promtool's PromQL parser, not a YAML check: a broken query fails it.
    let mut broken = exprs.clone();
    broken.push("sum(rate(synapse_http_server_requests_received_total[5m])".into());
    assert!(check_rules(dir.path(), &recording_rules(&broken)).is_err());
}

#[test]
fn metric_names_skips_functions_keywords_matchers_and_groupings() {
    let names = metric_names(
        r#"histogram_quantile(0.9, sum by (le, pool) (rate(a_bucket{servlet="x{y}", code=~"5.."}[5m])))
           / on (pod) group_left() max by (pod) (b) > 0.5 and c offset 5m unless time() - d:rec"#,
    );
    let want: BTreeSet<String> = ["a_bucket", "b", "c", "d:rec"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, want);
}

#[test]
fn the_cluster_only_list_names_a_source_for_metrics_the_dashboards_or_rules_read() {
    let docs = documents(&render("100", &[]));
    let read = metrics_read(&docs);
    let listed = cluster_only();
    let unused: Vec<&String> = listed.keys().filter(|m| !read.contains_key(*m)).collect();
    assert!(
        unused.is_empty(),
        "cluster-only-metrics.txt lists metrics no dashboard or rule reads: {unused:?}"
    );
    for bad in [
        "cnpg_backends_total | CloudNativePG\n",
        "cnpg_backends_total | CloudNativePG | operator\ncnpg_backends_total | a | b\n",
        "cnpg_backends_total |  | why\n",
    ] {
        assert!(parse_cluster_only(bad).is_err(), "{bad:?} accepted");
    }
}
