//! `bundle extract`: write a bundle's members into a directory.

use anyhow::{bail, Context, Result};
use bundle_file::archive::parallel::default_threads;
use bundle_file::extract::extract;
use bundle_file::Bundle;
use cli_support::trust_args::TrustArgs;
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// The directory to create (it must be absent or empty).
    dir: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Extract without checking signatures (member hashes are still checked).
    #[arg(long)]
    insecure_skip_verify: bool,
}

pub fn run(args: &ExtractArgs, out: Output) -> Result<ExitCode> {
    let bundle = Bundle::open_path(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    if args.insecure_skip_verify {
        out.warn("SIGNATURES NOT CHECKED (--insecure-skip-verify): the content is only as trustworthy as the file's origin");
    } else {
        if args.trust.keys.is_empty() {
            bail!("give --key KEY.pub to check signatures, or --insecure-skip-verify");
        }
        args.trust
            .check_signatures(&bundle, &args.bundle.display().to_string())?;
    }
    let progress = out.progress();
    let files = extract(&bundle, &args.dir, default_threads(), progress.as_ref())
        .with_context(|| format!("extracting {}", args.bundle.display()))?;
    out.result(
        format!("extracted {files} files into {}\n", args.dir.display()),
        &serde_json::json!({ "ok": true, "files": files, "dir": args.dir }),
    );
    Ok(ExitCode::SUCCESS)
}
