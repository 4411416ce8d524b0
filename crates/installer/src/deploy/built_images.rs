//! The images the build made for this site out of pinned ones, which the chart's defaults
//! cannot name because their tags depend on the bundle's contents:
//! - the files image (Element Web plus the download page `/app/downloads`, tagged
//!   `…-files.<first 12 hex digits of files.json's SHA-256>`), when the bundle carries
//!   `files.json`: the site release runs Element Web from it;
//! - the signature-database image (the ClamAV image plus the locked databases, tagged
//!   `<base tag>-db.<databases>` or `db-<hash>`): clamd runs from it unless the site file
//!   names one (`antivirus.databaseImage`, set after `installer antivirus-update`).
//!
//! Both go into one values file, listed after the site file and the profile.

use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use oci::layout::REF_NAME;
use oci::Reference;
use online::build::files_image::files_tag;
use online::build::signature_image::is_signature_tag;
use serde_json::Value;

use super::DeployError;

/// The values file this module writes, in the deploy's values directory.
pub const VALUES_FILE: &str = "built-images.yaml";

/// The reference names of the bundle's `index.json`.
fn ref_names<S: ReadAt>(bundle: &Bundle<S>) -> Result<Vec<String>, DeployError> {
    let index = crate::layout::read_index(bundle).map_err(|e| DeployError::Bundle {
        what: oci::layout::INDEX_FILE.into(),
        message: e.to_string(),
    })?;
    Ok(index
        .manifests
        .iter()
        .filter_map(|m| m.annotation(REF_NAME))
        .map(str::to_string)
        .collect())
}

/// The files image's reference in the bundle's `index.json`, if the bundle carries one for
/// its `files.json`.
pub fn files_image<S: ReadAt>(bundle: &Bundle<S>) -> Result<Option<String>, DeployError> {
    if bundle.member(online::files::FILES_INDEX).is_none() {
        return Ok(None);
    }
    let files = bundle.read_small_checked(online::files::FILES_INDEX)?;
    // The tag the build gave it: `<base tag>-files.<hex>` (or `files.<hex>` without one).
    let bare = files_tag(None, &files);
    Ok(ref_names(bundle)?.into_iter().find(|name| {
        name.rsplit_once(':').is_some_and(|(_, tag)| {
            tag == bare || tag.strip_suffix(&bare).is_some_and(|t| t.ends_with('-'))
        })
    }))
}

/// The signature-database image's reference in the bundle's `index.json`: the one image in
/// the ClamAV image's repository (`clamav`, the chart's `images.clamav`) with a signature
/// tag. `None` when the bundle carries none; an error when it carries several.
pub fn signature_image<S: ReadAt>(
    bundle: &Bundle<S>,
    clamav: &str,
) -> Result<Option<String>, DeployError> {
    let base = Reference::parse(clamav).map_err(|e| DeployError::Bundle {
        what: "the chart's images.clamav".into(),
        message: format!("{clamav}: {e}"),
    })?;
    let found: Vec<String> = ref_names(bundle)?
        .into_iter()
        .filter(|name| {
            Reference::parse(name).is_ok_and(|r| {
                r.registry == base.registry
                    && r.repository == base.repository
                    && r.tag
                        .as_deref()
                        .is_some_and(|t| is_signature_tag(t, base.tag.as_deref()))
            })
        })
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(DeployError::Bundle {
            what: oci::layout::INDEX_FILE.into(),
            message: format!(
                "{} signature-database images of {clamav} ({}); set antivirus.databaseImage \
                 in the site file to the one clamd should run",
                many.len(),
                many.join(", ")
            ),
        }),
    }
}

/// Writes `dir/built-images.yaml` with `images.elementWeb` (the files image, if the bundle
/// carries one) and `antivirus.databaseImage` (the signature image, if the bundle carries
/// one and `values`, the site release's merged values, leave it empty); returns its path, or
/// `None` when there is nothing to set.
pub fn write_values<S: ReadAt>(
    bundle: &Bundle<S>,
    values: &serde_norway::Value,
    dir: &Path,
) -> Result<Option<PathBuf>, DeployError> {
    let value = |path: &[&str]| {
        path.iter()
            .try_fold(values, |v, key| v.get(*key))
            .and_then(serde_norway::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut text = String::new();
    if let Some(image) = files_image(bundle)? {
        text.push_str(&format!(
            "# The files image: Element Web with the site's download page (files.json).\n\
             images:\n  elementWeb: {}\n",
            Value::String(image)
        ));
    }
    let clamav = value(&["images", "clamav"]);
    if value(&["antivirus", "databaseImage"]).is_empty() && !clamav.is_empty() {
        if let Some(image) = signature_image(bundle, &clamav)? {
            text.push_str(&format!(
                "# The signature-database image: {clamav} with the bundle's ClamAV databases.\n\
                 antivirus:\n  databaseImage: {}\n",
                Value::String(image)
            ));
        }
    }
    if text.is_empty() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(|e| DeployError::io(dir, e))?;
    let path = dir.join(VALUES_FILE);
    std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
    Ok(Some(path))
}
