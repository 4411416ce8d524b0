//! Reading the manifests and indexes a build pulls (with errors naming the image), and the
//! filtered index it writes when only some platforms are bundled.

use super::BuildError;
use oci::{Digest, ImageIndex, ImageManifest};
use serde_json::Value;

fn bad(image: &str, message: impl Into<String>) -> BuildError {
    BuildError::BadManifest {
        image: image.to_string(),
        message: message.into(),
    }
}

/// Parses the index `bytes` of `image`.
pub fn image_index(image: &str, bytes: &[u8]) -> Result<ImageIndex, BuildError> {
    ImageIndex::from_json(bytes).map_err(|e| bad(image, format!("index does not parse: {e}")))
}

/// Parses the image manifest `bytes` of `image`.
pub fn image_manifest(image: &str, bytes: &[u8]) -> Result<ImageManifest, BuildError> {
    ImageManifest::from_json(bytes).map_err(|e| bad(image, format!("manifest does not parse: {e}")))
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
