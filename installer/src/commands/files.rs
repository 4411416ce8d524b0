//! `installer files`: the files the site needs besides images (files.toml), written out of a
//! verified bundle, each checked against bundle.json.

use anyhow::{Context as _, Result};
use cli_support::verify_cmd::{open_verified, TrustedBundleArgs};
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `files`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    bundle: TrustedBundleArgs,
    /// Directory to write the files into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let bundle = open_verified(&args.bundle, out)?;
    let written = installer::site_files::write_files(&bundle, &args.out)
        .with_context(|| format!("writing the files of {}", args.bundle.bundle.display()))?;
    let human: String = if written.is_empty() {
        "the bundle carries no files\n".to_string()
    } else {
        written
            .iter()
            .map(|p| format!("wrote {}\n", p.display()))
            .collect()
    };
    out.result(human, &serde_json::json!({ "ok": true, "files": written }));
    Ok(ExitCode::SUCCESS)
}
