//! `installer deploy`: verify the bundle, read the site file, render every release through
//! the pinning post-renderer and plan the steps; `--dry-run DIR` writes the plan and every
//! manifest instead of touching a cluster.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use cli_support::verify_cmd::{open_verified, TrustedBundleArgs};
use cli_support::Output;
use installer::deploy::plan::{self, PlanInputs};
use installer::deploy::render::Helm;
use installer::deploy::site::Site;
use installer::deploy::{self as deploy_lib, dry_run};

use super::kube_args::KubeArgs;
use super::registry_args::SiteRegistryArgs;

/// Arguments of `deploy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bundle: TrustedBundleArgs,
    /// The site file (docs/site-config.md).
    #[arg(long, value_name = "site.yaml")]
    pub config: PathBuf,
    #[command(flatten)]
    pub target: SiteRegistryArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Do everything that needs no cluster and write the plan (plan.json) and every
    /// release's final manifests, in apply order, into DIR.
    #[arg(long, value_name = "DIR")]
    pub dry_run: Option<PathBuf>,
    /// Deploy only these releases (repeatable or comma-separated); the other steps say why
    /// they are skipped.
    #[arg(long, value_name = "RELEASE", value_delimiter = ',')]
    pub only: Vec<String>,
    /// The helm binary (default: the one the bundle carries for this machine, else helm on
    /// PATH).
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let Some(dry_run_dir) = &args.dry_run else {
        bail!(
            "deploying to a cluster is not available in this version: run with --dry-run DIR \
             and apply the manifests it writes (docs/install.md)"
        );
    };
    let target = args.target.target()?;
    let site = Site::read(&args.config)?;
    let bundle = open_verified(&args.bundle, out)?;
    let releases = deploy_lib::releases()?;
    let work = tempfile::Builder::new()
        .prefix("installer-deploy-")
        .tempdir()
        .context("creating a work directory")?;
    let helm_binary = helm_binary(args, &bundle, work.path())?;
    let installer = std::env::current_exe().context("finding the installer's own path")?;
    let helm = Helm::new(
        &helm_binary,
        work.path(),
        &installer,
        &args.bundle.to_args(),
        &target,
        releases.kube_version.as_deref(),
    )?;
    let inputs = PlanInputs {
        releases: &releases,
        site: &site,
        only: &args.only,
        work: work.path(),
    };
    let (plan, rendered) = plan::build(&bundle, &inputs, &helm)?;
    let files = dry_run::write(dry_run_dir, &plan, &rendered)?;
    let mut human = String::new();
    for step in &plan.steps {
        match &step.skipped {
            Some(reason) => human.push_str(&format!("  {:<11} skipped: {reason}\n", step.name)),
            None => {
                let releases: Vec<String> = step
                    .releases
                    .iter()
                    .map(|r| format!("{} ({})", r.name, r.chart))
                    .collect();
                let detail = if releases.is_empty() {
                    step.about.clone()
                } else {
                    releases.join(", ")
                };
                human.push_str(&format!("  {:<11} {detail}\n", step.name));
            }
        }
    }
    human.push_str(&format!(
        "dry run: {} file(s) written to {}\n",
        files.len(),
        dry_run_dir.display()
    ));
    out.result(
        human,
        &serde_json::json!({ "ok": true, "dry_run": dry_run_dir, "files": files, "plan": plan }),
    );
    Ok(ExitCode::SUCCESS)
}

/// `--helm`, else the bundle's helm for this machine, else `helm` on PATH.
fn helm_binary(
    args: &Args,
    bundle: &bundle_file::Bundle<bundle_file::archive::source::FileSource>,
    work: &Path,
) -> Result<PathBuf> {
    if let Some(helm) = &args.helm {
        return Ok(helm.clone());
    }
    let platform = online::tools::host_platform();
    match installer::tools::write_tools(bundle, &platform, &work.join("tools")) {
        Ok(written) => Ok(written
            .into_iter()
            .find(|p| p.file_name().is_some_and(|n| n == "helm"))
            .unwrap_or_else(|| PathBuf::from("helm"))),
        Err(installer::tools::ToolsError::NoneFor { .. }) => Ok(PathBuf::from("helm")),
        Err(e) => Err(e).context("writing the bundle's helm"),
    }
}
