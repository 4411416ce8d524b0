//! `installer deploy` and `installer upgrade`: verify the bundle, read the site file, render
//! every release through the pinning post-renderer and plan the steps; then run them against
//! the cluster, each recorded in the journal, or (`--dry-run DIR`) write the plan and every
//! manifest instead.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use bundle_file::archive::source::FileSource;
use bundle_file::Bundle;
use cli_support::verify_cmd::{open_verified, TrustedBundleArgs};
use cli_support::Output;
use installer::deploy::journal::Journal;
use installer::deploy::plan::{self, Plan, PlanInputs, Rendered};
use installer::deploy::preflight::{PodRequest, PreflightSite, ProfileRequests};
use installer::deploy::render::Helm;
use installer::deploy::run::{self as deploy_run, Deploy, Progress, Waits};
use installer::deploy::site::Site;
use installer::deploy::{self as deploy_lib, dry_run};
use installer::kube::KubeCluster;
use installer::pin::BundleImages;

use super::ca::CaKeyArgs;
use super::deploy_outside::SiteOutside;
use super::kube_args::KubeArgs;
use super::registry_args::SiteRegistryArgs;

/// Arguments of `deploy` and `upgrade`.
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
    /// The site CA made by `installer ca init` (ca.crt, ca.key.age): the ca-issuer step
    /// gives it to cert-manager, and the smoke test trusts it. Without it the ClusterIssuer
    /// must exist already.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    #[command(flatten)]
    pub ca_key: CaKeyArgs,
    /// Extra CA certificate (PEM) the site registry's TLS chains to, for the load step; may
    /// be repeated.
    #[arg(long = "registry-ca-file", value_name = "FILE")]
    pub registry_ca_files: Vec<PathBuf>,
    /// Allow plain HTTP or unverified TLS to the site registry (load step).
    #[arg(long)]
    pub insecure_registry: bool,
    /// The local mirror of the deploy journal (the journal itself is ConfigMap
    /// default/messenger-deploy-journal).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "messenger-deploy-journal.json"
    )]
    pub journal: PathBuf,
    /// Seconds each step may wait for what it created to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub timeout: u64,
    /// Before the preflight, label the nodes the site file names by address (turn.externalIPs)
    /// with the labels their node selector needs (the preflight shows the `kubectl label`
    /// commands otherwise).
    #[arg(long)]
    pub label_nodes: bool,
    /// Record the smoke step as not run instead of running it (e.g. when this machine cannot
    /// reach the site's hostnames).
    #[arg(long)]
    pub no_smoke: bool,
}

/// `deploy`: a first install, a resumed one, or (with a journal of another bundle) an
/// upgrade.
pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    deploy(args, out, false)
}

/// `upgrade`: like `deploy`, but only over a site a journal records.
pub fn run_upgrade(args: &Args, out: Output) -> Result<ExitCode> {
    if args.dry_run.is_some() {
        bail!("upgrade has no --dry-run: use `installer deploy NEWBUNDLE --dry-run DIR`");
    }
    deploy(args, out, true)
}

/// What every mode shares: the verified bundle, the site file, the rendered plan.
struct Prepared {
    bundle: Bundle<FileSource>,
    site: Site,
    plan: Plan,
    rendered: Vec<Rendered>,
    helm: Helm,
    /// Holds helm's home, the charts and the values while the deploy runs.
    _work: tempfile::TempDir,
}

fn prepare(args: &Args, out: Output) -> Result<Prepared> {
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
    out.info("rendering every release through the pinning post-renderer");
    let (plan, rendered) = plan::build(&bundle, &inputs, &helm)?;
    Ok(Prepared {
        bundle,
        site,
        plan,
        rendered,
        helm,
        _work: work,
    })
}

fn deploy(args: &Args, out: Output, upgrade: bool) -> Result<ExitCode> {
    let prepared = prepare(args, out)?;
    if let Some(dir) = &args.dry_run {
        return write_dry_run(dir, &prepared, out);
    }
    let kubectl = args.kube.kubectl();
    let cluster = KubeCluster {
        kubectl,
        helm: prepared.helm.clone(),
    };
    let images = BundleImages::read(&prepared.bundle)
        .with_context(|| format!("reading the images of {}", args.bundle.bundle.display()))?;
    let toc = prepared.bundle.toc();
    let journal = Journal::new(
        format!("{} {}", toc.name, toc.version),
        prepared.bundle.toc_sha256(),
        prepared.site.digest.to_string(),
        deploy_run::versions(&images),
    );
    if let Some(base) = bundle_file::external::read_base(&prepared.bundle)? {
        journal.check_base(&base, Journal::read(&cluster)?.as_ref())?;
    }
    if upgrade {
        check_upgradable(&cluster, &journal)?;
    }
    let outside = SiteOutside::new(
        args,
        &prepared.site,
        &prepared.plan,
        preflight_site(&prepared.plan)?,
        &cluster,
        out,
    )?;
    let view = ProgressView::default();
    let progress = |event: &Progress| view.show(event, out);
    let result = deploy_run::run(Deploy {
        cluster: &cluster,
        plan: &prepared.plan,
        rendered: &prepared.rendered,
        journal,
        local_journal: &args.journal,
        outside: &outside,
        waits: Waits {
            timeout: Duration::from_secs(args.timeout),
            poll: Duration::from_secs(5),
        },
        progress: &progress,
    });
    match result {
        Ok(journal) => {
            out.result(
                format!(
                    "{} deployed from {} (journal: {})\n",
                    prepared.site.server_name().unwrap_or("the site"),
                    journal.bundle,
                    args.journal.display()
                ),
                &serde_json::json!({ "ok": true, "journal": journal }),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let journal = Journal::read_local(&args.journal).ok().flatten();
            out.result(
                "",
                &serde_json::json!({ "ok": false, "error": error.to_string(), "journal": journal }),
            );
            Ok(out.partial_failure(error))
        }
    }
}

/// What the preflight checks the cluster against: the profile's requests, as the capacity
/// check computes them, and the site's storage class, node selections and host names.
fn preflight_site(plan: &Plan) -> Result<PreflightSite> {
    let requests = capacity::requests_of(&plan.values, &plan.profile)
        .with_context(|| format!("the capacity of profile {}", plan.profile))?;
    let pod = |largest: capacity::Largest| PodRequest {
        workload: largest.workload,
        amount: largest.amount,
    };
    let requests = ProfileRequests {
        profile: requests.profile,
        cpu: requests.cpu,
        memory: requests.memory,
        largest_cpu: pod(requests.largest_cpu),
        largest_memory: pod(requests.largest_memory),
    };
    Ok(PreflightSite::from_values(&plan.values, requests))
}

/// `upgrade` needs a site deployed from another bundle.
fn check_upgradable(cluster: &KubeCluster, journal: &Journal) -> Result<()> {
    match Journal::read(cluster)? {
        None => bail!(
            "no deploy journal in the cluster: nothing to upgrade (use `installer deploy` for \
             a first install)"
        ),
        Some(previous) if previous.bundle_digest == journal.bundle_digest => bail!(
            "the site already runs {} (same bundle): use `installer deploy` to change its site \
             file or to resume",
            previous.bundle
        ),
        Some(previous) => {
            deploy_run::check_upgrade(&previous.versions, &journal.versions)?;
            Ok(())
        }
    }
}

/// Step lines on the terminal: each start and end, and waits when their count changes.
#[derive(Default)]
struct ProgressView {
    last_wait: std::cell::RefCell<Option<(String, usize)>>,
}

impl ProgressView {
    fn show(&self, event: &Progress, out: Output) {
        out.event_of(event);
        let line = match event {
            Progress::Started { step } => format!("{step}: started"),
            Progress::Done { step, detail } => format!("{step}: done, {detail}"),
            Progress::Skipped { step, reason } => format!("{step}: skipped, {reason}"),
            Progress::Waiting {
                step,
                ready,
                total,
                first_pending,
            } => {
                let now = Some((step.clone(), *ready));
                if *self.last_wait.borrow() == now {
                    return;
                }
                *self.last_wait.borrow_mut() = now;
                format!("{step}: {ready}/{total} ready; waiting for {first_pending}")
            }
        };
        if !out.machine_readable() {
            out.info(line);
        }
    }
}

fn write_dry_run(dir: &Path, prepared: &Prepared, out: Output) -> Result<ExitCode> {
    let plan = &prepared.plan;
    let files = dry_run::write(dir, plan, &prepared.rendered)?;
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
        dir.display()
    ));
    out.result(
        human,
        &serde_json::json!({ "ok": true, "dry_run": dir, "files": files, "plan": plan }),
    );
    Ok(ExitCode::SUCCESS)
}

/// `--helm`, else the bundle's helm for this machine, else `helm` on PATH.
fn helm_binary(args: &Args, bundle: &Bundle<FileSource>, work: &Path) -> Result<PathBuf> {
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
