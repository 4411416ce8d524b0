//! The OCI image models the project reads and writes: content descriptors, image manifests
//! and image indexes (Docker's schema 2 manifests and manifest lists have the same shape).
//!
//! Reading keeps what the project needs and ignores the rest: manifests pulled from a
//! registry are carried and pushed as their exact bytes, never re-serialised from these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{media, Digest, Platform};

/// A content descriptor: what a manifest or index says about one blob or manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the content (empty when the descriptor gives none).
    #[serde(default)]
    pub media_type: String,
    /// Digest of the exact bytes.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// The platform an index entry is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (`org.opencontainers.image.ref.name` in a layout's `index.json`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor of `size` bytes of `media_type` content with digest `digest`.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The value of annotation `key`.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// An image manifest: one image's config and layers (also a Helm chart artifact's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    #[serde(default)]
    pub schema_version: u32,
    /// The manifest's own media type, when it states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, in order.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// Parses a manifest's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<ImageManifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The config and then the layers: every blob the manifest names.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

/// An image index (or Docker manifest list): manifests, usually one per platform; also the
/// shape of an OCI layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    #[serde(default)]
    pub schema_version: u32,
    /// The index's own media type, when it states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// Parses an index's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<ImageIndex, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A manifest of either kind, told apart by media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An index or manifest list.
    Index(ImageIndex),
    /// A single image manifest.
    Image(ImageManifest),
}

/// Why bytes are not the manifest their descriptor says.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Neither the document, its descriptor nor its shape says it is a manifest or index.
    #[error("media type {0:?} is neither an image manifest nor an index")]
    UnknownMediaType(String),
    /// The JSON does not have the shape of its media type.
    #[error("not a valid {kind}")]
    Malformed {
        /// `image manifest` or `image index`.
        kind: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// Parses a manifest or an index. Its kind is the document's own `mediaType`, else
    /// `declared` (what its descriptor says), else its shape (`manifests` makes an index,
    /// `config` an image manifest). Returns the media type so decided, and the model.
    pub fn parse(declared: &str, bytes: &[u8]) -> Result<(String, Manifest), ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Shape {
            #[serde(default)]
            media_type: String,
            manifests: Option<serde::de::IgnoredAny>,
            config: Option<serde::de::IgnoredAny>,
        }
        let shape: Shape =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Malformed {
                kind: "manifest or index",
                source,
            })?;
        let media_type = if !shape.media_type.is_empty() {
            shape.media_type
        } else if !declared.is_empty() {
            declared.to_string()
        } else if shape.manifests.is_some() {
            media::OCI_INDEX.to_string()
        } else if shape.config.is_some() {
            media::OCI_MANIFEST.to_string()
        } else {
            return Err(ManifestError::UnknownMediaType(String::new()));
        };
        let manifest = if media::is_index(&media_type) {
            ImageIndex::from_json(bytes)
                .map(Manifest::Index)
                .map_err(|source| ManifestError::Malformed {
                    kind: "image index",
                    source,
                })?
        } else if media::is_manifest(&media_type) {
            ImageManifest::from_json(bytes)
                .map(Manifest::Image)
                .map_err(|source| ManifestError::Malformed {
                    kind: "image manifest",
                    source,
                })?
        } else {
            return Err(ManifestError::UnknownMediaType(media_type));
        };
        Ok((media_type, manifest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn an_index_keeps_platforms_and_annotations_and_reads_unknown_platforms() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
              {{"mediaType":"{}","digest":"{}","size":7,
                "platform":{{"architecture":"arm","os":"linux","variant":"v7"}}}},
              {{"mediaType":"{}","digest":"{}","size":8,
                "platform":{{"architecture":"unknown","os":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#,
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            digest('a'),
            media::OCI_MANIFEST,
            digest('b')
        );
        let (media_type, Manifest::Index(index)) = Manifest::parse("", json.as_bytes()).unwrap()
        else {
            panic!("not an index");
        };
        assert_eq!(media_type, media::OCI_INDEX);
        assert_eq!(index.manifests.len(), 2);
        let arm = index.manifests[0].platform.as_ref().unwrap();
        assert_eq!(arm.to_string(), "linux/arm/v7");
        assert_eq!(index.manifests[1].platform.as_ref().unwrap().os, "unknown");
        assert_eq!(
            index.manifests[1].annotation("vnd.docker.reference.type"),
            Some("attestation-manifest")
        );
    }

    #[test]
    fn a_manifest_lists_config_then_layers() {
        let json = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{}","size":2}},
               "layers":[{{"mediaType":"{}","digest":"{}","size":3}}]}}"#,
            media::OCI_CONFIG,
            digest('c'),
            media::OCI_LAYER_GZIP,
            digest('d')
        );
        let (media_type, Manifest::Image(manifest)) = Manifest::parse("", json.as_bytes()).unwrap()
        else {
            panic!("not a manifest");
        };
        assert_eq!(media_type, media::OCI_MANIFEST, "told by its shape");
        let sizes: Vec<u64> = manifest.blobs().map(|d| d.size).collect();
        assert_eq!(sizes, [2, 3]);
    }

    #[test]
    fn bad_digests_sizes_and_kinds_are_refused() {
        let no_size = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}"}}]}}"#,
            digest('a')
        );
        assert!(ImageIndex::from_json(no_size.as_bytes()).is_err());
        let bad_digest = r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:00","size":1}]}"#;
        assert!(ImageIndex::from_json(bad_digest.as_bytes()).is_err());
        let err = Manifest::parse("application/json", b"{}").unwrap_err();
        assert!(Manifest::parse("", b"{}").is_err());
        assert!(err.to_string().contains("application/json"), "{err}");
    }

    #[test]
    fn a_written_descriptor_leaves_out_what_it_does_not_have() {
        let d = Descriptor::new(media::OCI_CONFIG, Digest::of(b"{}"), 2);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"mediaType":"{}","digest":"{}","size":2}}"#,
                media::OCI_CONFIG,
                Digest::of(b"{}")
            )
        );
    }
}
