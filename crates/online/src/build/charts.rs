//! Charts in the build: the stack's own charts (each directory of `charts/` with a
//! `Chart.yaml`) packaged deterministically, and the upstream charts of charts.toml pinned in
//! the lock and fetched by digest. Each goes into the bundle twice: as a Helm OCI artifact in
//! the OCI layout (`charts/<name>:<version>`, so `installer load` pushes it with the images
//! and `installer serve` serves it), and in a static chart repository (`charts/index.yaml` and
//! `charts/<name>-<version>.tgz`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::fetch::ImageContent;
use super::{BuildError, Extras};
use crate::chart::{package, repo, ChartArtifact, PackagedChart, Upstream};
use crate::spec::ChartsFile;
use crate::spec::Lock;
use crate::store::BlobCache;
use bundle_file::pack::Input;
use oci::media::OCI_MANIFEST;
use oci::Descriptor;
use oci::Reference;

/// Brings the lock's `[[chart]]` entries up to date with charts.toml: entries that still
/// satisfy their spec stay, the others are resolved (no charts.toml: none).
pub async fn lock_charts(
    lock: &mut Lock,
    charts: Option<&ChartsFile>,
    upstream: &Upstream,
) -> Result<(), BuildError> {
    let Some(charts) = charts else {
        lock.charts = Vec::new();
        return Ok(());
    };
    let mut locked = Vec::with_capacity(charts.charts.len());
    for spec in &charts.charts {
        match lock.charts.iter().find(|l| l.satisfies(spec)) {
            Some(kept) => locked.push(kept.clone()),
            None => locked.push(upstream.resolve(spec).await?),
        }
    }
    lock.charts = locked;
    Ok(())
}

/// How the lock's charts differ from charts.toml, one line each.
pub fn chart_mismatch(charts: Option<&ChartsFile>, lock: &Lock) -> Vec<String> {
    let mut problems = Vec::new();
    let specs = charts.map_or(&[][..], |c| &c.charts[..]);
    for spec in specs {
        if !lock.charts.iter().any(|l| l.satisfies(spec)) {
            problems.push(format!(
                "{}:{}: chart {} {} is not locked (run `bundle lock`)",
                charts.map_or(String::new(), |c| c.path.display().to_string()),
                spec.line,
                spec.name,
                spec.version
            ));
        }
    }
    for locked in &lock.charts {
        if !specs.iter().any(|s| locked.satisfies(s)) {
            problems.push(format!(
                "the lock has chart {} {}, which charts.toml does not ask for",
                locked.name, locked.version
            ));
        }
    }
    problems
}

/// The archive of every upstream chart the lock pins, by chart name: from the cache, fetched
/// (and checked against its digest) when missing.
pub async fn fetch_upstream(
    lock: &Lock,
    upstream: &Upstream,
) -> Result<BTreeMap<String, PathBuf>, BuildError> {
    let mut paths = BTreeMap::new();
    for locked in &lock.charts {
        paths.insert(locked.name.clone(), upstream.fetch(locked).await?);
    }
    Ok(paths)
}

/// The stack's own chart directories under `dir`: every subdirectory with a `Chart.yaml`,
/// sorted.
pub fn own_charts(dir: &Path) -> Result<Vec<PathBuf>, BuildError> {
    let mut charts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| BuildError::io(dir, e))?.path();
        if path.join("Chart.yaml").is_file() {
            charts.push(path);
        }
    }
    charts.sort();
    Ok(charts)
}

/// Packages `own` charts into `staging`, adds the fetched `upstream` archives (see
/// [`fetch_upstream`]), and returns the OCI layout entries and files for the bundle. Blobs go
/// into `cache`.
pub fn chart_contents(
    own: &[PathBuf],
    upstream: &BTreeMap<String, PathBuf>,
    cache: &BlobCache,
    staging: &Path,
    timestamp: u64,
) -> Result<Extras, BuildError> {
    let out_dir = staging.join("charts");
    std::fs::create_dir_all(&out_dir).map_err(|e| BuildError::io(&out_dir, e))?;
    let mut packaged: Vec<PackagedChart> = Vec::new();
    for dir in own {
        packaged.push(package(dir, &out_dir, timestamp)?);
    }
    for path in upstream.values() {
        packaged.push(PackagedChart::open(path)?);
    }
    let mut extras = Extras::default();
    for chart in &packaged {
        let name = &chart.metadata.name;
        let version = &chart.metadata.version;
        if packaged
            .iter()
            .filter(|c| &c.metadata.name == name && &c.metadata.version == version)
            .count()
            > 1
        {
            return Err(BuildError::BadManifest {
                image: format!("chart {name}"),
                message: format!("version {version} comes from two places"),
            });
        }
        let artifact = ChartArtifact::new(chart, timestamp)?;
        cache.put_bytes(&artifact.manifest)?;
        cache.put_bytes(&artifact.config)?;
        if !cache.verify(&artifact.layer_digest, Some(artifact.layer_size))? {
            cache.put_file(&chart.path)?;
        }
        let reference =
            Reference::parse(&artifact.ref_name).map_err(|e| BuildError::BadManifest {
                image: format!("chart {name}"),
                message: e.to_string(),
            })?;
        extras.images.push(ImageContent {
            reference,
            ref_name: Some(artifact.ref_name.clone()),
            root: Descriptor::new(
                OCI_MANIFEST.to_string(),
                artifact.manifest_digest.clone(),
                artifact.manifest.len() as u64,
            ),
            blobs: vec![
                (
                    artifact.manifest_digest.clone(),
                    artifact.manifest.len() as u64,
                ),
                (artifact.config_digest.clone(), artifact.config.len() as u64),
                (artifact.layer_digest.clone(), artifact.layer_size),
            ],
        });
        extras.files.push(Input {
            path: format!("charts/{}", repo::file_name(name, version)),
            file: chart.path.clone(),
            size: chart.size,
            mtime: timestamp,
        });
    }
    if !packaged.is_empty() {
        let index = repo::index_yaml(&packaged, timestamp)?;
        let path = out_dir.join(repo::INDEX_FILE);
        std::fs::write(&path, &index).map_err(|e| BuildError::io(&path, e))?;
        extras.files.push(Input {
            path: format!("charts/{}", repo::INDEX_FILE),
            file: path,
            size: index.len() as u64,
            mtime: timestamp,
        });
    }
    Ok(extras)
}
