//! The online pipeline, in one place: images.toml and the other input files -> manifests.lock
//! -> blob cache -> checks (capacity, rendered images) -> OCI layout -> signed bundle.
//!
//! [`run`] is `bundle build`; [`lock`] is what `bundle lock` shares with it. The steps:
//! [`resolve`] (registries to the lock), [`fetch`] (each blob once into the cache),
//! [`checks`] (what the charts render), [`charts`] (packaging and artifacts),
//! [`signature_image`] (ClamAV databases as a layer), [`files_image`] (the site's download
//! page as a layer of the web image), [`stage`] (the OCI layout straight
//! from the cache), then the bundle file's pack.

pub mod charts;
pub mod checks;
pub mod delta;
mod error;
pub mod events;
pub mod fetch;
pub mod files_image;
pub mod lock;
mod manifests;
pub mod resolve;
pub mod signature_image;
pub mod stage;

pub use error::BuildError;
pub use events::{BuildEvent, BuildEvents, NoEvents};
pub use lock::{
    client_config, load_lock, lock_for_build, update_lock, write_lock, LockInputs, RefreshFiles,
};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bundle_file::archive::parallel::default_threads;
use bundle_file::archive::DEFAULT_LEVEL;
use bundle_file::external::{self, ExternalBlob, BASE, EXTERNAL_BLOBS};
use bundle_file::pack::{json_bytes, pack_inputs, Input, PackOptions, PackReport};
use bundle_file::sign::SecretKey;
use bundle_file::Progress;
use registry::Client;

use crate::spec::{ImagesFile, Lock, LockedImage};
use crate::store::BlobCache;

/// What to build: everything `bundle build` was told.
pub struct BuildRequest<'a> {
    /// images.toml.
    pub images: &'a ImagesFile,
    /// manifests.lock.
    pub lock_path: &'a Path,
    /// Refuse a lock that disagrees with the input files instead of updating it.
    pub locked: bool,
    /// The bundle file to write.
    pub output: &'a Path,
    /// Bundle name and version (bundle.json).
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Signing key, if the bundle is signed at build time.
    pub signer: Option<&'a SecretKey>,
    /// Carry only the ClamAV signature-database image (an update bundle whose base layers the
    /// site already has).
    pub only_clamav: bool,
    /// The bundle the site already has: build a delta that carries only what it lacks.
    pub since: Option<&'a Path>,
    /// The site CA directory to carry (`ca.crt`, `ca.key.age`).
    pub ca_dir: Option<&'a Path>,
    /// The stack's own charts: every subdirectory with a Chart.yaml.
    pub chart_dir: Option<&'a Path>,
    /// The render plan whose every rendered image must be in images.toml.
    pub releases: Option<&'a Path>,
    /// The helm to render with when the lock pins none for this machine.
    pub fallback_helm: &'a Path,
    /// Downloads in flight.
    pub jobs: usize,
}

/// What a build did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildSummary {
    /// The bundle file.
    pub bundle: String,
    /// Its size.
    pub bytes: u64,
    /// Images in the lock.
    pub images: usize,
    /// Blobs downloaded.
    pub downloaded_blobs: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Blobs found in the cache.
    pub cached_blobs: usize,
    /// Bytes found in the cache.
    pub cached_bytes: u64,
    /// The key that signed it, if any.
    pub signed_by: Option<String>,
}

/// Builds the bundle `request` describes: the lock (checked or brought up to date), the
/// tools, upstream charts and ClamAV databases it pins, the checks of what the charts render,
/// then every blob into the cache and the signed bundle out of it. The build time written
/// into the bundle is the lock's, so the same lock and inputs give the same bytes.
pub async fn run(
    request: &BuildRequest<'_>,
    inputs: &LockInputs,
    client: &Client,
    events: &dyn BuildEvents,
    progress: &dyn Progress,
) -> Result<BuildSummary, BuildError> {
    let images = request.images;
    let cache = &inputs.cache;
    if request.since.is_some() && request.only_clamav {
        return Err(BuildError::LockMismatch(
            "--since and --only clamav do not combine: an update bundle already leaves its \
             base layers to the site"
                .into(),
        ));
    }
    let base = match request.since {
        Some(path) => Some(tokio::task::block_in_place(|| {
            delta::BaseContents::read(path)
        })?),
        None => None,
    };
    let lock = lock_for_build(
        images,
        inputs,
        request.lock_path,
        request.locked,
        client,
        request.jobs,
    )
    .await?;
    let timestamp = lock.build_time();
    let mut contents = Contents {
        only_clamav: request.only_clamav,
        ..Contents::default()
    };
    if !request.only_clamav {
        // A delta leaves out the tools the old bundle carried unchanged.
        let tools: Vec<_> = lock
            .tools
            .iter()
            .filter(|t| {
                !base
                    .as_ref()
                    .is_some_and(|b| b.has_member(&t.bundle_path(), t.sha256.hex()))
            })
            .cloned()
            .collect();
        let tool_files = crate::tools::fetch(&tools, &inputs.http, cache).await?;
        let upstream = charts::fetch_upstream(&lock, &inputs.upstream).await?;
        if let Some(releases) = request.releases {
            tokio::task::block_in_place(|| {
                checks::check_rendered_images(
                    releases,
                    images,
                    (&tool_files, &upstream),
                    request.fallback_helm,
                    events,
                )
            })?;
        }
        contents.extras.files = tool_files
            .into_iter()
            .map(|t| Input {
                path: t.bundle_path,
                file: t.file,
                size: t.size,
                mtime: 0,
            })
            .collect();
        if let Some(dir) = request.ca_dir {
            contents.extras.files.extend(ca_inputs(dir)?);
        }
        if let Some(files) = &inputs.files {
            let web = files_image::base_image(files, images, &lock)?;
            let entries = crate::files::fetch(files, &lock.files, &inputs.http, cache).await?;
            contents
                .extras
                .files
                .extend(file_inputs(&entries, base.as_ref(), cache)?);
            if let (Some(web), false) = (web, entries.is_empty()) {
                contents.files_image = Some(FilesImageInputs {
                    base: web.clone(),
                    entries,
                    ca_dir: request.ca_dir.map(Path::to_path_buf),
                });
            }
        }
        contents.charts = Some((
            match request.chart_dir {
                Some(dir) => charts::own_charts(dir)?,
                None => Vec::new(),
            },
            upstream,
        ));
    }
    contents.base = base;
    if images.clamav.is_some() {
        contents.clamav =
            Some(crate::clamav::collect::fetch(&lock.clamav, &inputs.http, cache).await?);
    }
    let output = BuildOutput {
        path: request.output,
        pack: PackOptions {
            name: request.name.clone(),
            version: request.version.clone(),
            platforms: images.platforms.iter().map(ToString::to_string).collect(),
            timestamp: Some(timestamp),
            threads: default_threads(),
            level: DEFAULT_LEVEL,
        },
        signer: request.signer,
    };
    let sources = Sources {
        client,
        cache,
        jobs: request.jobs,
    };
    let (packed, fetched) = assemble(images, &lock, contents, sources, output, events, progress)
        .await
        .map_err(|e| BuildError::Building {
            bundle: request.output.display().to_string(),
            source: Box::new(e),
        })?;
    Ok(BuildSummary {
        bundle: request.output.display().to_string(),
        bytes: packed.compressed,
        images: lock.images.len(),
        downloaded_blobs: fetched.downloaded_blobs,
        downloaded_bytes: fetched.downloaded_bytes,
        cached_blobs: fetched.cached_blobs,
        cached_bytes: fetched.cached_bytes,
        signed_by: request.signer.map(|k| k.id().to_string()),
    })
}

/// Fetches `image`'s manifests and configs into the cache: the base an appended-layer image
/// (the ClamAV signatures, the site's files) is made from, when the bundle does not carry it.
async fn fetch_metadata(
    images: &ImagesFile,
    lock: &Lock,
    image: &LockedImage,
    sources: &Sources<'_>,
    events: &dyn BuildEvents,
) -> Result<fetch::FetchReport, BuildError> {
    let mut only = lock.clone();
    only.images = vec![image.clone()];
    let (_, report) = fetch::fetch(
        images,
        &only,
        fetch::Scope::Metadata,
        None,
        sources.client,
        sources.cache,
        sources.jobs,
        events,
    )
    .await?;
    Ok(report)
}

/// A delta's own members: `external-blobs.json` (the blobs of `images` the site has from the
/// old bundle, which are taken out of `images`) and `base.json`.
fn delta_members(
    images: &mut [fetch::ImageContent],
    base: &delta::BaseContents,
    staging: &Path,
    timestamp: u64,
) -> Result<Vec<Input>, BuildError> {
    let left = delta::left_to_site(images, base)?;
    delta::without(images, &left);
    let blobs: Vec<ExternalBlob> = left.into_values().collect();
    Ok(vec![
        Input::staged(
            staging,
            EXTERNAL_BLOBS,
            &external::to_json(&blobs),
            timestamp,
        )?,
        Input::staged(staging, BASE, &json_bytes(&base.base), timestamp)?,
    ])
}

/// The site's files as bundle members (`files/<name>`, those a delta's base lacks) and
/// `files.json` listing them all.
fn file_inputs(
    entries: &[crate::files::FileEntry],
    base: Option<&delta::BaseContents>,
    cache: &BlobCache,
) -> Result<Vec<Input>, BuildError> {
    let mut inputs = Vec::new();
    for entry in entries {
        if base.is_some_and(|b| b.has_member(&entry.path, entry.digest.hex())) {
            continue;
        }
        inputs.push(Input {
            path: entry.path.clone(),
            file: cache.file_of(&entry.digest),
            size: entry.size,
            mtime: 0,
        });
    }
    let index = files_image::files_index(entries);
    let digest = cache.put_bytes(&index)?;
    inputs.push(Input {
        path: crate::files::FILES_INDEX.to_string(),
        file: cache.file_of(&digest),
        size: index.len() as u64,
        mtime: 0,
    });
    Ok(inputs)
}

/// The CA directory's files as bundle members under `ca/`.
fn ca_inputs(dir: &Path) -> Result<Vec<Input>, BuildError> {
    let mut inputs = Vec::new();
    for (path, file) in crate::ca::bundle_files(dir)? {
        let size = std::fs::metadata(&file)
            .map_err(|e| BuildError::io(&file, e))?
            .len();
        inputs.push(Input {
            path,
            file,
            size,
            mtime: 0,
        });
    }
    Ok(inputs)
}

/// What goes into the bundle beside the images of the lock: more OCI layout entries (charts
/// as OCI artifacts, the signature-database image) whose blobs are in the cache, and plain
/// files (tools, the chart repository, the CA).
#[derive(Debug, Default)]
pub struct Extras {
    /// Further OCI layout entries.
    pub images: Vec<fetch::ImageContent>,
    /// Further members.
    pub files: Vec<Input>,
}

/// Where a build writes, and how.
struct BuildOutput<'a> {
    path: &'a Path,
    pack: PackOptions,
    signer: Option<&'a SecretKey>,
}

/// Where blobs come from and go: the registry client, the cache, and how many downloads run
/// at once.
struct Sources<'a> {
    client: &'a Client,
    cache: &'a BlobCache,
    jobs: usize,
}

/// What a build puts in the bundle.
#[derive(Debug, Default)]
struct Contents {
    /// Only the ClamAV signature-database image (an update bundle whose base layers the site
    /// already has), instead of every image of the lock.
    only_clamav: bool,
    /// The signature databases for the signature image, when the bundle carries one.
    clamav: Option<Vec<crate::clamav::collect::DatabaseFile>>,
    /// The stack's own chart directories and the fetched upstream chart archives, by name.
    charts: Option<(Vec<PathBuf>, BTreeMap<String, PathBuf>)>,
    /// Everything else beside the images.
    extras: Extras,
    /// What the site has from the old bundle, when building a delta.
    base: Option<delta::BaseContents>,
    /// The download page's image, when files.toml names the web image and lists files.
    files_image: Option<FilesImageInputs>,
}

/// What the files image is made of.
#[derive(Debug)]
struct FilesImageInputs {
    /// The locked web image it extends.
    base: crate::spec::LockedImage,
    /// The files (`files.json`'s entries), in the cache.
    entries: Vec<crate::files::FileEntry>,
    /// The site CA directory, when the bundle carries one.
    ca_dir: Option<PathBuf>,
}

/// Fetches what `contents` needs into the cache and packs the bundle.
async fn assemble(
    images: &ImagesFile,
    lock: &Lock,
    contents: Contents,
    sources: Sources<'_>,
    output: BuildOutput<'_>,
    events: &dyn BuildEvents,
    progress: &dyn Progress,
) -> Result<(PackReport, fetch::FetchReport), BuildError> {
    let Sources {
        client,
        cache,
        jobs,
    } = sources;
    let options = output.pack;
    let timestamp = options.timestamp.unwrap_or(0);
    let base = match (&contents.clamav, &images.clamav) {
        (Some(_), Some(spec)) => Some(
            lock.images
                .iter()
                .find(|i| i.reference == spec.image)
                .ok_or_else(|| {
                    BuildError::LockMismatch(format!(
                        "the ClamAV image {} is not in the lock",
                        spec.image
                    ))
                })?,
        ),
        _ => None,
    };
    let (mut images_out, mut report) = match (contents.only_clamav, base) {
        (true, Some(base)) => (
            Vec::new(),
            fetch_metadata(images, lock, base, &sources, events).await?,
        ),
        (true, None) => {
            return Err(BuildError::LockMismatch(
                "--only clamav needs [clamav] in images.toml and databases in the lock".into(),
            ))
        }
        (false, _) => {
            fetch::fetch(
                images,
                lock,
                fetch::Scope::Everything,
                contents.base.as_ref(),
                client,
                cache,
                jobs,
                events,
            )
            .await?
        }
    };
    let staging = tempfile::tempdir().map_err(|e| BuildError::io(&std::env::temp_dir(), e))?;
    let mut extras = contents.extras;
    if let Some((own, upstream)) = &contents.charts {
        let charts = tokio::task::block_in_place(|| {
            charts::chart_contents(own, upstream, cache, staging.path(), timestamp)
        })?;
        extras.images.extend(charts.images);
        extras.files.extend(charts.files);
    }
    let mut extra_files = extras.files;
    if let (Some(files), Some(base)) = (&contents.clamav, base) {
        if contents.base.is_some() {
            // A delta leaves the ClamAV image's config to the site, but the signature image's
            // config is made from it.
            fetch_metadata(images, lock, base, &sources, events).await?;
        }
        let image = tokio::task::block_in_place(|| {
            signature_image::signature_image(base, &lock.clamav, files, cache, timestamp)
        })?;
        if contents.only_clamav {
            let blobs: Vec<ExternalBlob> = image
                .base_layers
                .iter()
                .map(|(digest, size)| ExternalBlob {
                    digest: digest.clone(),
                    size: *size,
                    image: base.reference.to_string(),
                })
                .collect();
            extra_files.push(Input::staged(
                staging.path(),
                EXTERNAL_BLOBS,
                &external::to_json(&blobs),
                timestamp,
            )?);
        }
        images_out.push(image.content);
    }
    if let Some(page) = &contents.files_image {
        if contents.base.is_some() {
            // The same for the web image the files image is made from.
            fetch_metadata(images, lock, &page.base, &sources, events).await?;
        }
        let image = tokio::task::block_in_place(|| {
            files_image::files_image(
                &page.base,
                &page.entries,
                page.ca_dir.as_deref(),
                cache,
                timestamp,
            )
        })?;
        images_out.push(image.content);
    }
    images_out.extend(extras.images);
    // The bill of materials, before a delta takes out the blobs the site has.
    let sbom = crate::sbom::SbomInputs {
        name: &options.name,
        version: &options.version,
        timestamp,
        images: &images_out,
        lock,
        tools_and_files: !contents.only_clamav,
        clamav: contents.clamav.is_some(),
    };
    extra_files.push(tokio::task::block_in_place(|| {
        crate::sbom::member(&sbom, cache, staging.path())
    })?);
    if let Some(base) = &contents.base {
        extra_files.extend(delta_members(
            &mut images_out,
            base,
            staging.path(),
            timestamp,
        )?);
    }
    let mut inputs = stage::stage(&images_out, cache, staging.path(), timestamp)?;
    inputs.extend(extra_files.into_iter().map(|mut file| {
        file.mtime = timestamp;
        file
    }));
    bundle_file::pack::sort_inputs(&mut inputs);
    events.event(BuildEvent::PackStarted {
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    // The cache's blobs are trusted once, by the packer, which hashes each as it packs it
    // (docs/architecture.md). One that does not hash to its name is evicted and, when a
    // registry serves it, fetched again and the pack run again; nothing is left at the
    // output meanwhile.
    let mut refetched = 0;
    loop {
        // Packing is CPU-bound and runs its own threads; keep it off the async workers.
        let packed = tokio::task::block_in_place(|| {
            pack_inputs(
                inputs.clone(),
                output.path,
                &options,
                output.signer,
                progress,
            )
        });
        let error = match packed {
            Ok(packed) => return Ok((packed, report)),
            Err(e) => corrupted_cache_entry(e, cache),
        };
        let BuildError::CorruptedCache { digest, .. } = &error else {
            return Err(error);
        };
        let Some((image, size)) = registry_source(lock, &images_out, digest) else {
            return Err(error);
        };
        if refetched == MAX_REFETCHED {
            return Err(error);
        }
        let digest = oci::Digest::parse(digest).map_err(|_| error)?;
        fetch::fetch_blob(images, client, cache, &image, &digest, size, events).await?;
        refetched += 1;
        report.downloaded_blobs += 1;
        report.downloaded_bytes += size;
        report.cached_blobs = report.cached_blobs.saturating_sub(1);
        report.cached_bytes = report.cached_bytes.saturating_sub(size);
    }
}

/// A blob of the cache that did not hash to its name while it was packed: evicted, so the
/// next build fetches it again, and reported as such. Other errors pass through.
fn corrupted_cache_entry(error: bundle_file::BundleError, cache: &BlobCache) -> BuildError {
    let bundle_file::BundleError::BlobMismatch { file, actual, .. } = &error else {
        return error.into();
    };
    let Some(digest) = file
        .file_name()
        .and_then(|name| name.to_str())
        .and_then(|hex| oci::Digest::parse(&format!("sha256:{hex}")).ok())
        .filter(|digest| cache.file_of(digest) == *file)
    else {
        return error.into();
    };
    match cache.evict(&digest) {
        Ok(()) => BuildError::CorruptedCache {
            digest: digest.to_string(),
            file: file.display().to_string(),
            actual: actual.clone(),
        },
        Err(e) => e.into(),
    }
}

/// How many corrupted cache entries one build fetches again before it gives up.
const MAX_REFETCHED: usize = 8;

/// The locked image a registry serves blob `digest` from, and its size: `None` for blobs the
/// build made itself (charts, the signature and files images).
fn registry_source(
    lock: &Lock,
    images_out: &[fetch::ImageContent],
    digest: &str,
) -> Option<(oci::Reference, u64)> {
    images_out
        .iter()
        .filter(|image| lock.images.iter().any(|l| l.reference == image.reference))
        .find_map(|image| {
            let (_, size) = image.blobs.iter().find(|(d, _)| d.as_str() == digest)?;
            Some((image.reference.clone(), *size))
        })
}
