//! The charts the bundle carries (`charts/index.yaml` and `charts/<name>-<version>.tgz`),
//! written out for helm and read for their default values and profile files.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::extract::extract_member;
use bundle_file::Bundle;
use serde::Deserialize;

use super::DeployError;

/// The chart repository index the bundle carries.
const INDEX: &str = "charts/index.yaml";

/// Largest file read out of a chart archive (values, profiles).
const MAX_CHART_FILE: u64 = 4 << 20;

#[derive(Deserialize)]
struct RepoIndex {
    #[serde(default)]
    entries: BTreeMap<String, Vec<RepoEntry>>,
}

#[derive(Deserialize)]
struct RepoEntry {
    version: String,
    #[serde(default)]
    urls: Vec<String>,
}

/// One chart of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleChart {
    /// Chart name.
    pub name: String,
    /// Chart version.
    pub version: String,
    /// Its archive's member path (`charts/<name>-<version>.tgz`).
    pub member: String,
}

/// The charts of the bundle, by name.
pub fn list<S: ReadAt>(bundle: &Bundle<S>) -> Result<BTreeMap<String, BundleChart>, DeployError> {
    if bundle.member(INDEX).is_none() {
        return Ok(BTreeMap::new());
    }
    let bytes = bundle.read_small_checked(INDEX)?;
    let index: RepoIndex = serde_norway::from_slice(&bytes).map_err(|e| DeployError::Bundle {
        what: INDEX.to_string(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (name, entries) in index.entries {
        let [entry] = entries.as_slice() else {
            return Err(DeployError::Bundle {
                what: INDEX.to_string(),
                message: format!("chart {name} has {} versions; one expected", entries.len()),
            });
        };
        let file = entry
            .urls
            .first()
            .map(|u| u.rsplit('/').next().unwrap_or(u).to_string())
            .unwrap_or_else(|| format!("{name}-{}.tgz", entry.version));
        out.insert(
            name.clone(),
            BundleChart {
                name,
                version: entry.version.clone(),
                member: format!("charts/{file}"),
            },
        );
    }
    Ok(out)
}

/// Writes `chart`'s archive into `dir` (checked against `bundle.json`) and returns its path.
pub fn write<S: ReadAt>(
    bundle: &Bundle<S>,
    chart: &BundleChart,
    dir: &Path,
) -> Result<PathBuf, DeployError> {
    std::fs::create_dir_all(dir).map_err(|e| DeployError::io(dir, e))?;
    let file = chart.member.rsplit('/').next().unwrap_or(&chart.member);
    let target = dir.join(file);
    extract_member(bundle, &chart.member, &target, 0o644)?;
    Ok(target)
}

/// The file at `path` inside the chart (`values.yaml`, `profiles/1k.yaml`), from the packaged
/// chart `archive`; `None` if the chart has no such file.
pub fn read_file(archive: &Path, path: &str) -> Result<Option<String>, DeployError> {
    let file = std::fs::File::open(archive).map_err(|e| DeployError::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let bad = |e: std::io::Error| DeployError::io(archive, e);
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        // Packaged charts hold one top directory, the chart's name.
        if name.split_once('/').map(|(_, rest)| rest) != Some(path) {
            continue;
        }
        if entry.size() > MAX_CHART_FILE {
            return Err(DeployError::Bundle {
                what: format!("{}:{path}", archive.display()),
                message: format!("larger than {MAX_CHART_FILE} bytes"),
            });
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).map_err(bad)?;
        return Ok(Some(text));
    }
    Ok(None)
}
