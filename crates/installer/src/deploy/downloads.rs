//! The site's download page: when the bundle carries files (`files.json`) and the files image
//! built from them (Element Web plus `/app/downloads`, tagged `…-files.<first 12 hex digits
//! of files.json's SHA-256>`), the site release runs Element Web from that image.

use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use oci::layout::REF_NAME;
use online::build::files_image::files_tag;
use serde_json::Value;

use super::DeployError;

/// The files image's reference in the bundle's `index.json`, if the bundle carries one for
/// its `files.json`.
pub fn files_image<S: ReadAt>(bundle: &Bundle<S>) -> Result<Option<String>, DeployError> {
    if bundle.member(online::files::FILES_INDEX).is_none() {
        return Ok(None);
    }
    let files = bundle.read_small_checked(online::files::FILES_INDEX)?;
    // The tag the build gave it: `<base tag>-files.<hex>` (or `files.<hex>` without one).
    let bare = files_tag(None, &files);
    let index = crate::layout::read_index(bundle).map_err(|e| DeployError::Bundle {
        what: oci::layout::INDEX_FILE.into(),
        message: e.to_string(),
    })?;
    Ok(index
        .manifests
        .iter()
        .filter_map(|m| m.annotation(REF_NAME))
        .find(|name| {
            name.rsplit_once(':').is_some_and(|(_, tag)| {
                tag == bare || tag.strip_suffix(&bare).is_some_and(|t| t.ends_with('-'))
            })
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
