//! Runs `helm template` for one release, with or without a profile.

use std::path::Path;
use std::process::Command;

use super::error::DiscoverError;
use crate::spec::{Profile, Release, RenderPlan};

/// The manifests of `release` rendered by `helm`, with the release's values and then the
/// profile's layered on top: `helm template NAME CHART --namespace NS -f ... --include-crds
/// [--kube-version V]`.
pub(crate) fn template(
    helm: &Path,
    plan: &RenderPlan,
    release: &Release,
    profile: Option<&Profile>,
) -> Result<String, DiscoverError> {
    let mut command = Command::new(helm);
    command
        .arg("template")
        .arg(&release.name)
        .arg(&release.chart.path)
        .arg("--namespace")
        .arg(&release.namespace)
        .arg("--include-crds");
    let values = release
        .values
        .iter()
        .chain(profile.into_iter().flat_map(|p| &p.values));
    for file in values {
        command.arg("-f").arg(&file.path);
    }
    if let Some(version) = &plan.kube_version {
        command.arg("--kube-version").arg(version);
    }
    let output = command
        .output()
        .map_err(|source| DiscoverError::HelmMissing {
            helm: helm.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
        return Err(DiscoverError::Render {
            release: release.name.clone(),
            chart: release.chart.written.clone(),
            profile: profile.map(|p| p.name.clone()),
            stderr: if stderr.is_empty() {
                format!("helm exited with {}", output.status)
            } else {
                stderr
            },
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
