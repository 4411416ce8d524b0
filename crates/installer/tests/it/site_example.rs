//! docs/site.example.yaml, the site file users copy: the chart renders it (schema and
//! cross-field rules included) with its profile, and every field it sets is documented in
//! docs/site-config.md's table.

use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::harness::chart;

fn repo() -> PathBuf {
    test_support::workspace_root()
}

/// Dotted paths of every leaf of `value` (lists, and maps of labels, are leaves).
fn leaves(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Mapping(map) if !prefix.ends_with("nodeSelector") => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or_default();
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn the_example_site_file_renders_and_every_field_it_sets_is_documented() {
    let repo = repo();
    let example = repo.join("docs/site.example.yaml");
    let text = std::fs::read_to_string(&example).unwrap();
    let values: Value = serde_norway::from_str(&text).unwrap();
    let profile = values["profile"].as_str().unwrap();
    let chart_dir = repo.join("charts/messenger");
    let profile_file = chart_dir.join(format!("profiles/{profile}.yaml"));
    let rendered = chart::render(
        &chart_dir,
        "messenger",
        "matrix",
        &[Path::new(&example), &profile_file],
    );
    assert!(
        !rendered.stateful_sets("messenger-synapse").is_empty(),
        "no Synapse rendered"
    );

    let table = std::fs::read_to_string(repo.join("docs/site-config.md")).unwrap();
    let mut paths = Vec::new();
    leaves(&values, "", &mut paths);
    let undocumented: Vec<&String> = paths
        .iter()
        .filter(|path| !table.contains(&format!("`{path}`")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "fields of docs/site.example.yaml missing from docs/site-config.md: {undocumented:?}"
    );
    // The test fixture is a separate file.
    assert_ne!(
        text,
        std::fs::read_to_string(repo.join("tests/fixtures/site/site.yaml")).unwrap()
    );
}
