//! `external-blobs.json`: the blobs an update bundle's images name but the bundle does not
//! carry (the base layers of its signature image), which the target registry must already
//! hold: `[{"digest": "sha256:...", "size": N, "image": "REF"}]`.

use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::archive::ReadAt;
use crate::{Bundle, BundleError};

/// The member's path.
pub const EXTERNAL_BLOBS: &str = "external-blobs.json";

/// One blob the bundle leaves to the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalBlob {
    /// The blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The image whose manifests name it, as the bundle's index.json does.
    pub image: String,
}

/// The member's content for `blobs`.
pub fn to_json(blobs: &[ExternalBlob]) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(blobs).unwrap_or_else(|_| b"[]".to_vec());
    bytes.push(b'\n');
    bytes
}

/// The external blobs of `bundle`; empty when it carries every blob.
pub fn read<S: ReadAt>(bundle: &Bundle<S>) -> Result<Vec<ExternalBlob>, BundleError> {
    if bundle.member(EXTERNAL_BLOBS).is_none() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bundle.read_small(EXTERNAL_BLOBS)?)
        .map_err(|e| BundleError::Layout(format!("{EXTERNAL_BLOBS} is not a list of blobs: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_round_trips() {
        let blobs = vec![ExternalBlob {
            digest: Digest::of(b"base layer"),
            size: 10,
            image: "docker.io/clamav/clamav:1.4".into(),
        }];
        let parsed: Vec<ExternalBlob> = serde_json::from_slice(&to_json(&blobs)).unwrap();
        assert_eq!(parsed, blobs);
    }
}
