//! Renders one release with helm, the installer itself as post-renderer: what comes out
//! names only images of the bundle, pinned by digest in the site registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::load::Target;
use crate::pin::plugin;

use super::DeployError;

/// One release to render: helm's inputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReleaseInput {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// The packaged chart.
    pub chart: PathBuf,
    /// Values files, in order.
    pub values: Vec<PathBuf>,
}

/// helm with the pinning post-renderer installed in a private plugin directory.
#[derive(Debug, Clone)]
pub struct Helm {
    binary: PathBuf,
    home: PathBuf,
    report: PathBuf,
    kube_version: Option<String>,
}

impl Helm {
    /// Prepares `binary` to render into `work` (its own helm home and plugin directory): the
    /// post-renderer runs `installer --quiet post-render BUNDLE --key KEY...` (`installer` is
    /// this program, `trust` the arguments that make it trust the bundle) for `target`.
    pub fn new(
        binary: &Path,
        work: &Path,
        installer: &Path,
        bundle_and_trust: &[String],
        target: &Target,
        kube_version: Option<&str>,
    ) -> Result<Helm, DeployError> {
        let home = work.join("helm");
        let report = work.join("post-render.report");
        let mut args = vec!["--quiet".to_string(), "post-render".to_string()];
        args.extend(bundle_and_trust.iter().cloned());
        args.extend(["--registry".to_string(), target.registry.clone()]);
        if let Some(prefix) = &target.prefix {
            args.extend(["--prefix".to_string(), prefix.clone()]);
        }
        args.extend([
            "--report".to_string(),
            report.to_string_lossy().into_owned(),
        ]);
        plugin::write(&home.join("plugins"), installer, &args)?;
        Ok(Helm {
            binary: binary.to_path_buf(),
            home,
            report,
            kube_version: kube_version.map(String::from),
        })
    }

    /// `helm template` of `release`, CRDs included, post-rendered: the pinned manifests.
    pub fn template(&self, release: &ReleaseInput) -> Result<String, DeployError> {
        let _ = std::fs::remove_file(&self.report);
        let mut command = Command::new(&self.binary);
        command
            .args(["template", &release.name])
            .arg(&release.chart)
            .args(["--namespace", &release.namespace, "--include-crds"]);
        for values in &release.values {
            command.arg("-f").arg(values);
        }
        if let Some(version) = &self.kube_version {
            command.args(["--kube-version", version]);
        }
        command
            .args(["--post-renderer", plugin::NAME])
            .arg(format!("--post-renderer-args=--release={}", release.name));
        for (var, dir) in [
            ("HELM_PLUGINS", "plugins"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ] {
            command.env(var, self.home.join(dir));
        }
        let output = command.output().map_err(|source| DeployError::Spawn {
            program: self.binary.clone(),
            source,
        })?;
        if output.status.success() {
            return String::from_utf8(output.stdout).map_err(|_| DeployError::Helm {
                release: release.name.clone(),
                message: "helm printed manifests that are not UTF-8".into(),
            });
        }
        // helm hides what a post-renderer says; the installer leaves it in the report.
        let message = match std::fs::read_to_string(&self.report) {
            Ok(report) if !report.trim().is_empty() => report.trim().to_string(),
            _ => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        };
        Err(DeployError::Helm {
            release: release.name.clone(),
            message,
        })
    }
}
