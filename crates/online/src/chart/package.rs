//! Deterministic chart packaging: a chart directory becomes `<name>-<version>.tgz`, the same
//! bytes on every run and machine. Files only (as helm writes them), under `<name>/`, sorted
//! by path, honouring `.helmignore`; every header has mode 0644, uid and gid 0, the given
//! mtime (ustar, with pax records for long paths); gzip at level 9 with a fixed header (no
//! mtime, no file name, OS byte 255).

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::Digest as _;

use super::error::{io, ChartError};
use super::ignore::IgnoreRules;
use super::metadata::ChartMetadata;
use super::repo;
use bundle_file::archive::tar::{check_path, TarWriter};
use oci::files::{read_capped, read_capped_to_string, INPUT_FILE_LIMIT};
use oci::{Digest, DigestWriter};

/// The gzip compression level of every package.
pub const GZIP_LEVEL: u32 = 9;

/// Largest `Chart.yaml` read from a package.
const MAX_CHART_YAML: u64 = 1 << 20;

/// A packaged chart: its metadata and where its `.tgz` is.
#[derive(Debug, Clone, PartialEq)]
pub struct PackagedChart {
    /// The chart's `Chart.yaml`.
    pub metadata: ChartMetadata,
    /// The `.tgz` file.
    pub path: PathBuf,
    /// SHA-256 of the `.tgz`.
    pub digest: Digest,
    /// Size of the `.tgz` in bytes.
    pub size: u64,
}

/// Packages the chart in `dir` into `out_dir/<name>-<version>.tgz` (replaced atomically),
/// every member stamped with `mtime` (seconds since the epoch).
pub fn package(dir: &Path, out_dir: &Path, mtime: u64) -> Result<PackagedChart, ChartError> {
    let chart_yaml = dir.join("Chart.yaml");
    let text = read_capped(&chart_yaml, INPUT_FILE_LIMIT).map_err(io(&chart_yaml))?;
    let metadata = ChartMetadata::parse(&text, &chart_yaml)?;
    let ignore_path = dir.join(".helmignore");
    let ignore_text = match read_capped_to_string(&ignore_path, INPUT_FILE_LIMIT) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&ignore_path)(e)),
    };
    let rules = IgnoreRules::parse(&ignore_text, &ignore_path)?;
    let mut files = Vec::new();
    collect(dir, "", &rules, &mut files)?;
    files.sort();
    check_dependencies(dir, &metadata, &files)?;

    let target = out_dir.join(repo::file_name(&metadata.name, &metadata.version));
    let temp = tempfile::NamedTempFile::new_in(out_dir).map_err(io(out_dir))?;
    let hashing = DigestWriter::new(BufWriter::new(temp.as_file()));
    let mut tar = TarWriter::new(
        GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(hashing, Compression::new(GZIP_LEVEL)),
    );
    for rel in &files {
        let source = dir.join(rel);
        let mut file = fs::File::open(&source).map_err(io(&source))?;
        let size = file.metadata().map_err(io(&source))?.len();
        let member = format!("{}/{rel}", metadata.name);
        check_path(&member).map_err(|e| ChartError::Content {
            dir: dir.to_path_buf(),
            message: format!("cannot carry {rel}: {e}"),
        })?;
        tar.append(&member, size, mtime, &mut file)
            .map_err(io(&source))?;
    }
    let gz = tar.finish().map_err(io(&target))?;
    let hashing = gz.finish().map_err(io(&target))?;
    let (mut buffered, digest, size) = hashing.finish();
    buffered.flush().map_err(io(&target))?;
    drop(buffered);
    #[cfg(unix)]
    {
        // Readable by web servers and other users, as `helm package` leaves it.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::Permissions::from_mode(0o644);
        temp.as_file().set_permissions(mode).map_err(io(&target))?;
    }
    temp.as_file().sync_all().map_err(io(&target))?;
    temp.persist(&target).map_err(|e| io(&target)(e.error))?;
    Ok(PackagedChart {
        metadata,
        path: target,
        digest,
        size,
    })
}

impl PackagedChart {
    /// Describes an existing chart `.tgz` (ours or an upstream one): its digest, size and the
    /// `Chart.yaml` at `<name>/Chart.yaml` inside.
    pub fn open(path: &Path) -> Result<PackagedChart, ChartError> {
        let mut file = fs::File::open(path).map_err(io(path))?;
        let mut hasher = sha2::Sha256::new();
        let size = io::copy(&mut file, &mut hasher).map_err(io(path))?;
        let digest = Digest::from_sha256(&hasher.finalize());
        let file = fs::File::open(path).map_err(io(path))?;
        let not_a_chart = |message: String| ChartError::NotAChart {
            path: path.to_path_buf(),
            message,
        };
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = archive.entries().map_err(|e| not_a_chart(e.to_string()))?;
        for entry in entries {
            let entry = entry.map_err(|e| not_a_chart(e.to_string()))?;
            let entry_path = entry.path().map_err(|e| not_a_chart(e.to_string()))?;
            let parts: Vec<_> = entry_path.components().collect();
            if parts.len() != 2 || parts[1].as_os_str() != "Chart.yaml" {
                continue;
            }
            let mut text = Vec::new();
            entry
                .take(MAX_CHART_YAML)
                .read_to_end(&mut text)
                .map_err(|e| not_a_chart(e.to_string()))?;
            let metadata = ChartMetadata::parse(&text, &path.join("Chart.yaml"))?;
            return Ok(PackagedChart {
                metadata,
                path: path.to_path_buf(),
                digest,
                size,
            });
        }
        Err(not_a_chart("no <name>/Chart.yaml inside".to_string()))
    }
}

/// Adds the files under `root/rel` that the rules keep, as `/`-separated relative paths.
fn collect(
    root: &Path,
    rel: &str,
    rules: &IgnoreRules,
    out: &mut Vec<String>,
) -> Result<(), ChartError> {
    let dir = root.join(rel);
    let content = |message: String| ChartError::Content {
        dir: root.to_path_buf(),
        message,
    };
    for entry in fs::read_dir(&dir).map_err(io(&dir))? {
        let entry = entry.map_err(io(&dir))?;
        let path = entry.path();
        let Ok(name) = entry.file_name().into_string() else {
            return Err(content(format!("{} is not UTF-8", path.display())));
        };
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let link = fs::symlink_metadata(&path).map_err(io(&path))?;
        let meta = fs::metadata(&path).map_err(io(&path))?;
        if rules.ignores(&child, meta.is_dir()) {
            continue;
        }
        if meta.is_dir() {
            if link.file_type().is_symlink() {
                return Err(content(format!(
                    "{child} is a symbolic link to a directory"
                )));
            }
            collect(root, &child, rules, out)?;
        } else if meta.is_file() {
            out.push(child);
        } else {
            return Err(content(format!("{child} is not a regular file")));
        }
    }
    Ok(())
}

/// Every dependency in `Chart.yaml` must be vendored under `charts/`, as a directory whose
/// `Chart.yaml` names it or as a `<name>-<version>.tgz`, as `helm package` demands.
fn check_dependencies(
    dir: &Path,
    metadata: &ChartMetadata,
    files: &[String],
) -> Result<(), ChartError> {
    let mut vendored = Vec::new();
    for file in files {
        let Some(rest) = file.strip_prefix("charts/") else {
            continue;
        };
        match rest.split('/').collect::<Vec<_>>()[..] {
            [_, "Chart.yaml"] => {
                let path = dir.join(file);
                let text = read_capped(&path, INPUT_FILE_LIMIT).map_err(io(&path))?;
                vendored.push(ChartMetadata::parse(&text, &path)?.name);
            }
            [archive] if archive.ends_with(".tgz") => vendored.push(archive.to_string()),
            _ => {}
        }
    }
    for dependency in &metadata.dependencies {
        let prefix = format!("{}-", dependency.name);
        let found = vendored
            .iter()
            .any(|v| *v == dependency.name || (v.ends_with(".tgz") && v.starts_with(&prefix)));
        if !found {
            return Err(ChartError::Content {
                dir: dir.to_path_buf(),
                message: format!(
                    "dependency {} of chart {} is missing from charts/ (vendor it with \
                     `helm dependency build`)",
                    dependency.name, metadata.name
                ),
            });
        }
    }
    Ok(())
}
