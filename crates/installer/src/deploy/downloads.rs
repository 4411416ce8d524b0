//! The site's download page: when the bundle carries files (`files.json`) and the files image
//! built from them (Element Web plus `/app/downloads`, tagged `…-files.<first 12 hex digits
//! of files.json's SHA-256>`), the site release runs Element Web from that image.

use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use oci::layout::REF_NAME;
use serde_json::Value;

use super::DeployError;

/// The files image's reference in the bundle's `index.json`, if the bundle carries one for
/// its `files.json`.
pub fn files_image<S: ReadAt>(bundle: &Bundle<S>) -> Result<Option<String>, DeployError> {
    if bundle.member(online::files::FILES_INDEX).is_none() {
        return Ok(None);
    }
    let files = bundle.read_small_checked(online::files::FILES_INDEX)?;
    let hex = oci::Digest::of(&files).hex().to_string();
    let suffix = format!("files.{}", &hex[..12]);
    let index: Value = serde_json::from_slice(&bundle.read_small_checked(oci::layout::INDEX_FILE)?)
        .map_err(|e| DeployError::Bundle {
            what: oci::layout::INDEX_FILE.into(),
            message: e.to_string(),
        })?;
    Ok(index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"][REF_NAME].as_str())
        .find(|name| {
            name.rsplit_once(':')
                .is_some_and(|(_, tag)| tag == suffix || tag.ends_with(&format!("-{suffix}")))
        })
        .map(str::to_string))
}

/// Writes `dir/downloads.yaml` setting `images.elementWeb` to the bundle's files image, if it
/// carries one; returns its path.
pub fn write_values<S: ReadAt>(
    bundle: &Bundle<S>,
    dir: &Path,
) -> Result<Option<PathBuf>, DeployError> {
    let Some(image) = files_image(bundle)? else {
        return Ok(None);
    };
    std::fs::create_dir_all(dir).map_err(|e| DeployError::io(dir, e))?;
    let path = dir.join("downloads.yaml");
    let text = format!(
        "# The files image: Element Web with the site's download page (files.json).\n\
         images:\n  elementWeb: {}\n",
        Value::String(image)
    );
    std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
    Ok(Some(path))
}
