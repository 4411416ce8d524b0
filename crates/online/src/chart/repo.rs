//! A static chart repository: `index.yaml` beside `<name>-<version>.tgz` files, as
//! `helm repo index` writes it (`apiVersion: v1`, entries by name, versions highest first,
//! each entry the chart's `Chart.yaml` fields plus `created`, `digest` and `urls`), with
//! `created` and `generated` from a given time so the bytes are the same on every run.
//! Also reads the `index.yaml` of upstream repositories.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ChartError;
use super::metadata::parse_version;
use super::package::PackagedChart;
use super::yaml::to_yaml;

/// The index's file name.
pub const INDEX_FILE: &str = "index.yaml";

/// The file name of a packaged chart: `<name>-<version>.tgz`.
pub fn file_name(name: &str, version: &str) -> String {
    format!("{name}-{version}.tgz")
}

/// The `index.yaml` of a repository holding `charts` (each at [`file_name`] beside it);
/// `created` (seconds since the epoch) is every entry's `created` and the `generated` time.
pub fn index_yaml(charts: &[PackagedChart], created: u64) -> Result<Vec<u8>, ChartError> {
    let time = oci::time::format_rfc3339(created)?;
    let mut by_name: BTreeMap<&str, Vec<&PackagedChart>> = BTreeMap::new();
    for chart in charts {
        let versions = by_name.entry(&chart.metadata.name).or_default();
        if versions
            .iter()
            .any(|c| c.metadata.version == chart.metadata.version)
        {
            return Err(ChartError::Duplicate {
                name: chart.metadata.name.clone(),
                version: chart.metadata.version.clone(),
            });
        }
        versions.push(chart);
    }
    let mut entries = Map::new();
    for (name, mut versions) in by_name {
        versions.sort_by(|a, b| {
            let key = |c: &PackagedChart| parse_version(&c.metadata.version);
            key(b)
                .cmp(&key(a))
                .then_with(|| b.metadata.version.cmp(&a.metadata.version))
        });
        let list = versions
            .into_iter()
            .map(|chart| entry(chart, &time))
            .collect();
        entries.insert(name.to_string(), Value::Array(list));
    }
    let index = json!({
        "apiVersion": "v1",
        "entries": entries,
        "generated": time,
    });
    Ok(to_yaml(&index).into_bytes())
}

fn entry(chart: &PackagedChart, time: &str) -> Value {
    let mut fields = match serde_json::to_value(&chart.metadata) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    fields.insert("created".into(), json!(time));
    fields.insert("digest".into(), json!(chart.digest.hex()));
    fields.insert(
        "urls".into(),
        json!([file_name(&chart.metadata.name, &chart.metadata.version)]),
    );
    Value::Object(fields)
}

/// One version of a chart in an upstream `index.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct IndexEntry {
    /// The version as written.
    pub version: String,
    /// SHA-256 of the `.tgz` in hex (helm writes no `sha256:` prefix), empty if absent.
    #[serde(default)]
    pub digest: String,
    /// Download URLs, relative to the repository or absolute.
    #[serde(default)]
    pub urls: Vec<String>,
}

#[derive(Deserialize)]
struct IndexIn {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

/// The versions `index.yaml` lists for `name`; the error says why the index is unusable.
pub(crate) fn index_entries(text: &[u8], name: &str) -> Result<Vec<IndexEntry>, String> {
    let index: IndexIn =
        serde_norway::from_slice(text).map_err(|e| format!("does not parse: {e}"))?;
    index
        .entries
        .get(name)
        .cloned()
        .ok_or_else(|| format!("lists no chart named {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::metadata::ChartMetadata;
    use oci::Digest;
    use std::path::Path;

    fn chart(name: &str, version: &str) -> PackagedChart {
        let text = format!(
            "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\n\
             keywords: [chat]\n"
        );
        PackagedChart {
            metadata: ChartMetadata::parse(text.as_bytes(), Path::new("Chart.yaml")).unwrap(),
            path: file_name(name, version).into(),
            digest: Digest::of(version.as_bytes()),
            size: 1,
        }
    }

    #[test]
    fn the_index_is_sorted_and_reads_back() {
        let charts = [
            chart("b", "1.10.0"),
            chart("a", "0.1.0"),
            chart("b", "1.9.0"),
        ];
        let text = index_yaml(&charts, 1_800_000_000).unwrap();
        let again = index_yaml(&charts, 1_800_000_000).unwrap();
        assert_eq!(text, again);
        let text_str = String::from_utf8(text.clone()).unwrap();
        assert!(
            text_str.starts_with("apiVersion: \"v1\"\nentries:\n  a:\n  - "),
            "{text_str}"
        );
        assert!(
            text_str.ends_with("generated: \"2027-01-15T08:00:00Z\"\n"),
            "{text_str}"
        );
        let b = index_entries(&text, "b").unwrap();
        let versions: Vec<&str> = b.iter().map(|e| e.version.as_str()).collect();
        assert_eq!(versions, ["1.10.0", "1.9.0"]);
        assert_eq!(b[0].urls, ["b-1.10.0.tgz"]);
        assert_eq!(b[0].digest, Digest::of(b"1.10.0").hex());
        assert!(index_entries(&text, "c")
            .unwrap_err()
            .contains("no chart named c"));
    }

    #[test]
    fn a_chart_given_twice_is_refused() {
        let error = index_yaml(&[chart("a", "1.0.0"), chart("a", "1.0.0")], 0).unwrap_err();
        assert_eq!(error.to_string(), "chart a version 1.0.0 is given twice");
    }
}
