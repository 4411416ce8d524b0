//! `bundle build`: lock (or check the lock), fetch every image into the cache, pack and sign.

use super::events::{human, CliEvents};
use super::images_args::{runtime, ImagesArgs};
use anyhow::{Context, Result};
use bundle::archive::parallel::default_threads;
use bundle::archive::DEFAULT_LEVEL;
use bundle::build::{
    build, lock_for_build, BuildEvent, BuildEvents, BuildOutput, Contents, Extras, LockSources,
    Sources,
};
use bundle::cli::secrets::SigningArgs;
use bundle::cli::Output;
use bundle::container::pack::{Input, PackOptions};
use bundle::store::BlobCache;
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

pub fn run(args: &BuildArgs, out: Output) -> Result<()> {
    let images = args.images.load_images()?;
    let key = args.signing.load()?;
    let cache = BlobCache::open(args.cache.clone().unwrap_or_else(BlobCache::default_root))?;
    let client = args.images.client(&images)?;
    let events = CliEvents::new(&out);
    let progress = out.progress();
    let tools = args.images.load_tools()?;
    let http = args.images.http()?;
    let sources = LockSources {
        tools: tools.as_ref(),
        clamav_source: args.images.clamav_source(),
        http: &http,
        cache: &cache,
    };
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
        rt.block_on(bundle::tools::fetch(&lock.tools, &http, &cache))?
    };
    let clamav = match &images.clamav {
        Some(_) => {
            Some(rt.block_on(bundle::clamav::collect::fetch(&lock.clamav, &http, &cache))?)
        }
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
    let contents = Contents {
        only_clamav,
        clamav,
        extras: Extras {
            images: Vec::new(),
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
