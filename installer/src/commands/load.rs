//! `installer load`: verify a bundle, then push its images into a registry straight from the
//! compressed file (nothing is extracted), skipping what the registry already has.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use cli_support::retries::RetryReporter;
use cli_support::verify_cmd::{open_signed, TrustedBundleArgs};
use cli_support::Output;
use installer::load::{self, LoadOptions};
use registry::{Client, ClientConfig, Credentials, RegistrySettings};

use super::registry_args::SiteRegistryArgs;

/// Arguments of `load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bundle: TrustedBundleArgs,
    #[command(flatten)]
    pub target: SiteRegistryArgs,
    /// Allow plain HTTP or unverified TLS to the registry.
    #[arg(long)]
    pub insecure_registry: bool,
    /// Extra CA certificate (PEM) to trust for the registry; may be repeated.
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// Blobs uploaded at once, shared by all images (largest first).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Blobs larger than this many bytes are uploaded in chunks of this size (bodies stream,
    /// so a large chunk costs no memory).
    #[arg(long, hide = true, default_value_t = registry::CHUNK_SIZE)]
    pub chunk_size: u64,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let target = args.target.target()?;
    let registry = target.registry.clone();
    // Signatures first; the member check then runs while the blobs upload, and no manifest
    // or tag is pushed before it passed (the registry checks each blob against its digest).
    let (bundle, check) = open_signed(&args.bundle, out)?.check_in_background();
    let plans = load::plan(&bundle, &target).context("reading the bundle's images")?;
    let mut registries = BTreeMap::new();
    registries.insert(
        registry.clone(),
        RegistrySettings {
            insecure: args.insecure_registry,
            mirror: None,
        },
    );
    let config = ClientConfig {
        registries,
        ca_files: args.ca_files.clone(),
        credentials: Credentials::from_environment()?,
        retry_observer: Some(Arc::new(RetryReporter(out))),
        ..ClientConfig::default()
    };
    let client = Client::new(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    out.info(format!(
        "loading {} image(s) into {registry}{}",
        plans.len(),
        target
            .prefix
            .as_deref()
            .map(|p| format!("/{p}"))
            .unwrap_or_default()
    ));
    let progress = out.progress();
    let options = LoadOptions {
        jobs: usize::from(args.jobs),
        chunk_size: args.chunk_size.max(1),
    };
    let summary = runtime.block_on(load::load(
        &client,
        bundle,
        &plans,
        &options,
        progress.as_ref(),
        Some(check),
    ))?;
    for failure in &summary.failures {
        out.warn(format!("{} failed: {}", failure.image, failure.error));
    }
    let nothing = summary.already_complete();
    let human = format!(
        "{}{}/{} image(s) and {}/{} chart(s) loaded in {:.1}s: blobs {} pushed, {} skipped, \
         {} mounted; \
         {} bytes pushed, {} bytes skipped; manifests {} pushed, {} skipped; {} tag(s) set; \
         {} failure(s)\n",
        if nothing {
            "the registry already had everything: nothing uploaded\n"
        } else {
            ""
        },
        summary.images_loaded,
        summary.images,
        summary.charts_loaded,
        summary.charts,
        summary.seconds,
        summary.blobs_pushed,
        summary.blobs_skipped,
        summary.blobs_mounted,
        summary.bytes_pushed,
        summary.bytes_skipped,
        summary.manifests_pushed,
        summary.manifests_skipped,
        summary.tags_pushed,
        summary.failures.len(),
    );
    out.result(human, &summary);
    if !summary.failures.is_empty() {
        return Ok(out.partial_failure(format!(
            "{} of {} image(s) and chart(s) could not be loaded",
            summary.failures.len(),
            summary.images + summary.charts
        )));
    }
    Ok(ExitCode::SUCCESS)
}
