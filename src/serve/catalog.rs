//! The in-memory catalog: which repository names the bundle's images answer to, their tags,
//! and which manifests and blobs belong to each, built once from the bundle's `index.json`.

use crate::archive::ReadAt;
use crate::container::Bundle;
use crate::registry::media;
use crate::registry::Reference;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

/// The annotation carrying an image's full reference in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Largest `index.json` or manifest read into memory.
pub const MAX_MANIFEST_LEN: u64 = 16 << 20;

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

/// The member path of a `sha256:<hex>` digest, if the digest is well-formed.
pub fn blob_path(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Some(format!("blobs/sha256/{hex}"))
    } else {
        None
    }
}

/// Reads a whole (small) member.
pub fn read_small<S: ReadAt>(bundle: &Bundle<S>, path: &str) -> Result<Vec<u8>> {
    let member = bundle
        .member(path)
        .with_context(|| format!("the bundle has no {path}"))?;
    if member.size > MAX_MANIFEST_LEN {
        bail!("{path} is {} bytes, too large for a manifest", member.size);
    }
    let mut bytes = Vec::with_capacity(member.size as usize);
    bundle
        .member_reader(member, 0, member.size)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {path}"))?;
    Ok(bytes)
}

impl Catalog {
    /// Builds the catalog from the bundle's `index.json`. Fails when two images claim the same
    /// `repository:tag` or a tagged manifest is missing from the bundle.
    pub fn build<S: ReadAt>(bundle: &Bundle<S>) -> Result<Catalog> {
        let index: serde_json::Value = serde_json::from_slice(&read_small(bundle, "index.json")?)
            .context("index.json is not JSON")?;
        let descriptors = index["manifests"]
            .as_array()
            .context("index.json has no manifests array")?;
        let mut catalog = Catalog::default();
        // (name, tag) -> the reference that claimed it.
        let mut claimed: HashMap<(String, String), String> = HashMap::new();
        for descriptor in descriptors {
            let Some(ref_name) = descriptor["annotations"][REF_NAME].as_str() else {
                continue;
            };
            let reference = Reference::parse(ref_name)
                .with_context(|| format!("index.json: bad {REF_NAME} {ref_name:?}"))?;
            let digest = descriptor["digest"]
                .as_str()
                .with_context(|| format!("index.json: {ref_name} has no digest"))?
                .to_string();
            let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
            let mut repo = Repository::default();
            walk(bundle, &digest, Some(media_type), &mut repo, 0)
                .with_context(|| format!("image {ref_name}"))?;
            if let Some(pinned) = &reference.digest {
                if pinned.as_str() != digest {
                    bail!("index.json: {ref_name} is pinned to a different digest than {digest}");
                }
            }
            let tag = reference.tag.clone();
            if let Some(tag) = &tag {
                repo.tags.insert(tag.clone(), digest.clone());
                catalog.tags += 1;
            }
            catalog.images += 1;
            for name in [reference.repository.clone(), reference.name()] {
                if let Some(tag) = &tag {
                    let key = (name.clone(), tag.clone());
                    if let Some(other) = claimed.insert(key, ref_name.to_string()) {
                        bail!(
                            "two images claim {name}:{tag}: {other} and {ref_name}; \
                             refusing to serve an ambiguous tag"
                        );
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
    digest: &str,
    descriptor_type: Option<&str>,
    repo: &mut Repository,
    depth: usize,
) -> Result<()> {
    if depth > 8 {
        bail!("manifests nest too deeply at {digest}");
    }
    if repo.manifests.contains_key(digest) {
        return Ok(());
    }
    let path = blob_path(digest).with_context(|| format!("unsupported digest {digest}"))?;
    let bytes = read_small(bundle, &path)?;
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{digest} is not JSON"))?;
    let media_type = doc["mediaType"]
        .as_str()
        .or(descriptor_type)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .or_else(|| {
            // Neither says: an index has `manifests`, an image manifest `config`.
            if doc.get("manifests").is_some() {
                Some("application/vnd.oci.image.index.v1+json".to_string())
            } else if doc.get("config").is_some() {
                Some("application/vnd.oci.image.manifest.v1+json".to_string())
            } else {
                None
            }
        })
        .with_context(|| format!("{digest} has no mediaType"))?;
    repo.manifests.insert(
        digest.to_string(),
        ManifestEntry {
            digest: digest.to_string(),
            media_type: media_type.clone(),
            size: bytes.len() as u64,
        },
    );
    repo.blobs.insert(digest.to_string());
    if media::is_index(&media_type) || doc.get("manifests").is_some() {
        for child in doc["manifests"].as_array().into_iter().flatten() {
            let Some(child_digest) = child["digest"].as_str() else {
                continue;
            };
            // A filtered bundle may leave some platforms out: serve what it holds.
            let held = blob_path(child_digest).is_some_and(|p| bundle.member(&p).is_some());
            if held {
                walk(
                    bundle,
                    child_digest,
                    child["mediaType"].as_str(),
                    repo,
                    depth + 1,
                )?;
            }
        }
    } else {
        let config = doc["config"]["digest"].as_str();
        let layers = doc["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str());
        for blob in config.into_iter().chain(layers) {
            repo.blobs.insert(blob.to_string());
        }
    }
    Ok(())
}
