//! `installer antivirus-update`: roll clamd to a new signature-database image and rescan.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use cli_support::Output;
use installer::antivirus;
use installer::deploy::render::Helm;
use installer::kube::KubeCluster;

use super::kube_args::KubeArgs;

/// Arguments of `antivirus-update`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signature-database image `installer load` pushed from the update bundle
    /// (`bundle build --only clamav`), as the site registry serves it.
    #[arg(long, value_name = "REF")]
    image: String,
    /// The messenger release.
    #[arg(long, default_value = "messenger")]
    release: String,
    /// Its namespace.
    #[arg(long, default_value = "matrix")]
    namespace: String,
    /// How long clamd may take to be ready with the new signatures.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    timeout: u64,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Rolls clamd, then starts the rescan Job.
pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let work = tempfile::Builder::new()
        .prefix("installer-")
        .tempdir()
        .context("creating a work directory")?;
    let cluster = KubeCluster {
        kubectl: args.kube.kubectl(),
        helm: Helm::without_renderer(&PathBuf::from("helm"), work.path()),
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let rolled = antivirus::roll_signatures(
        &cluster,
        &args.release,
        &args.namespace,
        &args.image,
        now_ms,
        Duration::from_secs(args.timeout),
    )?;
    let since = rolled
        .since_ms
        .map(|ms| format!("uploads since {ms} (Unix ms)"))
        .unwrap_or_else(|| "uploads within antivirus.rescan.lookback".into());
    out.result(
        format!(
            "clamd: {} -> {}\nrescan Job {} started for {since}; its log says what it quarantined\n\
             set antivirus.databaseImage to {} in the site file, or the next deploy rolls back\n",
            rolled.previous_image, args.image, rolled.job, args.image
        ),
        &serde_json::json!({
            "ok": true,
            "previousImage": rolled.previous_image,
            "image": args.image,
            "job": rolled.job,
            "sinceMs": rolled.since_ms,
        }),
    );
    Ok(ExitCode::SUCCESS)
}
