//! Staging: the bundle's OCI image layout (`oci-layout`, `index.json` naming every image with
//! `org.opencontainers.image.ref.name`) and its blobs, read straight from the cache.

use super::fetch::ImageContent;
use super::BuildError;
use crate::store::BlobCache;
use bundle_file::pack::{sort_inputs, Input};
use oci::layout::{blob_path, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, REF_NAME};
use oci::{media, Descriptor, Digest, ImageIndex};
use std::collections::BTreeMap;
use std::path::Path;

/// `index.json` of the layout: one descriptor per image, sorted by reference, each named by
/// [`REF_NAME`]. Its value is the image's full normalised reference, so after `bundle extract
/// B DIR` an image is `oci:DIR:127.0.0.1:5000/team/app:v1` or
/// `oci:DIR:docker.io/library/haproxy:3.2-alpine`: skopeo (1.9 included) splits `oci:`
/// references at the first ':', so DIR must not contain one, while NAME may contain ':', '/'
/// and '@' (a pinned `NAME:TAG@sha256:...` too).
pub fn layout_index(contents: &[ImageContent]) -> Vec<u8> {
    let mut manifests: Vec<Descriptor> = contents
        .iter()
        .map(|c| {
            let name = c
                .ref_name
                .clone()
                .unwrap_or_else(|| c.reference.to_string());
            let mut descriptor = c.root.clone();
            descriptor.platform = None;
            descriptor.annotations = BTreeMap::from([(REF_NAME.to_string(), name)]);
            descriptor
        })
        .collect();
    manifests.sort_by(|a, b| {
        a.annotations
            .get(REF_NAME)
            .cmp(&b.annotations.get(REF_NAME))
    });
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        manifests,
        annotations: BTreeMap::new(),
    };
    bundle_file::pack::json_bytes(&index)
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
        (LAYOUT_FILE, format!("{LAYOUT_VERSION}\n").into_bytes()),
        (INDEX_FILE, layout_index(contents)),
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
            path: blob_path(digest),
            file: cache.file_of(digest),
            size,
            mtime: timestamp,
        });
    }
    sort_inputs(&mut inputs);
    Ok(inputs)
}
