//! Renders one release with helm, the installer itself as post-renderer: what comes out
//! names only images of the bundle, pinned by digest in the site registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kube::Kubectl;
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
    /// Whether the pinning post-renderer is installed (only then may helm render).
    pins: bool,
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
            pins: true,
        })
    }

    /// `binary` for what needs no rendering (`list`, `rollback`: helm keeps the manifests it
    /// applied), with its private homes in `work`; it refuses to render or install.
    pub fn without_renderer(binary: &Path, work: &Path) -> Helm {
        Helm {
            binary: binary.to_path_buf(),
            home: work.join("helm"),
            report: work.join("post-render.report"),
            kube_version: None,
            pins: false,
        }
    }

    /// `helm template` of `release`, CRDs included, post-rendered: the pinned manifests.
    pub fn template(&self, release: &ReleaseInput) -> Result<String, DeployError> {
        let mut command = self.command(&["template", &release.name]);
        self.release_args(&mut command, release)?;
        command.arg("--include-crds");
        if let Some(version) = &self.kube_version {
            command.args(["--kube-version", version]);
        }
        let stdout = self.run(command, &release.name)?;
        String::from_utf8(stdout).map_err(|_| DeployError::Helm {
            release: release.name.clone(),
            message: "helm printed manifests that are not UTF-8".into(),
        })
    }

    /// `helm upgrade --install` of `release` into the cluster `kube` names (no waiting: the
    /// deploy waits itself), post-rendered; returns the release's new revision.
    pub fn upgrade_install(
        &self,
        release: &ReleaseInput,
        kube: &Kubectl,
    ) -> Result<u32, DeployError> {
        let mut command = self.command(&["upgrade", "--install", &release.name]);
        self.release_args(&mut command, release)?;
        command.args(["--history-max", "10"]);
        kube_args(&mut command, kube);
        self.run(command, &release.name)?;
        self.revision(&release.name, &release.namespace, kube)?
            .ok_or_else(|| DeployError::Helm {
                release: release.name.clone(),
                message: "installed, but helm status finds no revision".into(),
            })
    }

    /// The deployed revision of release `name`, `None` if it is not installed.
    pub fn revision(
        &self,
        name: &str,
        namespace: &str,
        kube: &Kubectl,
    ) -> Result<Option<u32>, DeployError> {
        let mut command = self.command(&["list", "--namespace", namespace, "--output", "json"]);
        command.args(["--filter", &format!("^{}$", regex_escape(name))]);
        kube_args(&mut command, kube);
        let stdout = self.run(command, name)?;
        let list: serde_json::Value =
            serde_json::from_slice(&stdout).map_err(|e| DeployError::Helm {
                release: name.to_string(),
                message: format!("helm list printed no JSON: {e}"),
            })?;
        let revision = list
            .as_array()
            .and_then(|l| l.iter().find(|r| r["name"] == name))
            .and_then(|r| {
                r["revision"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .or(r["revision"].as_u64().map(|v| v as u32))
            });
        Ok(revision)
    }

    /// `helm rollback NAME REVISION`.
    pub fn rollback(
        &self,
        name: &str,
        namespace: &str,
        revision: u32,
        kube: &Kubectl,
    ) -> Result<(), DeployError> {
        let mut command = self.command(&["rollback", name, &revision.to_string()]);
        command.args(["--namespace", namespace]);
        kube_args(&mut command, kube);
        self.run(command, name).map(|_| ())
    }

    /// helm with this installer's private homes and `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.args(args);
        for (var, dir) in [
            ("HELM_PLUGINS", "plugins"),
            ("HELM_CACHE_HOME", "cache"),
            ("HELM_CONFIG_HOME", "config"),
            ("HELM_DATA_HOME", "data"),
        ] {
            command.env(var, self.home.join(dir));
        }
        command
    }

    /// Chart, namespace, values and the post-renderer of `release`; refused without one.
    fn release_args(
        &self,
        command: &mut Command,
        release: &ReleaseInput,
    ) -> Result<(), DeployError> {
        if !self.pins {
            return Err(DeployError::Helm {
                release: release.name.clone(),
                message: "this helm has no pinning post-renderer: nothing is rendered without it"
                    .into(),
            });
        }
        command
            .arg(&release.chart)
            .args(["--namespace", &release.namespace]);
        for values in &release.values {
            command.arg("-f").arg(values);
        }
        command
            .args(["--post-renderer", plugin::NAME])
            .arg(format!("--post-renderer-args=--release={}", release.name));
        Ok(())
    }

    /// Runs helm; its stdout, or what it (or the post-renderer) said.
    fn run(&self, mut command: Command, release: &str) -> Result<Vec<u8>, DeployError> {
        let _ = std::fs::remove_file(&self.report);
        let output = command.output().map_err(|source| DeployError::Spawn {
            program: self.binary.clone(),
            source,
        })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        // helm hides what a post-renderer says; the installer leaves it in the report.
        let message = match std::fs::read_to_string(&self.report) {
            Ok(report) if !report.trim().is_empty() => report.trim().to_string(),
            _ => String::from_utf8_lossy(&output.stderr).trim().to_string(),
        };
        Err(DeployError::Helm {
            release: release.to_string(),
            message,
        })
    }
}

/// helm's options for the cluster `kube` names.
fn kube_args(command: &mut Command, kube: &Kubectl) {
    if let Some(path) = &kube.kubeconfig {
        command.arg("--kubeconfig").arg(path);
    }
    if let Some(context) = &kube.context {
        command.args(["--kube-context", context]);
    }
}

/// `text` with regular-expression metacharacters escaped (release names have none, but a
/// filter must match exactly).
fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}
