//! What a partial bundle leaves to its target. `external-blobs.json`: the blobs its images name
//! but the bundle does not carry (an update bundle's signature-image base layers, a delta's
//! unchanged layers), which the target registry must already hold:
//! `[{"digest": "sha256:...", "size": N, "image": "REF"}]`. `base.json`, in a delta only: the
//! bundle it was built against (`bundle build --since`), which the site must have loaded and
//! deployed: `{"name": ..., "version": ..., "bundle_json_sha256": ...}`.

use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::archive::ReadAt;
use crate::{Bundle, BundleError};

/// The member's path.
pub const EXTERNAL_BLOBS: &str = "external-blobs.json";

/// The path of a delta's base member.
pub const BASE: &str = "base.json";

/// The bundle a delta was built against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    /// Its name (bundle.json).
    pub name: String,
    /// Its version (bundle.json).
    pub version: String,
    /// Lower-case hex SHA-256 of its bundle.json, which pins every member.
    pub bundle_json_sha256: String,
}

impl std::fmt::Display for Base {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = self
            .bundle_json_sha256
            .get(..12)
            .unwrap_or(&self.bundle_json_sha256);
        write!(f, "{} {} (bundle.json {short})", self.name, self.version)
    }
}

/// The base of `bundle`, if it is a delta.
pub fn read_base<S: ReadAt>(bundle: &Bundle<S>) -> Result<Option<Base>, BundleError> {
    if bundle.member(BASE).is_none() {
        return Ok(None);
    }
    serde_json::from_slice(&bundle.read_small(BASE)?)
        .map(Some)
        .map_err(|e| BundleError::Layout(format!("{BASE} does not name a base bundle: {e}")))
}

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
    crate::pack::json_bytes(blobs)
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
