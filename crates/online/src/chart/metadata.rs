//! `Chart.yaml`: the chart's metadata, read as helm reads it and written as helm's Go code
//! serialises it to JSON (the OCI config blob).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::ChartError;
pub use crate::spec::charts::parse_version;

/// A chart's `Chart.yaml`. Fields are declared in the order of helm's `chart.Metadata`, so
/// [`ChartMetadata::to_helm_json`] gives the same bytes as helm's `json.Marshal`; empty fields
/// are left out as Go's `omitempty` does. Unknown keys are ignored, as helm does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartMetadata {
    /// The chart's name.
    pub name: String,
    /// The project's home page.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub home: String,
    /// Source code URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// The chart's version (SemVer 2).
    pub version: String,
    /// One-line description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Search keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Maintainers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    /// `v1` or `v2`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Condition enabling the chart as a dependency.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Tags enabling the chart as a dependency.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    /// Version of the application the chart deploys.
    #[serde(
        rename = "appVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub app_version: String,
    /// Whether the chart is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Free-form annotations (sorted, as Go writes maps).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Kubernetes versions the chart supports.
    #[serde(
        rename = "kubeVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub kube_version: String,
    /// Subcharts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// `application` or `library`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
}

/// A chart maintainer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintainer {
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A subchart named in `dependencies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// The subchart's name.
    pub name: String,
    /// Version or range.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Repository URL (empty for a vendored subchart).
    #[serde(default)]
    pub repository: String,
    /// Condition enabling it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Tags enabling it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether it is enabled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// Values imported from it.
    #[serde(
        rename = "import-values",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_values: Vec<serde_json::Value>,
    /// Alias.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl ChartMetadata {
    /// Parses and checks `Chart.yaml` text; `path` names the file in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<ChartMetadata, ChartError> {
        let invalid = |message: String| ChartError::ChartYaml {
            path: path.to_path_buf(),
            message,
        };
        let metadata: ChartMetadata =
            serde_norway::from_slice(text).map_err(|e| invalid(e.to_string()))?;
        if !matches!(metadata.api_version.as_str(), "v1" | "v2") {
            return Err(invalid(format!(
                "apiVersion {:?} is neither v1 nor v2",
                metadata.api_version
            )));
        }
        if metadata.name.is_empty()
            || metadata.name.contains(['/', '\\'])
            || metadata.name.starts_with('.')
        {
            return Err(invalid(format!("invalid chart name {:?}", metadata.name)));
        }
        if parse_version(&metadata.version).is_none() {
            return Err(invalid(format!(
                "version {:?} of chart {} is not a SemVer 2 version",
                metadata.version, metadata.name
            )));
        }
        Ok(metadata)
    }

    /// The JSON helm writes for this metadata (the OCI config blob).
    pub fn to_helm_json(&self) -> Vec<u8> {
        go_json(self)
    }
}

/// `value` as Go's `json.Marshal` writes it: compact, fields in declaration order, and `<`,
/// `>`, `&`, U+2028 and U+2029 escaped.
pub(crate) fn go_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising the plain structs, strings and string maps of this module cannot fail.
    let json = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_follows_helms_field_order_and_escaping() {
        let text = b"apiVersion: v2\nname: demo\nversion: 0.1.0\ndescription: a <b> & c\n\
            appVersion: \"1.16.0\"\ntype: application\nhome: https://example.org\n\
            annotations: {z: '1', a: '2'}\nunknown: ignored\n";
        let metadata = ChartMetadata::parse(text, Path::new("Chart.yaml")).unwrap();
        assert_eq!(
            String::from_utf8(metadata.to_helm_json()).unwrap(),
            r#"{"name":"demo","home":"https://example.org","version":"0.1.0","description":"a \u003cb\u003e \u0026 c","apiVersion":"v2","appVersion":"1.16.0","annotations":{"a":"2","z":"1"},"type":"application"}"#
        );
    }

    #[test]
    fn bad_charts_are_refused_naming_the_file() {
        let path = Path::new("x/Chart.yaml");
        for (text, wanted) in [
            ("apiVersion: v3\nname: a\nversion: 1.0.0\n", "apiVersion"),
            (
                "apiVersion: v2\nname: a/b\nversion: 1.0.0\n",
                "invalid chart name",
            ),
            ("apiVersion: v2\nname: a\nversion: one\n", "SemVer"),
            ("apiVersion: v2\nname: a\nversion: 1.0\n", "SemVer"),
            ("apiVersion: v2\nname: [a]\nversion: 1.0.0\n", "name"),
        ] {
            let error = ChartMetadata::parse(text.as_bytes(), path).unwrap_err();
            let message = error.to_string();
            assert!(message.starts_with("x/Chart.yaml: "), "{message}");
            assert!(message.contains(wanted), "{message}");
        }
    }
}
