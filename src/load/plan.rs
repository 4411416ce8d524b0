//! What to push, and in which order, from the bundle's `index.json` and the manifests: per
//! image, its blobs, then its platform manifests, then its index (all by digest), and the tag
//! last, so an interrupted load never leaves a tag pointing at an incomplete image.

use std::collections::BTreeMap;
use std::io::Read as _;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;

use crate::archive::ReadAt as Source;
use crate::build::stage::REF_NAME;
use crate::container::Bundle;
use crate::registry::{media, Digest, Reference};

/// Where images go: `HOST[:PORT]` and an optional repository prefix.
#[derive(Debug, Clone)]
pub struct Target {
    /// The registry, `host[:port]`.
    pub registry: String,
    /// Path put before every repository (`mirror/x`), without slashes at either end.
    pub prefix: Option<String>,
}

/// One manifest or index to push by digest.
#[derive(Debug, Clone)]
pub struct ManifestPush {
    /// Its digest.
    pub digest: Digest,
    /// Its media type, sent as `Content-Type`.
    pub media_type: String,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
}

/// One image: where it goes and what to push, in order.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// The reference in the bundle (`docker.io/matrixdotorg/synapse:v1.142.0`).
    pub source: String,
    /// The target repository reference, with the tag (if the source had one) and no digest.
    pub target: Reference,
    /// Every blob (configs and layers) of every platform manifest, deduplicated: digest and
    /// size.
    pub blobs: Vec<(Digest, u64)>,
    /// Manifests by digest, platform manifests before the index; the root is last.
    pub manifests: Vec<ManifestPush>,
    /// Blobs the manifests name that the bundle does not carry (an update bundle's base
    /// layers): digest, size, and the image the target must already hold them for.
    pub external: Vec<(Digest, u64, String)>,
}

impl ImagePlan {
    /// The root manifest or index (what the tag points at).
    pub fn root(&self) -> &ManifestPush {
        // `plan` never makes an image without manifests.
        &self.manifests[self.manifests.len() - 1]
    }
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The path of blob `digest` in the bundle.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Reads a whole member (for `index.json` and manifests, which are small).
pub fn read_member<S: Source>(bundle: &Bundle<S>, path: &str) -> Result<Vec<u8>> {
    let member = bundle
        .member(path)
        .with_context(|| format!("the bundle has no {path}"))?;
    if member.size > 64 << 20 {
        bail!(
            "{path} is too large to be a manifest ({} bytes)",
            member.size
        );
    }
    let mut bytes = Vec::with_capacity(member.size as usize);
    bundle
        .member_reader(member, 0, member.size)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {path} from the bundle"))?;
    Ok(bytes)
}

/// The target reference of a bundle reference: the repository without the source registry,
/// under the target registry and prefix, with the source's tag.
pub fn target_reference(source: &str, target: &Target) -> Result<Reference> {
    let parsed = Reference::parse(source).with_context(|| format!("image reference {source:?}"))?;
    let repository = match &target.prefix {
        Some(prefix) => format!("{prefix}/{}", parsed.repository),
        None => parsed.repository.clone(),
    };
    let text = match &parsed.tag {
        Some(tag) => format!("{}/{repository}:{tag}", target.registry),
        None => format!("{}/{repository}", target.registry),
    };
    let mut reference =
        Reference::parse(&text).with_context(|| format!("target reference {text:?}"))?;
    reference.tag = parsed.tag.clone();
    reference.digest = None;
    Ok(reference)
}

/// The plan for every image of the bundle's `index.json`, in its order.
pub fn plan<S: Source>(bundle: &Bundle<S>, target: &Target) -> Result<Vec<ImagePlan>> {
    let index: Index = serde_json::from_slice(&read_member(bundle, "index.json")?)
        .context("index.json of the bundle is not an OCI index")?;
    let external = external_blobs(bundle)?;
    let mut plans = Vec::new();
    for descriptor in index.manifests {
        let source = descriptor
            .annotations
            .get(REF_NAME)
            .with_context(|| format!("index.json entry {} has no {REF_NAME}", descriptor.digest))?
            .clone();
        let target_ref = target_reference(&source, target)?;
        let root = Digest::parse(&descriptor.digest)
            .with_context(|| format!("digest of {source} in index.json"))?;
        let mut plan = ImagePlan {
            source,
            target: target_ref,
            blobs: Vec::new(),
            manifests: Vec::new(),
            external: Vec::new(),
        };
        add_manifest(
            bundle,
            &root,
            &descriptor.media_type,
            &external,
            &mut plan,
            0,
        )
        .with_context(|| format!("image {}", plan.source))?;
        plans.push(plan);
    }
    Ok(plans)
}

/// The bundle's `external-blobs.json` (see [`crate::build::EXTERNAL_BLOBS`]) by digest:
/// size and image; empty when the bundle carries every blob.
fn external_blobs<S: Source>(bundle: &Bundle<S>) -> Result<BTreeMap<Digest, (u64, String)>> {
    #[derive(Deserialize)]
    struct External {
        digest: String,
        size: u64,
        image: String,
    }
    let name = crate::build::EXTERNAL_BLOBS;
    if bundle.member(name).is_none() {
        return Ok(BTreeMap::new());
    }
    let list: Vec<External> = serde_json::from_slice(&read_member(bundle, name)?)
        .with_context(|| format!("{name} of the bundle is not a list of blobs"))?;
    list.into_iter()
        .map(|e| {
            let digest = Digest::parse(&e.digest).with_context(|| format!("digest in {name}"))?;
            Ok((digest, (e.size, e.image)))
        })
        .collect()
}

/// Adds manifest `digest` (children first) to the plan's manifests and its blobs to its
/// blobs, or to its external blobs when the bundle lists them as such.
fn add_manifest<S: Source>(
    bundle: &Bundle<S>,
    digest: &Digest,
    declared_type: &str,
    external: &BTreeMap<Digest, (u64, String)>,
    plan: &mut ImagePlan,
    depth: usize,
) -> Result<()> {
    if depth > 2 {
        bail!("indexes nested too deeply at {digest}");
    }
    if plan.manifests.iter().any(|m| m.digest == *digest) {
        return Ok(());
    }
    let bytes = read_member(bundle, &blob_path(digest))?;
    if Digest::of(&bytes) != *digest {
        bail!("manifest {digest} in the bundle does not match its digest");
    }
    #[derive(Deserialize)]
    struct Declared {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let media_type = serde_json::from_slice::<Declared>(&bytes)
        .ok()
        .and_then(|d| d.media_type)
        .unwrap_or_else(|| declared_type.to_string());
    if media::is_index(&media_type) {
        let index: Index = serde_json::from_slice(&bytes)
            .with_context(|| format!("index {digest} is not valid JSON"))?;
        for child in &index.manifests {
            let child_digest = Digest::parse(&child.digest)
                .with_context(|| format!("child digest in index {digest}"))?;
            if bundle.member(&blob_path(&child_digest)).is_none() {
                bail!("index {digest} names manifest {child_digest}, which the bundle lacks");
            }
            add_manifest(
                bundle,
                &child_digest,
                &child.media_type,
                external,
                plan,
                depth + 1,
            )?;
        }
    } else if media::is_manifest(&media_type) {
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .with_context(|| format!("manifest {digest} is not valid JSON"))?;
        for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let blob_digest = Digest::parse(&blob.digest)
                .with_context(|| format!("blob digest in manifest {digest}"))?;
            let Some(member) = bundle.member(&blob_path(&blob_digest)) else {
                match external.get(&blob_digest) {
                    Some((size, image)) if *size == blob.size => {
                        if !plan.external.iter().any(|(d, _, _)| *d == blob_digest) {
                            plan.external.push((blob_digest, *size, image.clone()));
                        }
                        continue;
                    }
                    _ => {
                        bail!("manifest {digest} names blob {blob_digest}, which the bundle lacks")
                    }
                }
            };
            if member.size != blob.size {
                bail!(
                    "blob {blob_digest} is {} bytes in the bundle, {} in manifest {digest}",
                    member.size,
                    blob.size
                );
            }
            if !plan.blobs.iter().any(|(d, _)| *d == blob_digest) {
                plan.blobs.push((blob_digest, blob.size));
            }
        }
    } else {
        bail!("{digest} has unsupported media type {media_type:?}");
    }
    plan.manifests.push(ManifestPush {
        digest: digest.clone(),
        media_type,
        bytes,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_references() {
        let plain = Target {
            registry: "reg.local:5000".into(),
            prefix: None,
        };
        let r = target_reference("docker.io/matrixdotorg/synapse:v1.142.0", &plain).unwrap();
        assert_eq!(r.registry, "reg.local:5000");
        assert_eq!(r.repository, "matrixdotorg/synapse");
        assert_eq!(r.tag.as_deref(), Some("v1.142.0"));
        let prefixed = Target {
            registry: "reg.local".into(),
            prefix: Some("mirror/x".into()),
        };
        let r = target_reference("127.0.0.1:5000/team/app:v1", &prefixed).unwrap();
        assert_eq!(r.repository, "mirror/x/team/app");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert!(r.digest.is_none());
    }
}
