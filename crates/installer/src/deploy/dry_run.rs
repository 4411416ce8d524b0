//! `deploy --dry-run DIR`: the plan as `plan.json` and every manifest the deploy would apply,
//! in apply order, one file per step or release (`01-namespaces.yaml`, `02-cert-manager.yaml`,
//! ..., `NN-ca-issuer.yaml`, `NN-messenger.yaml`, ...). Secrets the installer generates are named in the plan, never
//! written.

use std::path::{Path, PathBuf};

use super::namespaces;
use super::plan::{Plan, Rendered};
use super::DeployError;
use crate::ca::cluster_issuer;

/// The file that marks a directory as a dry run's, so a rerun may replace it.
pub const PLAN_FILE: &str = "plan.json";

/// Writes the dry run into `dir`: into a new sibling first, then renamed into place, so `dir`
/// holds a whole dry run or what it held before. An existing `dir` is replaced only if it is
/// empty or a previous dry run. Returns the files, in apply order, then the plan.
pub fn write(dir: &Path, plan: &Plan, rendered: &[Rendered]) -> Result<Vec<PathBuf>, DeployError> {
    if dir.exists() && !replaceable(dir)? {
        return Err(DeployError::Site {
            path: dir.to_path_buf(),
            message: format!(
                "--dry-run directory is not empty and holds no {PLAN_FILE}: not replacing it"
            ),
        });
    }
    let staging = sibling(dir, "partial");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| DeployError::io(&staging, e))?;
    let result = fill(&staging, plan, rendered).and_then(|names| {
        let old = sibling(dir, "old");
        if dir.exists() {
            std::fs::rename(dir, &old).map_err(|e| DeployError::io(dir, e))?;
        }
        std::fs::rename(&staging, dir).map_err(|e| DeployError::io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(names.iter().map(|n| dir.join(n)).collect())
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Writes the files into `dir`; returns their names in order.
fn fill(dir: &Path, plan: &Plan, rendered: &[Rendered]) -> Result<Vec<String>, DeployError> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, text: String| {
        files.push((format!("{:02}-{name}.yaml", files.len() + 1), text));
    };
    for step in &plan.steps {
        match step.name.as_str() {
            "namespaces" => add(
                "namespaces",
                plan.namespaces.iter().map(namespaces::manifest).collect(),
            ),
            "ca-issuer" => add("ca-issuer", cluster_issuer(&plan.issuer, &plan.issuer)),
            _ => {
                for release in &step.releases {
                    if let Some(r) = rendered.iter().find(|r| r.release.name == release.name) {
                        add(&release.name, r.manifests.clone());
                    }
                }
            }
        }
    }
    let mut json = serde_json::to_string_pretty(plan).map_err(|e| DeployError::Bundle {
        what: PLAN_FILE.into(),
        message: e.to_string(),
    })?;
    json.push('\n');
    files.push((PLAN_FILE.into(), json));
    for (name, text) in &files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
    }
    Ok(files.into_iter().map(|(name, _)| name).collect())
}

/// Whether `dir` is empty or holds a previous dry run.
fn replaceable(dir: &Path) -> Result<bool, DeployError> {
    let mut entries = std::fs::read_dir(dir).map_err(|e| DeployError::io(dir, e))?;
    Ok(entries.next().is_none() || dir.join(PLAN_FILE).is_file())
}

/// `<dir>.<what>-<pid>` beside `dir`.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}-{}", std::process::id()));
    dir.with_file_name(name)
}
