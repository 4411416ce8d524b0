//! `installer tools`: the helm and kubectl binaries the bundle carries for one platform,
//! written out of a verified bundle as executables, each checked against bundle.json.

use anyhow::{Context as _, Result};
use cli_support::verify_cmd::{open_verified, TrustedBundleArgs};
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `tools`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    bundle: TrustedBundleArgs,
    /// Directory to write the binaries into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The platform the binaries must run on (default: this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let bundle = open_verified(&args.bundle, out)?;
    let platform = args
        .platform
        .clone()
        .unwrap_or_else(online::tools::host_platform);
    let written = installer::tools::write_tools(&bundle, &platform, &args.out)
        .with_context(|| format!("writing the tools of {}", args.bundle.bundle.display()))?;
    let human: String = written
        .iter()
        .map(|p| format!("wrote {}\n", p.display()))
        .collect();
    out.result(
        human,
        &serde_json::json!({ "ok": true, "platform": platform, "tools": written }),
    );
    Ok(ExitCode::SUCCESS)
}
