//! The in-memory catalog: which repository names the bundle's images answer to, their tags,
//! and which manifests and blobs belong to each, built once from the bundle's `index.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use oci::layout::REF_NAME;
use oci::{Digest, Manifest, Reference};

use super::ServeError;
use crate::layout::{holds, read_index, read_manifest};

/// A manifest or index the bundle can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    /// `sha256:<hex>`.
    pub digest: String,
    /// The manifest's own `mediaType` (for a root without one, its descriptor's).
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
}

/// One repository name and what it serves.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    /// Tag to the root manifest's digest.
    pub tags: BTreeMap<String, String>,
    /// Every manifest and index of the repository's images, by digest.
    pub manifests: HashMap<String, ManifestEntry>,
    /// Every blob (configs, layers, and the manifests themselves) by digest.
    pub blobs: BTreeSet<String>,
}

/// Every repository name the bundle answers to.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Repository name (with and without the registry host) to its content.
    pub repositories: BTreeMap<String, Repository>,
    /// Images (tagged descriptors) in `index.json`.
    pub images: usize,
    /// Distinct `repository:tag` pairs (without the registry host).
    pub tags: usize,
}

impl Catalog {
    /// Builds the catalog from the bundle's `index.json`. Fails when two images claim the same
    /// `repository:tag` or a tagged manifest is missing from the bundle.
    pub fn build<S: ReadAt>(bundle: &Bundle<S>) -> Result<Catalog, ServeError> {
        let left =
            bundle_file::external::read(bundle).map_err(|e| ServeError::Catalog(e.to_string()))?;
        if !left.is_empty() {
            return Err(ServeError::Catalog(format!(
                "a partial bundle (an update or a delta) cannot be served alone: its images name \
                 {} blobs it leaves to the site's registry; load it with `installer load`, or \
                 serve a full bundle",
                left.len()
            )));
        }
        let index = read_index(bundle)?;
        let mut catalog = Catalog::default();
        // (name, tag) -> the reference that claimed it.
        let mut claimed: HashMap<(String, String), String> = HashMap::new();
        for descriptor in &index.manifests {
            let Some(ref_name) = descriptor.annotation(REF_NAME) else {
                continue;
            };
            let reference = Reference::parse(ref_name).map_err(|e| {
                ServeError::Catalog(format!("index.json: bad {REF_NAME} {ref_name:?}: {e}"))
            })?;
            let digest = &descriptor.digest;
            let mut repo = Repository::default();
            walk(bundle, digest, &descriptor.media_type, &mut repo, 0).map_err(|e| {
                ServeError::Image {
                    image: ref_name.to_string(),
                    source: Box::new(e),
                }
            })?;
            if let Some(pinned) = &reference.digest {
                if pinned != digest {
                    return Err(ServeError::Catalog(format!(
                        "index.json: {ref_name} is pinned to a different digest than {digest}"
                    )));
                }
            }
            let tag = reference.tag.clone();
            if let Some(tag) = &tag {
                repo.tags.insert(tag.clone(), digest.to_string());
                catalog.tags += 1;
            }
            catalog.images += 1;
            for name in [reference.repository.clone(), reference.name()] {
                if let Some(tag) = &tag {
                    let key = (name.clone(), tag.clone());
                    if let Some(other) = claimed.insert(key, ref_name.to_string()) {
                        return Err(ServeError::Catalog(format!(
                            "two images claim {name}:{tag}: {other} and {ref_name}; \
                             refusing to serve an ambiguous tag"
                        )));
                    }
                }
                let entry = catalog.repositories.entry(name).or_default();
                entry.tags.extend(repo.tags.clone());
                entry.manifests.extend(repo.manifests.clone());
                entry.blobs.extend(repo.blobs.iter().cloned());
            }
        }
        Ok(catalog)
    }

    /// Repository names in lexical order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.repositories.keys().map(String::as_str)
    }
}

/// Records the manifest `digest` and everything under it that the bundle holds.
fn walk<S: ReadAt>(
    bundle: &Bundle<S>,
    digest: &Digest,
    declared: &str,
    repo: &mut Repository,
    depth: usize,
) -> Result<(), ServeError> {
    if depth > 8 {
        return Err(ServeError::Catalog(format!(
            "manifests nest too deeply at {digest}"
        )));
    }
    if repo.manifests.contains_key(digest.as_str()) {
        return Ok(());
    }
    let read = read_manifest(bundle, digest, declared)?;
    repo.manifests.insert(
        digest.to_string(),
        ManifestEntry {
            digest: digest.to_string(),
            media_type: read.media_type,
            size: read.bytes.len() as u64,
        },
    );
    repo.blobs.insert(digest.to_string());
    match read.manifest {
        Manifest::Index(index) => {
            for child in &index.manifests {
                // A filtered bundle may leave some platforms out: serve what it holds.
                if holds(bundle, &child.digest) {
                    walk(bundle, &child.digest, &child.media_type, repo, depth + 1)?;
                }
            }
        }
        Manifest::Image(manifest) => {
            repo.blobs
                .extend(manifest.blobs().map(|blob| blob.digest.to_string()));
        }
    }
    Ok(())
}
