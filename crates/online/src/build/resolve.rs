//! `bundle lock`: resolving every image of images.toml to digests at its registry: the index
//! (or single manifest) the reference points to, and one manifest per requested platform.

use super::manifests::{filtered_index, image_index, image_manifest};
use super::BuildError;
use crate::spec::{FilteredIndex, ImageSpec, ImagesFile, Lock, LockedImage, LockedPlatform, Root};
use futures_util::stream::{self, StreamExt as _, TryStreamExt as _};
use oci::{media, Descriptor, Reference};
use registry::Client;

/// Resolves the images of `images` into a lock. Images not selected by `refresh` are taken
/// from `previous` when it has them unchanged; the others are asked of their registries, with
/// up to `jobs` images in flight.
pub async fn resolve(
    images: &ImagesFile,
    previous: Option<&Lock>,
    refresh: &dyn Fn(&ImageSpec) -> bool,
    client: &Client,
    jobs: usize,
    lock_path: &std::path::Path,
) -> Result<Lock, BuildError> {
    let resolved: Vec<LockedImage> = stream::iter(images.images.iter())
        .map(|spec| async move {
            let kept = previous
                .filter(|_| !refresh(spec))
                .and_then(|lock| lock.image(&spec.reference))
                .filter(|locked| locked.platform_list() == sorted(&spec.platforms));
            match kept {
                Some(locked) => Ok(locked.clone()),
                None => resolve_image(images, spec, client).await,
            }
        })
        .buffered(jobs.max(1))
        .try_collect()
        .await?;
    let mut lock = Lock::new(lock_path);
    lock.resolved_at = previous.and_then(|p| p.resolved_at.clone());
    if let Some(previous) = previous {
        lock.charts = previous.charts.clone();
        lock.clamav = previous.clamav.clone();
        lock.tools = previous.tools.clone();
    }
    // Unchanged images keep the previous lock as it was (with its `line`s, which the
    // resolved entries lack), so callers see no change and resolved_at stays.
    match previous.filter(|p| same_images(&p.images, &resolved)) {
        Some(previous) => lock.images = previous.images.clone(),
        None => {
            lock.resolved_at = Some(oci::time::format_rfc3339(oci::time::now())?);
            lock.images = resolved;
            lock.images.sort_by(|a, b| a.reference.cmp(&b.reference));
        }
    }
    if lock.resolved_at.is_none() {
        lock.resolved_at = Some(oci::time::format_rfc3339(oci::time::now())?);
    }
    Ok(lock)
}

/// Whether two lists hold the same images, whatever their order and lines in a file.
fn same_images(a: &[LockedImage], b: &[LockedImage]) -> bool {
    let normal = |list: &[LockedImage]| {
        let mut list: Vec<LockedImage> = list
            .iter()
            .map(|i| LockedImage {
                line: 0,
                ..i.clone()
            })
            .collect();
        list.sort_by_cached_key(|i| i.reference.to_string());
        list
    };
    normal(a) == normal(b)
}

fn sorted(platforms: &[oci::Platform]) -> Vec<oci::Platform> {
    let mut list = platforms.to_vec();
    list.sort();
    list
}

/// Resolves one image.
pub async fn resolve_image(
    images: &ImagesFile,
    spec: &ImageSpec,
    client: &Client,
) -> Result<LockedImage, BuildError> {
    let location = images.location_of(spec).to_string();
    let image = spec.reference.to_string();
    let registry = |source| BuildError::Registry {
        location: location.clone(),
        image: image.clone(),
        source: Box::new(source),
    };
    let root = client
        .get_manifest(&spec.reference)
        .await
        .map_err(registry)?;
    let root_descriptor = Descriptor::new(
        root.media_type.clone(),
        root.digest.clone(),
        root.bytes.len() as u64,
    );
    let pinned = |digest: &oci::Digest| Reference {
        tag: None,
        digest: Some(digest.clone()),
        ..spec.reference.clone()
    };
    let mut platforms = Vec::new();
    if media::is_index(&root.media_type) {
        let entries = image_index(&image, &root.bytes)?.manifests;
        for wanted in &spec.platforms {
            let entry = entries
                .iter()
                .find(|e| e.platform.as_ref().is_some_and(|p| p.serves(wanted)))
                .ok_or_else(|| BuildError::MissingPlatform {
                    location: location.clone(),
                    image: image.clone(),
                    platform: wanted.to_string(),
                    available: available(&entries),
                })?;
            let manifest = client
                .get_manifest(&pinned(&entry.digest))
                .await
                .map_err(registry)?;
            let parsed = image_manifest(&image, &manifest.bytes)?;
            platforms.push(LockedPlatform {
                platform: wanted.clone(),
                manifest: Descriptor::new(
                    manifest.media_type,
                    manifest.digest,
                    manifest.bytes.len() as u64,
                ),
                config_digest: parsed.config.digest,
                layers: parsed.layers.iter().map(|l| l.size).sum(),
            });
        }
        let keep: Vec<_> = platforms
            .iter()
            .map(|p| p.manifest.digest.clone())
            .collect();
        let filtered = filtered_index(&image, &root.bytes, &keep)?.map(|bytes| FilteredIndex {
            digest: oci::Digest::of(&bytes),
            size: bytes.len() as u64,
        });
        return Ok(LockedImage {
            reference: spec.reference.clone(),
            root: Root::Index(root_descriptor),
            filtered_index: filtered,
            platforms,
            line: 0,
        });
    }
    // A single manifest: it serves exactly one platform, named in its config.
    let parsed = image_manifest(&image, &root.bytes)?;
    let mut config = Vec::new();
    client
        .get_blob(
            &spec.reference,
            &parsed.config.digest,
            Some(parsed.config.size),
            &mut config,
            &|_| {},
        )
        .await
        .map_err(registry)?;
    let offered = config_platform(&image, &config)?;
    if spec.platforms.len() != 1 || !offered.serves(&spec.platforms[0]) {
        let missing = spec
            .platforms
            .iter()
            .find(|p| !offered.serves(p))
            .map_or_else(|| spec.platforms[0].to_string(), ToString::to_string);
        return Err(BuildError::MissingPlatform {
            location,
            image,
            platform: missing,
            available: format!("only {offered} (a single-platform image)"),
        });
    }
    platforms.push(LockedPlatform {
        platform: spec.platforms[0].clone(),
        manifest: root_descriptor.clone(),
        config_digest: parsed.config.digest,
        layers: parsed.layers.iter().map(|l| l.size).sum(),
    });
    Ok(LockedImage {
        reference: spec.reference.clone(),
        root: Root::Manifest(root_descriptor),
        filtered_index: None,
        platforms,
        line: 0,
    })
}

fn available(entries: &[Descriptor]) -> String {
    let list: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .filter(|p| p.os != "unknown")
        .map(ToString::to_string)
        .collect();
    if list.is_empty() {
        "no platforms".into()
    } else {
        list.join(", ")
    }
}

fn config_platform(image: &str, config: &[u8]) -> Result<oci::Platform, BuildError> {
    let value: serde_json::Value =
        serde_json::from_slice(config).map_err(|e| BuildError::BadManifest {
            image: image.to_string(),
            message: format!("image config is not JSON: {e}"),
        })?;
    Ok(oci::Platform {
        os: value["os"].as_str().unwrap_or("unknown").to_string(),
        architecture: value["architecture"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        variant: value["variant"].as_str().map(str::to_string),
    })
}
