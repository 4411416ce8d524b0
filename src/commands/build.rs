//! `bundle build`: lock (or check the lock), fetch every image into the cache, check what the
//! charts render, pack and sign. The pipeline is `online::build::run`; this is its front end.

use super::events::CliEvents;
use super::images_args::{runtime, ImagesArgs};
use anyhow::Result;
use cli_support::progress::human_bytes;
use cli_support::secrets::SigningArgs;
use cli_support::Output;
use online::build::{BuildRequest, BuildSummary};
use online::store::BlobCache;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    images: ImagesArgs,
    /// Refuse to build when manifests.lock and images.toml disagree (instead of updating it).
    #[arg(long)]
    locked: bool,
    /// The bundle file to write.
    #[arg(short, long, value_name = "B.tar.zst")]
    output: PathBuf,
    #[command(flatten)]
    signing: SigningArgs,
    /// Blob cache directory (default: BUNDLE_CACHE_DIR, else the user's cache directory).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Carry only this part: `clamav` makes a small update bundle with the signature-database
    /// image alone, whose base layers the site's registry already has.
    #[arg(long, value_enum, value_name = "PART")]
    only: Option<Part>,
    /// Build a delta against this older bundle, which the site has loaded and deployed: carry
    /// only the configs, layers, tools and files it did not (every manifest, chart and the CA are
    /// still carried); list the rest in external-blobs.json and the old bundle in base.json.
    #[arg(long, value_name = "OLD.tar.zst", conflicts_with = "only")]
    since: Option<PathBuf>,
    /// Carry this site CA directory (`ca.crt`, and `ca.key.age` unless made with --no-key;
    /// see `bundle ca init`) as `ca/`.
    #[arg(long, value_name = "DIR")]
    ca: Option<PathBuf>,
    /// The stack's own charts: every subdirectory with a Chart.yaml is packaged and carried
    /// [default: charts/ beside images.toml, skipped when absent].
    #[arg(long, value_name = "DIR")]
    chart_dir: Option<PathBuf>,
    /// The render plan `bundle find-images` reads; every image it renders must be in
    /// images.toml [default: releases.toml beside images.toml, skipped when absent].
    #[arg(long, value_name = "FILE")]
    releases: Option<PathBuf>,
    /// The helm binary for rendering when the lock pins none for this machine's platform.
    #[arg(long, env = "BUNDLE_HELM", default_value = "helm", value_name = "PATH")]
    helm: PathBuf,
    /// Bundle name.
    #[arg(long, default_value = "messenger")]
    name: String,
    /// Bundle version.
    #[arg(long = "bundle-version", default_value = "0.0.0")]
    version: String,
}

/// Parts a bundle can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The ClamAV signature-database image.
    Clamav,
}

pub fn run(args: &BuildArgs, out: Output) -> Result<ExitCode> {
    let images = args.images.load_images()?;
    let key = args.signing.load()?;
    let cache = BlobCache::open(args.cache.clone().unwrap_or_else(BlobCache::default_root))?;
    let client = args.images.client(&images, out)?;
    let inputs = args.images.lock_inputs(&client, cache)?;
    let chart_dir = args.images.beside_images(args.chart_dir.as_ref(), "charts");
    let releases = args
        .images
        .beside_images(args.releases.as_ref(), "releases.toml");
    let request = BuildRequest {
        images: &images,
        lock_path: &args.images.lock,
        locked: args.locked,
        output: &args.output,
        name: args.name.clone(),
        version: args.version.clone(),
        signer: key.as_ref(),
        only_clamav: args.only == Some(Part::Clamav),
        since: args.since.as_deref(),
        ca_dir: args.ca.as_deref(),
        chart_dir: chart_dir.as_deref(),
        releases: releases.as_deref(),
        fallback_helm: &args.helm,
        jobs: args.images.jobs,
    };
    let events = CliEvents::new(out);
    let progress = out.progress();
    let summary = runtime()?.block_on(online::build::run(
        &request,
        &inputs,
        &client,
        &events,
        progress.as_ref(),
    ))?;
    out.result(human(&summary), &summary);
    Ok(ExitCode::SUCCESS)
}

fn human(summary: &BuildSummary) -> String {
    format!(
        "wrote {} ({}): {} images, {} blobs downloaded ({}), {} from the cache ({}){}\n",
        summary.bundle,
        human_bytes(summary.bytes),
        summary.images,
        summary.downloaded_blobs,
        human_bytes(summary.downloaded_bytes),
        summary.cached_blobs,
        human_bytes(summary.cached_bytes),
        summary
            .signed_by
            .as_ref()
            .map(|k| format!(", signed by {k}"))
            .unwrap_or_default()
    )
}
