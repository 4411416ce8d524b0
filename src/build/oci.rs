//! The parts of OCI manifests and indexes the pipeline reads, and the filtered index it
//! writes when only some platforms are bundled.

use super::BuildError;
use crate::registry::{media, Digest};
use crate::spec::Platform;
use serde_json::Value;

/// One entry of an index's `manifests`.
#[derive(Debug, Clone)]
pub struct IndexEntry {
    /// Manifest digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Platform, if the entry states one.
    pub platform: Option<Platform>,
}

/// A blob an image manifest names.
#[derive(Debug, Clone)]
pub struct BlobRef {
    /// Digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// An image manifest's config and layers.
#[derive(Debug, Clone)]
pub struct ImageManifest {
    /// The config blob.
    pub config: BlobRef,
    /// The layers.
    pub layers: Vec<BlobRef>,
}

fn bad(image: &str, message: impl Into<String>) -> BuildError {
    BuildError::BadManifest {
        image: image.to_string(),
        message: message.into(),
    }
}

fn descriptor(image: &str, value: &Value) -> Result<(Digest, u64, String), BuildError> {
    let digest = value["digest"]
        .as_str()
        .and_then(|d| Digest::parse(d).ok())
        .ok_or_else(|| bad(image, "a descriptor without a valid sha256 digest"))?;
    let size = value["size"]
        .as_u64()
        .ok_or_else(|| bad(image, format!("descriptor {digest} without a size")))?;
    let media_type = value["mediaType"].as_str().unwrap_or_default().to_string();
    Ok((digest, size, media_type))
}

/// The entries of an index.
pub fn index_entries(image: &str, bytes: &[u8]) -> Result<Vec<IndexEntry>, BuildError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(image, format!("index is not JSON: {e}")))?;
    let manifests = value["manifests"]
        .as_array()
        .ok_or_else(|| bad(image, "index without a manifests list"))?;
    manifests
        .iter()
        .map(|m| {
            let (digest, size, media_type) = descriptor(image, m)?;
            let platform = m.get("platform").and_then(|p| {
                Some(Platform {
                    os: p["os"].as_str()?.to_string(),
                    architecture: p["architecture"].as_str()?.to_string(),
                    variant: p["variant"].as_str().map(str::to_string),
                })
            });
            Ok(IndexEntry {
                digest,
                media_type,
                size,
                platform,
            })
        })
        .collect()
}

/// The config and layers of an image manifest.
pub fn image_manifest(image: &str, bytes: &[u8]) -> Result<ImageManifest, BuildError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(image, format!("manifest is not JSON: {e}")))?;
    let (digest, size, _) = descriptor(image, &value["config"])?;
    let layers = value["layers"]
        .as_array()
        .ok_or_else(|| bad(image, "manifest without layers"))?
        .iter()
        .map(|l| descriptor(image, l).map(|(digest, size, _)| BlobRef { digest, size }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImageManifest {
        config: BlobRef { digest, size },
        layers,
    })
}

/// Whether an index entry serves `wanted`: same OS and architecture, and the same variant
/// when one is asked for.
pub fn platform_matches(wanted: &Platform, offered: &Platform) -> bool {
    wanted.os == offered.os
        && wanted.architecture == offered.architecture
        && (wanted.variant.is_none() || wanted.variant == offered.variant)
}

/// `bytes` (an index) with only the entries whose digests are in `keep`, in their original
/// order and with every other field as it was; `None` when nothing is left out.
pub fn filtered_index(
    image: &str,
    bytes: &[u8],
    keep: &[Digest],
) -> Result<Option<Vec<u8>>, BuildError> {
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(image, format!("index is not JSON: {e}")))?;
    let Some(manifests) = value.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Err(bad(image, "index without a manifests list"));
    };
    let before = manifests.len();
    manifests.retain(|m| {
        m["digest"]
            .as_str()
            .is_some_and(|d| keep.iter().any(|k| k.as_str() == d))
    });
    if manifests.len() == before {
        return Ok(None);
    }
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(|e| bad(image, format!("cannot write the filtered index: {e}")))
}

/// Whether `media_type` is an index or manifest list.
pub fn is_index(media_type: &str) -> bool {
    media::is_index(media_type)
}
