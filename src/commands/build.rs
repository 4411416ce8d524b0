//! `bundle build`: lock (or check the lock), fetch every image into the cache, pack and sign.

use super::events::{human, CliEvents};
use super::images_args::{runtime, ImagesArgs};
use anyhow::{Context, Result};
use bundle::archive::parallel::default_threads;
use bundle::archive::DEFAULT_LEVEL;
use bundle::build::charts::{chart_contents, fetch_upstream, own_charts};
use bundle::build::{
    build, lock_for_build, BuildEvent, BuildEvents, BuildOutput, Contents, Extras, Sources,
};
use bundle::cli::secrets::SigningArgs;
use bundle::cli::Output;
use bundle::container::pack::{Input, PackOptions};
use bundle::discover::{check, discover, RenderPlan};
use bundle::spec::ImagesFile;
use bundle::store::BlobCache;
use bundle::tools::ToolFile;
use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// Checks the stack chart's capacity (see [`check_capacity`]), then renders every release of
/// releases.toml for every profile (upstream charts from their fetched archives), with the
/// pinned helm when the bundle carries one for this machine, and fails when an image it
/// renders is not in images.toml (warning on listed images nothing renders).
fn check_rendered_images(
    args: &BuildArgs,
    images: &ImagesFile,
    (tools, upstream): (&[ToolFile], &BTreeMap<String, PathBuf>),
    out: &Output,
) -> Result<()> {
    let Some(releases) = args
        .images
        .beside_images(args.releases.as_ref(), "releases.toml")
    else {
        return Ok(());
    };
    let mut plan = RenderPlan::load(&releases)?;
    plan.resolve_locked(|name| upstream.get(name).cloned())?;
    check_capacity(&plan, out)?;
    let scratch = tempfile::tempdir().context("creating a directory for the pinned helm")?;
    let helm = bundle::tools::host_binary(tools, "helm", scratch.path())
        .context("writing the pinned helm")?
        .unwrap_or_else(|| args.helm.clone());
    out.info(format!(
        "rendering {} release(s) of {} with {}",
        plan.releases.len(),
        releases.display(),
        helm.display()
    ));
    let findings = discover(&plan, &helm)?;
    let report = check(&findings, images);
    for unused in &report.unused {
        out.warn(format!(
            "{} ({}) is listed but no release of {} renders it",
            unused.written,
            images.location_of(unused),
            releases.display()
        ));
    }
    report.ensure_complete(&images.path)?;
    Ok(())
}

/// The stack chart's capacity check for every scale profile on the site values releases.toml
/// renders it with: a profile whose connection pools exceed PostgreSQL's `max_connections`
/// (with headroom) fails the build, whatever the site; CPU and memory depend on the site's
/// nodes, so there a shortfall of the reference site is a warning (`installer capacity` is
/// the site's own check).
fn check_capacity(plan: &RenderPlan, out: &Output) -> Result<()> {
    let Some(release) = plan
        .releases
        .iter()
        .find(|r| r.chart.path.join("profiles").is_dir() && r.chart.path.ends_with("messenger"))
    else {
        return Ok(());
    };
    let Some(site) = release.values.first() else {
        return Ok(());
    };
    let reports = bundle::capacity::check_all_profiles(&release.chart.path, &site.path)
        .with_context(|| format!("capacity of {}", release.chart.path.display()))?;
    let mut failed = Vec::new();
    for report in &reports {
        out.info(format!("capacity, profile {}:\n{report}", report.profile));
        for check in report.failures() {
            let line = format!(
                "profile {} fails {}: {}",
                report.profile,
                check.name,
                check.verdict()
            );
            if check.name == "connections" {
                failed.push(line);
            } else {
                out.warn(format!("{line} (on the reference site {})", site.written));
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!("{}", failed.join("\n"));
    }
    Ok(())
}

/// Parts a bundle can be limited to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The ClamAV signature-database image.
    Clamav,
}

pub fn run(args: &BuildArgs, out: Output) -> Result<()> {
    let images = args.images.load_images()?;
    let key = args.signing.load()?;
    let cache = BlobCache::open(args.cache.clone().unwrap_or_else(BlobCache::default_root))?;
    let client = args.images.client(&images)?;
    let events = CliEvents::new(&out);
    let progress = out.progress();
    let inputs = args.images.lock_inputs(&client, cache.clone())?;
    let sources = inputs.sources();
    let (http, upstream) = (&inputs.http, &inputs.upstream);
    let rt = runtime()?;
    let lock = rt.block_on(lock_for_build(
        &images,
        &sources,
        &args.images.lock,
        args.locked,
        &client,
        args.images.jobs,
    ))?;
    let output = BuildOutput {
        path: &args.output,
        pack: PackOptions {
            name: args.name.clone(),
            version: args.version.clone(),
            platforms: images.platforms.iter().map(ToString::to_string).collect(),
            timestamp: None,
            threads: default_threads(),
            level: DEFAULT_LEVEL,
        },
        signer: key.as_ref(),
    };
    let only_clamav = args.only == Some(Part::Clamav);
    let tool_files = if only_clamav {
        Vec::new()
    } else {
        rt.block_on(bundle::tools::fetch(&lock.tools, http, &cache))?
    };
    let upstream_charts = if only_clamav {
        BTreeMap::new()
    } else {
        rt.block_on(fetch_upstream(&lock, upstream))?
    };
    if !only_clamav {
        check_rendered_images(args, &images, (&tool_files, &upstream_charts), &out)?;
    }
    let clamav = match &images.clamav {
        Some(_) => Some(rt.block_on(bundle::clamav::collect::fetch(&lock.clamav, http, &cache))?),
        None => None,
    };
    let mut files: Vec<Input> = tool_files
        .into_iter()
        .map(|t| Input {
            path: t.bundle_path,
            file: t.file,
            size: t.size,
            mtime: 0,
        })
        .collect();
    if let (Some(dir), false) = (&args.ca, only_clamav) {
        for (path, file) in bundle::ca::bundle_files(dir)? {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            files.push(Input {
                path,
                file,
                size,
                mtime: 0,
            });
        }
    }
    let chart_staging = tempfile::tempdir().context("creating a directory for charts")?;
    let mut chart_images = Vec::new();
    if !only_clamav {
        let own = match args.images.beside_images(args.chart_dir.as_ref(), "charts") {
            Some(dir) => own_charts(&dir)?,
            None => Vec::new(),
        };
        let timestamp = lock
            .resolved_at
            .as_deref()
            .and_then(bundle::manifest::parse_rfc3339)
            .unwrap_or(0);
        let charts = chart_contents(
            &own,
            &upstream_charts,
            &cache,
            chart_staging.path(),
            timestamp,
        )?;
        chart_images = charts.images;
        files.extend(charts.files);
    }
    let contents = Contents {
        only_clamav,
        clamav,
        extras: Extras {
            images: chart_images,
            files,
        },
    };
    let (packed, fetched) = rt
        .block_on(build(
            &images,
            &lock,
            contents,
            Sources {
                client: &client,
                cache: &cache,
                jobs: args.images.jobs,
            },
            output,
            &events,
            progress.as_ref(),
        ))
        .with_context(|| format!("building {}", args.output.display()))?;
    events.event(BuildEvent::Done {
        bundle: args.output.display().to_string(),
        bytes: packed.compressed,
        downloaded_blobs: fetched.downloaded_blobs,
        downloaded_bytes: fetched.downloaded_bytes,
        cached_blobs: fetched.cached_blobs,
        cached_bytes: fetched.cached_bytes,
    });
    if !out.json() {
        out.result(
            format!(
                "wrote {} ({}): {} images, {} blobs downloaded ({}), {} from the cache ({}){}\n",
                args.output.display(),
                human(packed.compressed),
                lock.images.len(),
                fetched.downloaded_blobs,
                human(fetched.downloaded_bytes),
                fetched.cached_blobs,
                human(fetched.cached_bytes),
                key.as_ref()
                    .map(|k| format!(", signed by {}", k.id()))
                    .unwrap_or_default()
            ),
            &(),
        );
    }
    Ok(())
}
