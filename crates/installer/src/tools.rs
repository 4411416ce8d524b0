//! The helm and kubectl binaries a bundle carries for a platform, written out as executables,
//! each checked against bundle.json before it is renamed into place.

use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::extract::extract_member;
use bundle_file::{Bundle, BundleError};
use online::spec::lock::tools_dir;

/// Why the tools cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    /// The bundle has no tools for the platform.
    #[error("the bundle carries no tools for {platform} (it has: {carried})")]
    NoneFor {
        /// The platform asked for.
        platform: String,
        /// The platforms it has tools for, or `none`.
        carried: String,
    },
    /// The output directory cannot be made.
    #[error("creating {}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A tool cannot be written, or is not what bundle.json says.
    #[error("writing {} from {member}", target.display())]
    Write {
        /// Where it was to go.
        target: PathBuf,
        /// The bundle member.
        member: String,
        /// Why.
        #[source]
        source: Box<BundleError>,
    },
}

/// Writes every tool the bundle carries for `platform` (`linux/amd64`) into `dir`, created
/// if missing, mode 0755; returns the files written.
pub fn write_tools<S: ReadAt>(
    bundle: &Bundle<S>,
    platform: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, ToolsError> {
    let prefix = format!("{}/", tools_dir(platform));
    if !bundle
        .toc()
        .members
        .iter()
        .any(|m| m.path.starts_with(&prefix))
    {
        let mut carried: Vec<String> = bundle
            .toc()
            .members
            .iter()
            .filter_map(|m| m.path.strip_prefix("tools/")?.split_once('/'))
            .map(|(p, _)| p.replace('-', "/"))
            .collect();
        carried.dedup();
        return Err(ToolsError::NoneFor {
            platform: platform.to_string(),
            carried: if carried.is_empty() {
                "none".to_string()
            } else {
                carried.join(", ")
            },
        });
    }
    write_under(bundle, &prefix, dir, 0o755)
}

/// Writes every member whose path starts with `prefix` into `dir` (created if missing) under
/// the rest of its path, with `mode`, each checked against bundle.json; returns the files
/// written.
pub(crate) fn write_under<S: ReadAt>(
    bundle: &Bundle<S>,
    prefix: &str,
    dir: &Path,
    mode: u32,
) -> Result<Vec<PathBuf>, ToolsError> {
    let members = bundle
        .toc()
        .members
        .iter()
        .map(|m| m.path.as_str())
        .filter(|path| path.starts_with(prefix));
    std::fs::create_dir_all(dir).map_err(|source| ToolsError::Directory {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for member in members {
        let target = dir.join(&member[prefix.len()..]);
        extract_member(bundle, member, &target, mode).map_err(|source| ToolsError::Write {
            target: target.clone(),
            member: member.to_string(),
            source: Box::new(source),
        })?;
        written.push(target);
    }
    Ok(written)
}
