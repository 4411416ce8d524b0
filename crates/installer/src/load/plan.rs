//! What to push, and in which order, from the bundle's `index.json` and the manifests: per
//! image, its blobs, then its platform manifests (by digest), then its root (an index or a
//! manifest) by its tag, last, so an interrupted load never leaves a tag pointing at an
//! incomplete image.

use std::collections::BTreeMap;

use bundle_file::archive::ReadAt as Source;
use bundle_file::external;
use bundle_file::Bundle;
use oci::layout::{blob_path, REF_NAME};
use oci::{Digest, Manifest, Reference};

use super::error::{LoadError, Within as _};
use crate::layout::{holds, read_index, read_manifest};

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

/// The target reference of a bundle reference: the repository without the source registry,
/// under the target registry and prefix, with the source's tag.
pub fn target_reference(source: &str, target: &Target) -> Result<Reference, LoadError> {
    let parsed = Reference::parse(source).within(|| format!("image reference {source:?}"))?;
    let repository = match &target.prefix {
        Some(prefix) => format!("{prefix}/{}", parsed.repository),
        None => parsed.repository.clone(),
    };
    let text = match &parsed.tag {
        Some(tag) => format!("{}/{repository}:{tag}", target.registry),
        None => format!("{}/{repository}", target.registry),
    };
    let mut reference = Reference::parse(&text).within(|| format!("target reference {text:?}"))?;
    reference.tag = parsed.tag.clone();
    reference.digest = None;
    Ok(reference)
}

/// The plan for every image of the bundle's `index.json`, in its order.
pub fn plan<S: Source>(bundle: &Bundle<S>, target: &Target) -> Result<Vec<ImagePlan>, LoadError> {
    let index = read_index(bundle)?;
    let external: BTreeMap<Digest, (u64, String)> = external::read(bundle)?
        .into_iter()
        .map(|e| (e.digest, (e.size, e.image)))
        .collect();
    let mut plans = Vec::new();
    for descriptor in index.manifests {
        let source = descriptor
            .annotation(REF_NAME)
            .ok_or_else(|| {
                LoadError::Unloadable(format!(
                    "index.json entry {} has no {REF_NAME}",
                    descriptor.digest
                ))
            })?
            .to_string();
        let target_ref = target_reference(&source, target)?;
        let mut plan = ImagePlan {
            source,
            target: target_ref,
            blobs: Vec::new(),
            manifests: Vec::new(),
            external: Vec::new(),
        };
        add_manifest(
            bundle,
            &descriptor.digest,
            &descriptor.media_type,
            &external,
            &mut plan,
            0,
        )
        .within(|| format!("image {}", plan.source))?;
        plans.push(plan);
    }
    Ok(plans)
}

/// Adds manifest `digest` (children first) to the plan's manifests and its blobs to its
/// blobs, or to its external blobs when the bundle lists them in [`EXTERNAL_BLOBS`].
fn add_manifest<S: Source>(
    bundle: &Bundle<S>,
    digest: &Digest,
    declared_type: &str,
    external: &BTreeMap<Digest, (u64, String)>,
    plan: &mut ImagePlan,
    depth: usize,
) -> Result<(), LoadError> {
    let unloadable = |text: String| Err(LoadError::Unloadable(text));
    if depth > 2 {
        return unloadable(format!("indexes nested too deeply at {digest}"));
    }
    if plan.manifests.iter().any(|m| m.digest == *digest) {
        return Ok(());
    }
    let read = read_manifest(bundle, digest, declared_type)?;
    match &read.manifest {
        Manifest::Index(index) => {
            for child in &index.manifests {
                if !holds(bundle, &child.digest) {
                    return unloadable(format!(
                        "index {digest} names manifest {}, which the bundle lacks",
                        child.digest
                    ));
                }
                add_manifest(
                    bundle,
                    &child.digest,
                    &child.media_type,
                    external,
                    plan,
                    depth + 1,
                )?;
            }
        }
        Manifest::Image(manifest) => {
            for blob in manifest.blobs() {
                let Some(member) = bundle.member(&blob_path(&blob.digest)) else {
                    match external.get(&blob.digest) {
                        Some((size, image)) if *size == blob.size => {
                            if !plan.external.iter().any(|(d, _, _)| *d == blob.digest) {
                                plan.external
                                    .push((blob.digest.clone(), *size, image.clone()));
                            }
                            continue;
                        }
                        _ => {
                            return unloadable(format!(
                                "manifest {digest} names blob {}, which the bundle lacks",
                                blob.digest
                            ))
                        }
                    }
                };
                if member.size != blob.size {
                    return unloadable(format!(
                        "blob {} is {} bytes in the bundle, {} in manifest {digest}",
                        blob.digest, member.size, blob.size
                    ));
                }
                if !plan.blobs.iter().any(|(d, _)| *d == blob.digest) {
                    plan.blobs.push((blob.digest.clone(), blob.size));
                }
            }
        }
    }
    plan.manifests.push(ManifestPush {
        digest: read.digest,
        media_type: read.media_type,
        bytes: read.bytes,
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
