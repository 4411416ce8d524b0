//! Staging: the bundle's OCI image layout (`oci-layout`, `index.json` naming every image with
//! `org.opencontainers.image.ref.name`) and its blobs, read straight from the cache.

use super::fetch::ImageContent;
use super::BuildError;
use crate::store::BlobCache;
use bundle_file::pack::{sort_inputs, Input};
use oci::Digest;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// The annotation `skopeo copy oci:DIR:NAME` and other OCI tools look images up by. Its value
/// is the image's full normalised reference, so after `bundle extract B DIR` an image is
/// `oci:DIR:127.0.0.1:5000/team/app:v1` or `oci:DIR:docker.io/library/haproxy:3.2-alpine`:
/// skopeo (1.9 included) splits `oci:` references at the first ':', so DIR must not contain
/// one, while NAME may contain ':', '/' and '@' (a pinned `NAME:TAG@sha256:...` too).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `index.json` of the layout: one descriptor per image, sorted by reference.
pub fn layout_index(contents: &[ImageContent]) -> Vec<u8> {
    let mut manifests: Vec<_> = contents
        .iter()
        .map(|c| {
            let name = c
                .ref_name
                .clone()
                .unwrap_or_else(|| c.reference.to_string());
            (
                name.clone(),
                json!({
                    "mediaType": c.root.media_type,
                    "digest": c.root.digest.as_str(),
                    "size": c.root.size,
                    "annotations": { REF_NAME: name },
                }),
            )
        })
        .collect();
    manifests.sort_by(|a, b| a.0.cmp(&b.0));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests.into_iter().map(|(_, m)| m).collect::<Vec<_>>(),
    });
    let mut bytes = serde_json::to_vec_pretty(&index).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes `oci-layout` and `index.json` into `staging` and lists every input of the bundle:
/// those two files and each distinct blob from the cache, in bundle order.
pub fn stage(
    contents: &[ImageContent],
    cache: &BlobCache,
    staging: &Path,
    timestamp: u64,
) -> Result<Vec<Input>, BuildError> {
    let mut inputs = Vec::new();
    let files: [(&str, Vec<u8>); 2] = [
        (
            "oci-layout",
            b"{\"imageLayoutVersion\":\"1.0.0\"}\n".to_vec(),
        ),
        ("index.json", layout_index(contents)),
    ];
    for (name, bytes) in files {
        let path = staging.join(name);
        std::fs::write(&path, &bytes).map_err(|e| BuildError::io(&path, e))?;
        inputs.push(Input {
            path: name.to_string(),
            file: path,
            size: bytes.len() as u64,
            mtime: timestamp,
        });
    }
    let blobs: BTreeMap<&Digest, u64> = contents
        .iter()
        .flat_map(|c| c.blobs.iter().map(|(d, s)| (d, *s)))
        .collect();
    for (digest, size) in blobs {
        inputs.push(Input {
            path: format!("blobs/sha256/{}", digest.hex()),
            file: cache.blob_path(digest),
            size,
            mtime: timestamp,
        });
    }
    sort_inputs(&mut inputs);
    Ok(inputs)
}
