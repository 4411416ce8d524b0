//! `bundle split`: cut a bundle into volumes for removable media.

use anyhow::{anyhow, Context, Result};
use bundle_file::split::{parse_size, split, DEFAULT_PART_SIZE};
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The bundle file (sign it first: signing needs the whole file).
    bundle: PathBuf,
    /// Largest part, e.g. 4000M (the default, under FAT32's 4 GiB limit), 2G, 700M.
    #[arg(long, value_name = "SIZE")]
    size: Option<String>,
}

pub fn run(args: &SplitArgs, out: Output) -> Result<ExitCode> {
    let size = match &args.size {
        Some(text) => parse_size(text).ok_or_else(|| anyhow!("invalid size {text:?}"))?,
        None => DEFAULT_PART_SIZE,
    };
    let progress = out.progress();
    let parts = split(&args.bundle, size, progress.as_ref())
        .with_context(|| format!("splitting {}", args.bundle.display()))?;
    let mut human = String::new();
    for part in &parts {
        human.push_str(&format!("{}\n", part.display()));
    }
    human.push_str(&format!(
        "{} parts; checksums in {}.sha256; readers take {} or its first part\n",
        parts.len(),
        args.bundle.display(),
        args.bundle.display()
    ));
    out.result(human, &serde_json::json!({ "ok": true, "parts": parts }));
    Ok(ExitCode::SUCCESS)
}
