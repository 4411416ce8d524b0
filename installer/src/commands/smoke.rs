//! `installer smoke`: the post-deploy check field engineers run against the homeserver.

use anyhow::{Context as _, Result};
use cli_support::Output;
use installer::smoke::{registration_secret, run_smoke, MatrixClient, Report, SmokeOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `smoke`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The homeserver's client URL, e.g. https://matrix.example.org.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// Where the admin API is served (the chart serves it on the admin host only, to the
    /// networks of `admin.allowedCIDRs`), e.g. https://admin.example.org; default: --base-url.
    #[arg(long, value_name = "URL")]
    pub admin_url: Option<String>,
    /// The homeserver's server_name (the part after ':' in user IDs).
    #[arg(long, value_name = "NAME")]
    pub server_name: String,
    /// File holding Synapse's registration_shared_secret: the bare secret, or a Synapse
    /// configuration file with it (such as key secrets.yaml of Secret <release>-synapse-secrets).
    #[arg(long, value_name = "FILE")]
    pub registration_secret_file: PathBuf,
    /// Extra CA certificate (PEM) to trust, e.g. the enclave's internal root.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Messages user A sends to user B.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub messages: u16,
    /// Seconds user B may take to receive them.
    #[arg(long, default_value_t = 30)]
    pub receive_timeout: u64,
}

/// Runs the smoke test, prints its report (one JSON document with `--json`, failed or not)
/// and returns the exit status: non-zero naming the failed step.
pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let report = smoke(args, out)?;
    out.result(&report, &report);
    Ok(match report.failed_step() {
        None => ExitCode::SUCCESS,
        Some(failed) => out.partial_failure(format!(
            "smoke test failed at step `{}`: {}",
            failed.step,
            failed.error.as_deref().unwrap_or("failed")
        )),
    })
}

fn smoke(args: &Args, out: Output) -> Result<Report> {
    let path = &args.registration_secret_file;
    let text = oci::files::read_capped_to_string(path, oci::files::INPUT_FILE_LIMIT)
        .with_context(|| format!("reading the registration secret {}", path.display()))?;
    let secret = registration_secret(&text).with_context(|| path.display().to_string())?;
    let client = MatrixClient::new(&args.base_url, args.ca_file.as_deref())?;
    let admin = MatrixClient::new(
        args.admin_url.as_deref().unwrap_or(&args.base_url),
        args.ca_file.as_deref(),
    )?;
    let options = SmokeOptions {
        server_name: args.server_name.clone(),
        registration_secret: secret.into_bytes(),
        messages: usize::from(args.messages),
        receive_within: Duration::from_secs(args.receive_timeout),
        media_bytes: 64 * 1024,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    out.info(format!("smoke testing {}", client.base_url()));
    Ok(runtime.block_on(run_smoke(&client, &admin, &options)))
}
