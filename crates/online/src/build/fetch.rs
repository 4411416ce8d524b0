//! Fetching: every manifest and blob the lock names into the global cache, each blob once
//! however many images share it, several in flight, each checked against its digest; what is
//! already cached (and still hashes right) is not fetched again.

use super::events::{BuildEvent, BuildEvents};
use super::manifests::{filtered_index, image_manifest};
use super::BuildError;
use crate::spec::{ImagesFile, Lock, LockedImage};
use crate::store::BlobCache;
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use oci::{Descriptor, Digest, Reference};
use registry::Client;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What one image contributes to the bundle.
#[derive(Debug, Clone)]
pub struct ImageContent {
    /// The reference, as the OCI layout will name it.
    pub reference: Reference,
    /// The layout's name for it when not the normalised reference (charts:
    /// `charts/<name>:<version>`).
    pub ref_name: Option<String>,
    /// The manifest or index `index.json` points at (the filtered index when platforms were
    /// left out).
    pub root: oci::Descriptor,
    /// Every blob of the image, manifests included, with sizes.
    pub blobs: Vec<(Digest, u64)>,
}

/// Counts of a fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchReport {
    /// Blobs downloaded.
    pub downloaded_blobs: usize,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Blobs found whole in the cache.
    pub cached_blobs: usize,
    /// Bytes found in the cache.
    pub cached_bytes: u64,
}

/// What of each image to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Manifests, configs and layers: everything the bundle carries.
    Everything,
    /// Manifests and configs only, to build on an image without carrying it.
    Metadata,
}

/// Fetches what `scope` asks of every image `lock` names into `cache` with up to `jobs`
/// downloads in flight; for a delta, not the blobs the site has from `base`.
#[allow(clippy::too_many_arguments)]
pub async fn fetch(
    images: &ImagesFile,
    lock: &Lock,
    scope: Scope,
    base: Option<&super::delta::BaseContents>,
    client: &Client,
    cache: &BlobCache,
    jobs: usize,
    events: &dyn BuildEvents,
) -> Result<(Vec<ImageContent>, FetchReport), BuildError> {
    let mut contents = Vec::with_capacity(lock.images.len());
    // Manifests downloaded while listing the blobs: the blob pass below finds them cached,
    // but they count as downloaded.
    let mut fetched_manifests = std::collections::BTreeSet::new();
    for locked in &lock.images {
        let content = manifests(images, locked, scope, client, cache, &mut fetched_manifests).await;
        contents.push(content.map_err(|e| match e {
            BuildError::LockDisagrees { message, .. } => BuildError::LockDisagrees {
                location: lock.location_of(locked).to_string(),
                message,
            },
            other => other,
        })?);
    }
    // Each distinct blob once, fetched from the first image that names it.
    let mut needed: BTreeMap<Digest, (Reference, u64)> = BTreeMap::new();
    for content in &contents {
        for (digest, size) in &content.blobs {
            needed
                .entry(digest.clone())
                .or_insert_with(|| (content.reference.clone(), *size));
        }
    }
    if let Some(base) = base {
        let left = super::delta::left_to_site(&contents, base)?;
        needed.retain(|digest, _| !left.contains_key(digest));
    }
    events.event(BuildEvent::FetchStarted {
        blobs: needed.len(),
        bytes: needed.values().map(|(_, s)| s).sum(),
    });
    let report = Mutex::new(FetchReport::default());
    let downloaded_by_digest = Mutex::new(BTreeMap::new());
    stream::iter(needed.iter())
        .map(|(digest, (reference, size))| {
            let (report, downloaded_by_digest) = (&report, &downloaded_by_digest);
            let fetched_manifests = &fetched_manifests;
            async move {
                let downloaded =
                    fetch_blob(images, client, cache, reference, digest, *size, events).await?
                        || fetched_manifests.contains(digest);
                if let Ok(mut r) = report.lock() {
                    if downloaded {
                        r.downloaded_blobs += 1;
                        r.downloaded_bytes += size;
                    } else {
                        r.cached_blobs += 1;
                        r.cached_bytes += size;
                    }
                }
                if let Ok(mut d) = downloaded_by_digest.lock() {
                    d.insert(digest.clone(), downloaded);
                }
                Ok::<(), BuildError>(())
            }
        })
        .buffer_unordered(jobs.max(1))
        .try_collect::<()>()
        .await?;
    let downloaded_by_digest = downloaded_by_digest.into_inner().unwrap_or_default();
    for content in &contents {
        let bytes = content.blobs.iter().map(|(_, s)| s).sum();
        let downloaded = content
            .blobs
            .iter()
            .filter(|(d, _)| downloaded_by_digest.get(d).copied().unwrap_or(false))
            .map(|(_, s)| s)
            .sum();
        events.event(BuildEvent::ImageFetched {
            image: content.reference.to_string(),
            blobs: content.blobs.len(),
            bytes,
            downloaded,
        });
    }
    Ok((contents, report.into_inner().unwrap_or_default()))
}

/// Fails when the manifest `digest` of `image` is `actual` bytes, not the `declared` bytes
/// the lock says (a hand-edited lock), before anything is fetched on the lock's word.
fn check_size(image: &str, digest: &Digest, declared: u64, actual: u64) -> Result<(), BuildError> {
    if declared == actual {
        return Ok(());
    }
    Err(BuildError::LockDisagrees {
        location: String::new(),
        message: format!(
            "{image}: the lock gives manifest {digest} a size of {declared} bytes; it is \
             {actual} bytes"
        ),
    })
}

/// Fetches (or finds in the cache) the image's manifests and lists its blobs; a lock entry
/// that disagrees with them is a [`BuildError::LockDisagrees`] (its location is added by the
/// caller).
async fn manifests(
    images: &ImagesFile,
    locked: &LockedImage,
    scope: Scope,
    client: &Client,
    cache: &BlobCache,
    fetched: &mut std::collections::BTreeSet<Digest>,
) -> Result<ImageContent, BuildError> {
    let image = locked.reference.to_string();
    let root = locked.root.descriptor();
    let root_bytes = manifest_bytes(images, locked, client, cache, &root.digest, fetched).await?;
    check_size(&image, &root.digest, root.size, root_bytes.len() as u64)?;
    // The bundle carries the index it points at: the registry's, or the filtered one alone
    // (the original would reference manifests the bundle does not carry).
    let mut blobs = Vec::new();
    let mut bundled_root = root.clone();
    if locked.filtered_index.is_none() {
        blobs.push((root.digest.clone(), root.size));
    }
    if let Some(filtered) = &locked.filtered_index {
        let keep: Vec<Digest> = locked
            .platforms
            .iter()
            .map(|p| p.manifest.digest.clone())
            .collect();
        let bytes = filtered_index(&image, &root_bytes, &keep)?.unwrap_or_default();
        let digest = cache.put_bytes(&bytes)?;
        if digest != filtered.digest {
            return Err(BuildError::BadManifest {
                image,
                message: format!(
                    "the filtered index comes out as {digest}, manifests.lock says {}",
                    filtered.digest
                ),
            });
        }
        blobs.push((digest.clone(), bytes.len() as u64));
        bundled_root = Descriptor::new(root.media_type.clone(), digest, bytes.len() as u64);
    }
    for platform in &locked.platforms {
        let bytes = if platform.manifest.digest == root.digest {
            root_bytes.clone()
        } else {
            blobs.push((platform.manifest.digest.clone(), platform.manifest.size));
            manifest_bytes(
                images,
                locked,
                client,
                cache,
                &platform.manifest.digest,
                fetched,
            )
            .await?
        };
        check_size(
            &image,
            &platform.manifest.digest,
            platform.manifest.size,
            bytes.len() as u64,
        )?;
        let parsed = image_manifest(&image, &bytes)?;
        let layers: u64 = parsed.layers.iter().map(|l| l.size).sum();
        if parsed.config.digest != platform.config_digest || layers != platform.layers {
            return Err(BuildError::LockDisagrees {
                location: String::new(),
                message: format!(
                    "{image} {}: the lock pins config {} and {} bytes of layers, the manifest \
                     {} names config {} and {layers} bytes of layers",
                    platform.platform,
                    platform.config_digest,
                    platform.layers,
                    platform.manifest.digest,
                    parsed.config.digest
                ),
            });
        }
        blobs.push((parsed.config.digest, parsed.config.size));
        if scope == Scope::Everything {
            blobs.extend(parsed.layers.into_iter().map(|l| (l.digest, l.size)));
        }
    }
    blobs.sort();
    blobs.dedup();
    Ok(ImageContent {
        reference: locked.reference.clone(),
        ref_name: None,
        root: bundled_root,
        blobs,
    })
}

/// A manifest's bytes, from the cache or the registry (then cached, and added to `fetched`).
async fn manifest_bytes(
    images: &ImagesFile,
    locked: &LockedImage,
    client: &Client,
    cache: &BlobCache,
    digest: &Digest,
    fetched: &mut std::collections::BTreeSet<Digest>,
) -> Result<Vec<u8>, BuildError> {
    let path = cache.file_of(digest);
    if cache.verify(digest, None)? {
        return oci::files::read_capped(&path, oci::files::INPUT_FILE_LIMIT)
            .map_err(|e| BuildError::io(&path, e));
    }
    let pinned = Reference {
        tag: None,
        digest: Some(digest.clone()),
        ..locked.reference.clone()
    };
    let manifest = client
        .get_manifest(&pinned)
        .await
        .map_err(|source| registry_error(images, &locked.reference, source))?;
    cache.put_bytes(&manifest.bytes)?;
    fetched.insert(digest.clone());
    Ok(manifest.bytes)
}

fn registry_error(
    images: &ImagesFile,
    reference: &Reference,
    source: registry::RegistryError,
) -> BuildError {
    let location = images
        .images
        .iter()
        .find(|s| &s.reference == reference)
        .map_or_else(
            || images.path.display().to_string(),
            |s| images.location_of(s).to_string(),
        );
    BuildError::Registry {
        location,
        image: reference.to_string(),
        source: Box::new(source),
    }
}

/// Makes sure blob `digest` is in the cache with its size (its content is checked as it is
/// packed); returns whether it had to be downloaded.
pub(super) async fn fetch_blob(
    images: &ImagesFile,
    client: &Client,
    cache: &BlobCache,
    reference: &Reference,
    digest: &Digest,
    size: u64,
    events: &dyn BuildEvents,
) -> Result<bool, BuildError> {
    let check = {
        let (cache, digest) = (cache.clone(), digest.clone());
        tokio::task::spawn_blocking(move || cache.present(&digest, size))
    };
    let cached = check.await.map_err(|e| BuildError::Io {
        path: cache.root().display().to_string(),
        source: std::io::Error::other(e),
    })??;
    if cached {
        events.event(BuildEvent::Progress { bytes: size });
        return Ok(false);
    }
    let mut pending = cache.pending(digest)?;
    let std_file = pending
        .file()
        .try_clone()
        .map_err(|e| BuildError::io(pending.path(), e))?;
    let mut file = tokio::fs::File::from_std(std_file);
    let reported = std::sync::atomic::AtomicU64::new(0);
    client
        .get_blob(reference, digest, Some(size), &mut file, &|total| {
            let before = reported.swap(total, std::sync::atomic::Ordering::Relaxed);
            if total > before {
                events.event(BuildEvent::Progress {
                    bytes: total - before,
                });
            }
        })
        .await
        .map_err(|source| registry_error(images, reference, source))?;
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(|e| BuildError::io(pending.path(), e))?;
    drop(file);
    tokio::task::spawn_blocking(move || pending.commit_checked(false))
        .await
        .map_err(|e| BuildError::Io {
            path: digest.to_string(),
            source: std::io::Error::other(e),
        })??;
    Ok(true)
}
