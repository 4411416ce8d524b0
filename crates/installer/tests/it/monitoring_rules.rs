//! The chart's alert rules (templates/monitoring/rules.yaml, issue 14): every rendered rule
//! group passes `promtool check rules`; `promtool test rules` fires every rule from synthetic
//! series and keeps it silent on healthy ones (fixtures/rules-tests/, and this file checks
//! that each rule has both cases); site thresholds and the runbook base URL reach the rules;
//! every `runbook_url` is a page of docs/runbooks/ and every page there is linked from a rule
//! or from the index.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};
use test_support::{p, require, run};

use crate::stack_chart::{documents, render, root, write};

/// The base URL of the runbooks when the site sets none (values.yaml).
const DEFAULT_BASE: &str = "docs/runbooks";

/// The unit test file run against the rules with their annotations (the others compare
/// labels only).
const WITH_ANNOTATIONS: &str = "annotations.yaml";

fn need_promtool() {
    require("promtool", "prometheus");
}

fn fixtures() -> PathBuf {
    root().join("crates/installer/tests/fixtures/rules-tests")
}

fn runbooks() -> PathBuf {
    root().join("docs/runbooks")
}

/// The rule groups of every rendered PrometheusRule.
fn rule_groups(extra: &[&str]) -> Vec<Value> {
    let groups = crate::harness::prometheus::rule_groups(&documents(&render("100", extra)));
    assert!(!groups.is_empty(), "the chart renders no PrometheusRule");
    groups
}

fn rules(groups: &[Value]) -> Vec<&Value> {
    groups
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .collect()
}

fn alert_and_severity(rule: &Value) -> (String, String) {
    (
        rule["alert"].as_str().unwrap().to_owned(),
        rule["labels"]["severity"].as_str().unwrap_or("").to_owned(),
    )
}

/// A Prometheus rule file holding `groups`; `annotations: false` drops them (promtool's unit
/// tests compare annotations verbatim; `check rules` checks their templates).
fn rule_file(groups: &[Value], annotations: bool) -> String {
    let mut groups = groups.to_vec();
    if !annotations {
        for g in &mut groups {
            for r in g["rules"].as_sequence_mut().unwrap() {
                r.as_mapping_mut().unwrap().remove("annotations");
            }
        }
    }
    let mut file = Mapping::new();
    file.insert("groups".into(), Value::Sequence(groups));
    serde_norway::to_string(&file).unwrap()
}

/// The unit test files, by name.
fn test_files() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            out.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(!out.is_empty(), "no unit tests in {}", fixtures().display());
    out
}

/// `promtool test rules` on `files` against `groups` (with or without their annotations), in
/// a fresh directory where the tests find the rules as `rules.yaml`.
fn promtool_test(groups: &[Value], files: &[&str], annotations: bool) -> test_support::Run {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "rules.yaml", &rule_file(groups, annotations));
    let tests = test_files();
    for name in files {
        write(dir.path(), name, &tests[*name]);
    }
    let mut args = vec!["test", "rules"];
    args.extend(files);
    run("promtool", &args, dir.path())
}

#[test]
fn every_rendered_rule_group_passes_promtool_check_rules() {
    need_promtool();
    for profile in ["100", "20k"] {
        let docs = documents(&render(profile, &[]));
        let objects: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some("PrometheusRule"))
            .collect();
        assert_eq!(objects.len(), 1, "one PrometheusRule ({profile})");
        let labels = &objects[0]["metadata"]["labels"];
        assert_eq!(
            labels["release"].as_str(),
            Some("monitoring"),
            "the rules carry monitoring.selectorLabels, or Prometheus never loads them"
        );
        let groups = objects[0]["spec"]["groups"].as_sequence().unwrap().clone();
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "rules.yaml", &rule_file(&groups, true));
        let out = run("promtool", &["check", "rules", p(&file)], dir.path()).ok();
        let count = rules(&groups).len();
        assert!(
            out.stdout
                .contains(&format!("SUCCESS: {count} rules found")),
            "{}",
            out.stdout
        );

        let mut seen = BTreeSet::new();
        for rule in rules(&groups) {
            let (alert, severity) = alert_and_severity(rule);
            assert!(
                ["critical", "warning", "info"].contains(&severity.as_str()),
                "{alert}: severity {severity:?}"
            );
            for key in ["summary", "description", "runbook_url"] {
                let text = rule["annotations"][key].as_str().unwrap_or("");
                assert!(!text.trim().is_empty(), "{alert}: no {key}");
            }
            assert!(
                seen.insert((alert.clone(), severity.clone())),
                "{alert} twice with severity {severity}"
            );
        }
    }
}

#[test]
fn promtool_unit_tests_fire_and_silence_every_rule() {
    need_promtool();
    let groups = rule_groups(&[]);
    let tests = test_files();
    let names: Vec<&str> = tests
        .keys()
        .map(String::as_str)
        .filter(|n| *n != WITH_ANNOTATIONS)
        .collect();
    let out = promtool_test(&groups, &names, false).ok();
    assert_eq!(
        out.stdout.matches("SUCCESS").count(),
        names.len(),
        "{}",
        out.stdout
    );
    let out = promtool_test(&groups, &[WITH_ANNOTATIONS], true).ok();
    assert!(out.stdout.contains("SUCCESS"), "{}", out.stdout);

    // Coverage: every (alert, severity) fires somewhere, every alert is silent somewhere.
    let mut fired = BTreeSet::new();
    let mut silent = BTreeSet::new();
    for (name, text) in &tests {
        let doc: Value = serde_norway::from_str(text).unwrap();
        assert_eq!(
            doc["rule_files"].as_sequence().map(|s| s.len()),
            Some(1),
            "{name}: rule_files must be [rules.yaml]"
        );
        for case in doc["tests"].as_sequence().unwrap() {
            for check in case["alert_rule_test"].as_sequence().into_iter().flatten() {
                let alert = check["alertname"].as_str().unwrap().to_owned();
                let expected = check["exp_alerts"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default();
                if expected.is_empty() {
                    silent.insert(alert.clone());
                }
                for e in expected {
                    let severity = e["exp_labels"]["severity"].as_str().unwrap_or("");
                    fired.insert((alert.clone(), severity.to_owned()));
                }
            }
        }
    }
    let all: BTreeSet<(String, String)> =
        rules(&groups).into_iter().map(alert_and_severity).collect();
    let alerts: BTreeSet<String> = all.iter().map(|(a, _)| a.clone()).collect();
    let never_fired: Vec<_> = all.difference(&fired).collect();
    assert!(
        never_fired.is_empty(),
        "rules no unit test fires: {never_fired:?}"
    );
    let never_silent: Vec<_> = alerts.difference(&silent).collect();
    assert!(
        never_silent.is_empty(),
        "alerts no unit test keeps silent: {never_silent:?}"
    );
    let unknown: Vec<_> = fired
        .iter()
        .filter(|f| !all.contains(*f))
        .map(|(a, s)| format!("{a}/{s}"))
        .chain(silent.iter().filter(|a| !alerts.contains(*a)).cloned())
        .collect();
    assert!(
        unknown.is_empty(),
        "unit tests of rules the chart lacks: {unknown:?}"
    );
}

/// The site's thresholds are what the rules compare with: at a 95% connections threshold
/// the 90%-full PostgreSQL no longer fires, and the failing unit test says so.
#[test]
fn site_thresholds_and_runbook_base_reach_the_rules() {
    need_promtool();
    let base = "https://wiki.enclave.test/messenger/runbooks/";
    let groups = rule_groups(&[
        "--set-json",
        "monitoring.rules.postgresConnectionsRatio=0.95",
        "--set",
        &format!("monitoring.runbookBaseURL={base}"),
    ]);
    let out = promtool_test(&groups, &["postgres.yaml"], false).failed();
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("alertname: PostgresConnectionsHigh") && said.contains("got:[]"),
        "{said}"
    );
    for rule in rules(&groups) {
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let page = url
            .strip_prefix(base)
            .unwrap_or_else(|| panic!("{url} is not under {base}"));
        assert!(
            runbooks().join(page).is_file(),
            "{url}: no docs/runbooks/{page}"
        );
    }
}

#[test]
fn monitoring_off_renders_no_rules() {
    let docs = documents(&render("100", &["--set", "monitoring.enabled=false"]));
    assert!(docs
        .iter()
        .all(|d| d["kind"].as_str() != Some("PrometheusRule")));
}

/// Markdown links to local pages (`](page.md)` or `](page.md#part)`) in `text`.
fn local_links(text: &str) -> BTreeSet<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split('#').next().unwrap_or("").to_owned())
        .filter(|t| t.ends_with(".md") && !t.contains("://"))
        .collect()
}

#[test]
fn every_runbook_url_resolves_and_every_runbook_is_linked() {
    let groups = rule_groups(&[]);
    let dir = runbooks();
    let mut linked = BTreeSet::new();
    for rule in rules(&groups) {
        let (alert, _) = alert_and_severity(rule);
        let url = rule["annotations"]["runbook_url"].as_str().unwrap();
        let page = url
            .strip_prefix(&format!("{DEFAULT_BASE}/"))
            .unwrap_or_else(|| panic!("{alert}: {url} is not under {DEFAULT_BASE}/"));
        let path = dir.join(page);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{alert}: runbook_url {url}: {}: {e}", path.display()));
        assert!(
            text.contains(&alert),
            "{}: never names {alert}",
            path.display()
        );
        for part in [
            "## What it means",
            "## How to confirm",
            "## What to do",
            "## When to escalate",
        ] {
            assert!(text.contains(part), "{}: no \"{part}\"", path.display());
        }
        linked.insert(page.to_owned());
    }

    let index = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let from_index = local_links(&index);
    for page in &from_index {
        assert!(
            dir.join(page).is_file(),
            "README.md links to a missing {page}"
        );
    }
    linked.extend(from_index);

    // Links between pages resolve too (relative to docs/runbooks/).
    let pages = markdown_files(&dir);
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        for link in local_links(&text) {
            let target = dir.join(&link);
            assert!(target.is_file(), "{page} links to a missing {link}");
        }
    }
    let orphans: Vec<_> = pages
        .iter()
        .filter(|p| p.as_str() != "README.md" && !linked.contains(*p))
        .collect();
    assert!(
        orphans.is_empty(),
        "runbooks linked from no rule and not from README.md: {orphans:?}"
    );
}

fn markdown_files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    out.sort();
    out
}
