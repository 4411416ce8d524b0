//! `bundle pack`: a staged directory into a signed bundle.

use anyhow::{Context, Result};
use bundle_file::archive::parallel::default_threads;
use bundle_file::archive::DEFAULT_LEVEL;
use bundle_file::pack::{pack, PackOptions};
use cli_support::secrets::SigningArgs;
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pack`.
#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The staged directory; every regular file below it becomes a member.
    dir: PathBuf,
    /// The bundle file to write.
    #[arg(short, long, value_name = "B.tar.zst")]
    output: PathBuf,
    #[command(flatten)]
    signing: SigningArgs,
    /// Bundle name recorded in bundle.json (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Bundle version recorded in bundle.json.
    #[arg(long = "bundle-version", default_value = "0.0.0")]
    version: String,
    /// Target platform recorded in bundle.json (repeatable).
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Timestamp (seconds since the epoch) for bundle.json and every header; default
    /// SOURCE_DATE_EPOCH, else the newest input modification time.
    #[arg(long, env = "SOURCE_DATE_EPOCH")]
    timestamp: Option<u64>,
    /// Compression threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// zstd compression level.
    #[arg(long, default_value_t = DEFAULT_LEVEL)]
    level: i32,
}

pub fn run(args: &PackArgs, out: Output) -> Result<ExitCode> {
    let key = args.signing.load()?;
    if key.is_none() {
        out.warn("packing an unsigned bundle: installers refuse it until `bundle sign` signs it");
    }
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "bundle".into()),
    };
    let options = PackOptions {
        name,
        version: args.version.clone(),
        platforms: args.platforms.clone(),
        timestamp: args.timestamp,
        threads: args.threads.unwrap_or_else(default_threads),
        level: args.level,
    };
    let progress = out.progress();
    let report = pack(
        &args.dir,
        &args.output,
        &options,
        key.as_ref(),
        progress.as_ref(),
    )
    .with_context(|| format!("packing {}", args.dir.display()))?;
    let data: u64 = report.toc.members.iter().map(|m| m.size).sum();
    out.result(
        format!(
            "wrote {}: {} members, {} bytes of content in {} bytes{}\n",
            args.output.display(),
            report.toc.members.len() + 1,
            data,
            report.compressed,
            key.as_ref()
                .map(|k| format!(", signed by {}", k.id()))
                .unwrap_or_default()
        ),
        &serde_json::json!({
            "ok": true,
            "bundle": args.output,
            "members": report.toc.members.len() + 1,
            "content_bytes": data,
            "file_bytes": report.compressed,
            "signed_by": key.as_ref().map(|k| k.id().to_string()),
        }),
    );
    Ok(ExitCode::SUCCESS)
}
