//! The site's files a bundle carries (files.toml: `files/<name>`, listed in `files.json`),
//! written out of a verified bundle, each checked against bundle.json.

use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use online::spec::lock::FILES_DIR;

use crate::tools::{write_under, ToolsError};

/// Writes every file the bundle carries under `files/` into `dir` (created if missing), mode
/// 0644; returns the files written (none when the bundle carries none).
pub fn write_files<S: ReadAt>(bundle: &Bundle<S>, dir: &Path) -> Result<Vec<PathBuf>, ToolsError> {
    write_under(bundle, &format!("{FILES_DIR}/"), dir, 0o644)
}
