//! A chart as a Helm OCI artifact, as `helm push` writes it: the config blob is `Chart.yaml`
//! as JSON, the one layer is the `.tgz`, and the image manifest carries helm's
//! `org.opencontainers.image.*` annotations. In the bundle's OCI layout a chart is named
//! `charts/<name>:<version>` ([`ref_name`]), so `installer load --registry R` pushes it to
//! `R/charts/<name>:<version>`, where `helm pull oci://R/charts/<name> --version V` finds it.

use std::collections::BTreeMap;

use super::error::ChartError;
use super::metadata::{go_json, ChartMetadata};
use super::package::PackagedChart;
use oci::media::OCI_MANIFEST;
use oci::{Descriptor, Digest, ImageManifest};

/// Media type of the config blob (`Chart.yaml` as JSON).
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// Media type of the chart layer (the `.tgz`).
pub const CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Media type of the chart layer in artifacts pushed by helm before 3.7.
pub const LEGACY_CONTENT_MEDIA_TYPE: &str = "application/tar+gzip";
/// Media type of a provenance layer (`helm push` of a signed chart).
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
/// Repository prefix of charts in the bundle's layout and in the enclave's registry.
pub const REPOSITORY_PREFIX: &str = "charts";

pub use crate::spec::charts::oci_tag as tag;

/// The repository of chart `name`: `charts/<name>`.
pub fn repository(name: &str) -> String {
    format!("{REPOSITORY_PREFIX}/{name}")
}

/// The layout's `org.opencontainers.image.ref.name` of a chart: `charts/<name>:<tag>`.
pub fn ref_name(name: &str, version: &str) -> String {
    format!("{}:{}", repository(name), tag(version))
}

/// The blobs of one chart artifact: the manifest and config bytes (small, in memory) and the
/// layer, which is the packaged `.tgz` on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartArtifact {
    /// The image manifest (`application/vnd.oci.image.manifest.v1+json`).
    pub manifest: Vec<u8>,
    /// SHA-256 of `manifest`.
    pub manifest_digest: Digest,
    /// The config blob.
    pub config: Vec<u8>,
    /// SHA-256 of `config`.
    pub config_digest: Digest,
    /// The layer: the chart's `.tgz`.
    pub layer: std::path::PathBuf,
    /// SHA-256 of the `.tgz`.
    pub layer_digest: Digest,
    /// Size of the `.tgz`.
    pub layer_size: u64,
    /// [`ref_name`] of the chart.
    pub ref_name: String,
}

impl ChartArtifact {
    /// The artifact of `chart`, its `org.opencontainers.image.created` annotation from
    /// `created` (seconds since the epoch), so the same chart and time give the same bytes.
    pub fn new(chart: &PackagedChart, created: u64) -> Result<ChartArtifact, ChartError> {
        let config = chart.metadata.to_helm_json();
        let config_digest = Digest::of(&config);
        let created = oci::time::format_rfc3339(created)?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_string()),
            config: Descriptor::new(
                CONFIG_MEDIA_TYPE,
                config_digest.clone(),
                config.len() as u64,
            ),
            layers: vec![Descriptor::new(
                CONTENT_MEDIA_TYPE,
                chart.digest.clone(),
                chart.size,
            )],
            annotations: annotations(&chart.metadata, &created),
        };
        let manifest = go_json(&manifest);
        Ok(ChartArtifact {
            manifest_digest: Digest::of(&manifest),
            manifest,
            config_digest,
            config,
            layer: chart.path.clone(),
            layer_digest: chart.digest.clone(),
            layer_size: chart.size,
            ref_name: ref_name(&chart.metadata.name, &chart.metadata.version),
        })
    }
}

/// The manifest annotations helm's `generateOCIAnnotations` writes: description, title,
/// version, url (home), created, source (first of `sources`), authors (maintainers), then the
/// chart's own annotations, which may not replace title or version.
fn annotations(metadata: &ChartMetadata, created: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |key: &str, value: &str| {
        if !value.is_empty() {
            out.insert(format!("org.opencontainers.image.{key}"), value.to_string());
        }
    };
    add("description", &metadata.description);
    add("title", &metadata.name);
    add("version", &metadata.version);
    add("url", &metadata.home);
    add("created", created);
    if let Some(source) = metadata.sources.first() {
        add("source", source);
    }
    let authors: Vec<String> = metadata
        .maintainers
        .iter()
        .map(|m| {
            if m.email.is_empty() {
                m.name.clone()
            } else {
                format!("{} ({})", m.name, m.email)
            }
        })
        .collect();
    add("authors", &authors.join(", "));
    for (key, value) in &metadata.annotations {
        if key != "org.opencontainers.image.title" && key != "org.opencontainers.image.version" {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// The config and chart layer of a fetched manifest, after checking it is a helm chart:
/// an OCI image manifest whose config is helm's and whose layers are one chart content
/// layer and, optionally, a provenance layer. The error says what is wrong.
pub(crate) fn helm_layers(bytes: &[u8]) -> Result<(Descriptor, Descriptor), String> {
    let manifest =
        ImageManifest::from_json(bytes).map_err(|e| format!("manifest does not parse: {e}"))?;
    if let Some(media_type) = &manifest.media_type {
        if media_type != OCI_MANIFEST {
            return Err(format!("manifest media type is {media_type}"));
        }
    }
    if manifest.config.media_type != CONFIG_MEDIA_TYPE {
        return Err(format!(
            "config media type is {}, expected {CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        ));
    }
    let mut content = None;
    for layer in manifest.layers {
        match layer.media_type.as_str() {
            CONTENT_MEDIA_TYPE | LEGACY_CONTENT_MEDIA_TYPE if content.is_none() => {
                content = Some(layer)
            }
            PROVENANCE_MEDIA_TYPE => {}
            other => return Err(format!("unexpected layer of media type {other}")),
        }
    }
    let content = content.ok_or("no chart content layer")?;
    Ok((manifest.config, content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::metadata::Maintainer;
    use std::path::Path;

    #[test]
    fn names_follow_helms_tags() {
        assert_eq!(
            ref_name("synapse", "1.2.3+build.4"),
            "charts/synapse:1.2.3_build.4"
        );
        assert_eq!(repository("synapse"), "charts/synapse");
    }

    #[test]
    fn annotations_are_helms() {
        let text = b"apiVersion: v2\nname: demo\nversion: 0.1.0\ndescription: d\n\
            home: https://h\nsources: [https://s1, https://s2]\n\
            annotations: {org.opencontainers.image.title: nope, extra: x}\n";
        let mut metadata = ChartMetadata::parse(text, Path::new("Chart.yaml")).unwrap();
        metadata.maintainers = vec![
            Maintainer {
                name: "A".into(),
                email: "a@x".into(),
                url: String::new(),
            },
            Maintainer {
                name: "B".into(),
                email: String::new(),
                url: String::new(),
            },
        ];
        let got = annotations(&metadata, "2026-01-01T00:00:00Z");
        let want: BTreeMap<String, String> = [
            ("extra", "x"),
            ("org.opencontainers.image.authors", "A (a@x), B"),
            ("org.opencontainers.image.created", "2026-01-01T00:00:00Z"),
            ("org.opencontainers.image.description", "d"),
            ("org.opencontainers.image.source", "https://s1"),
            ("org.opencontainers.image.title", "demo"),
            ("org.opencontainers.image.url", "https://h"),
            ("org.opencontainers.image.version", "0.1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn foreign_artifacts_are_refused() {
        let digest = Digest::of(b"blob");
        let layer = |t: &str| format!(r#"{{"mediaType":"{t}","digest":"{digest}","size":1}}"#);
        let manifest = |config: &str, layers: &[String]| {
            format!(
                r#"{{"schemaVersion":2,"config":{},"layers":[{}]}}"#,
                layer(config),
                layers.join(",")
            )
        };
        let ok = manifest(
            CONFIG_MEDIA_TYPE,
            &[layer(PROVENANCE_MEDIA_TYPE), layer(CONTENT_MEDIA_TYPE)],
        );
        assert_eq!(
            helm_layers(ok.as_bytes()).unwrap().1.media_type,
            CONTENT_MEDIA_TYPE
        );
        let image = manifest(
            "application/vnd.oci.image.config.v1+json",
            &[layer(CONTENT_MEDIA_TYPE)],
        );
        assert!(helm_layers(image.as_bytes())
            .unwrap_err()
            .contains("config media type"));
        let two = manifest(
            CONFIG_MEDIA_TYPE,
            &[layer(CONTENT_MEDIA_TYPE), layer(CONTENT_MEDIA_TYPE)],
        );
        assert!(helm_layers(two.as_bytes())
            .unwrap_err()
            .contains("unexpected layer"));
        let none = manifest(CONFIG_MEDIA_TYPE, &[]);
        assert!(helm_layers(none.as_bytes())
            .unwrap_err()
            .contains("no chart content"));
    }
}
