//! Delta bundles (`bundle build --since OLD_BUNDLE`): what the old bundle gave the site, and
//! which of a new build's blobs and tools the site therefore already has.
//!
//! A blob is left out only when every image of the new bundle that names it is in a
//! repository where the old bundle put it (registries keep blobs per repository, and
//! `installer load` checks each left-out blob in the repository it loads the image into).
//! Manifests and indexes are always carried: the load pushes them to set the tags. Configs
//! and layers the old bundle carried (or itself left to the site, when it was a delta) go to
//! `external-blobs.json`; tools whose path and SHA-256 are unchanged are left out; the chart
//! repository and the CA are always carried (small, and `installer deploy` reads them from the
//! bundle it is given).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bundle_file::archive::ReadAt;
use bundle_file::external::{self, Base, ExternalBlob};
use bundle_file::Bundle;
use oci::layout::{INDEX_FILE, REF_NAME};
use oci::{blob_path, media, Digest, ImageIndex, Manifest, Reference};

use super::fetch::ImageContent;
use super::BuildError;

/// Indexes nested deeper than this in the old bundle are refused.
const MAX_DEPTH: usize = 2;

/// What the old bundle gave the site.
#[derive(Debug, Clone)]
pub struct BaseContents {
    /// The old bundle.
    pub base: Base,
    /// Config and layer digests, per repository (as the load names it).
    pub blobs: BTreeMap<String, BTreeSet<Digest>>,
    /// Member path to SHA-256 (hex) of every member of the old bundle.
    pub members: BTreeMap<String, String>,
}

impl BaseContents {
    /// Reads the old bundle at `path`: its name, version and bundle.json digest, every
    /// config and layer its images name (carried or left to the site), and its members.
    pub fn read(path: &Path) -> Result<BaseContents, BuildError> {
        let bundle = Bundle::open_path(path).map_err(|e| base_error(path, e.to_string()))?;
        read_from(&bundle).map_err(|message| base_error(path, message))
    }

    /// Whether the old bundle put `digest` into `repository`.
    fn has(&self, repository: &str, digest: &Digest) -> bool {
        self.blobs
            .get(repository)
            .is_some_and(|set| set.contains(digest))
    }

    /// Whether the old bundle carried member `path` with this SHA-256.
    pub fn has_member(&self, path: &str, sha256: &str) -> bool {
        self.members
            .get(path)
            .is_some_and(|known| known.eq_ignore_ascii_case(sha256))
    }
}

fn base_error(path: &Path, message: String) -> BuildError {
    BuildError::Base {
        path: path.display().to_string(),
        message,
    }
}

fn read_from<S: ReadAt>(bundle: &Bundle<S>) -> Result<BaseContents, String> {
    let toc = bundle.toc();
    let mut contents = BaseContents {
        base: Base {
            name: toc.name.clone(),
            version: toc.version.clone(),
            bundle_json_sha256: bundle.toc_sha256(),
        },
        members: toc
            .members
            .iter()
            .map(|m| (m.path.clone(), m.sha256.clone()))
            .collect(),
        blobs: BTreeMap::new(),
    };
    let index_bytes = bundle
        .read_small(INDEX_FILE)
        .map_err(|e| format!("{INDEX_FILE}: {e}"))?;
    let index = ImageIndex::from_json(&index_bytes).map_err(|e| format!("{INDEX_FILE}: {e}"))?;
    for entry in &index.manifests {
        let name = entry
            .annotation(REF_NAME)
            .ok_or_else(|| format!("{INDEX_FILE} entry {} has no {REF_NAME}", entry.digest))?;
        let repository = repository_of(name)?;
        let set = contents.blobs.entry(repository).or_default();
        walk(bundle, &entry.digest, &entry.media_type, set, 0)
            .map_err(|e| format!("image {name}: {e}"))?;
    }
    let left = external::read(bundle).map_err(|e| e.to_string())?;
    for blob in left {
        contents
            .blobs
            .entry(repository_of(&blob.image)?)
            .or_default()
            .insert(blob.digest);
    }
    Ok(contents)
}

/// Adds the configs and layers manifest `digest` names to `set`.
fn walk<S: ReadAt>(
    bundle: &Bundle<S>,
    digest: &Digest,
    declared: &str,
    set: &mut BTreeSet<Digest>,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("indexes nested too deeply at {digest}"));
    }
    let bytes = bundle
        .read_small(&blob_path(digest))
        .map_err(|e| format!("manifest {digest}: {e}"))?;
    let (_, manifest) =
        Manifest::parse(declared, &bytes).map_err(|e| format!("manifest {digest}: {e}"))?;
    match manifest {
        Manifest::Index(index) => {
            for child in &index.manifests {
                if media::is_index(&child.media_type) || media::is_manifest(&child.media_type) {
                    walk(bundle, &child.digest, &child.media_type, set, depth + 1)?;
                }
            }
        }
        Manifest::Image(image) => set.extend(image.blobs().map(|b| b.digest.clone())),
    }
    Ok(())
}

/// The repository an image of layout name `name` is loaded into (without registry).
fn repository_of(name: &str) -> Result<String, String> {
    Reference::parse(name)
        .map(|r| r.repository)
        .map_err(|e| format!("image reference {name:?}: {e}"))
}

/// The layout name of `content`, as `index.json` and the load see it.
fn layout_name(content: &ImageContent) -> String {
    content
        .ref_name
        .clone()
        .unwrap_or_else(|| content.reference.to_string())
}

/// The blobs of `contents` the site has from the old bundle: each with its size and the
/// first image naming it. A blob counts only if every image naming it is in a repository the
/// old bundle put it into. Manifests never count: the old bundle's are not in
/// [`BaseContents::blobs`].
pub fn left_to_site(
    contents: &[ImageContent],
    base: &BaseContents,
) -> Result<BTreeMap<Digest, ExternalBlob>, BuildError> {
    let mut left: BTreeMap<Digest, ExternalBlob> = BTreeMap::new();
    let mut carried: BTreeSet<Digest> = BTreeSet::new();
    for content in contents {
        let name = layout_name(content);
        let repository = repository_of(&name).map_err(|message| BuildError::BadManifest {
            image: name.clone(),
            message,
        })?;
        for (digest, size) in &content.blobs {
            if !base.has(&repository, digest) {
                carried.insert(digest.clone());
                continue;
            }
            left.entry(digest.clone()).or_insert_with(|| ExternalBlob {
                digest: digest.clone(),
                size: *size,
                image: name.clone(),
            });
        }
    }
    left.retain(|digest, _| !carried.contains(digest));
    Ok(left)
}

/// `contents` without the blobs in `left`.
pub fn without(contents: &mut [ImageContent], left: &BTreeMap<Digest, ExternalBlob>) {
    for content in contents {
        content
            .blobs
            .retain(|(digest, _)| !left.contains_key(digest));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci::Descriptor;

    fn content(name: &str, blobs: &[&[u8]]) -> ImageContent {
        let blobs: Vec<(Digest, u64)> = blobs
            .iter()
            .map(|b| (Digest::of(b), b.len() as u64))
            .collect();
        ImageContent {
            reference: Reference::parse(name).unwrap(),
            ref_name: None,
            root: Descriptor::new(media::OCI_MANIFEST, blobs[0].0.clone(), 1),
            blobs,
        }
    }

    fn base(repository: &str, blobs: &[&[u8]]) -> BaseContents {
        let mut base = BaseContents {
            base: Base {
                name: "messenger".into(),
                version: "1.0".into(),
                bundle_json_sha256: "0".repeat(64),
            },
            blobs: BTreeMap::new(),
            members: BTreeMap::new(),
        };
        base.blobs.insert(
            repository.into(),
            blobs.iter().map(|b| Digest::of(b)).collect(),
        );
        base
    }

    #[test]
    fn only_blobs_the_old_bundle_put_in_the_same_repository_are_left_out() {
        let new = [
            content(
                "registry.example/team/app:v2",
                &[b"manifest", b"layer", b"top"],
            ),
            content("registry.example/team/other:v1", &[b"m2", b"top"]),
        ];
        let old = base("team/app", &[b"layer", b"top"]);
        let left = left_to_site(&new, &old).unwrap();
        // `layer` is in team/app already; `top` is also needed in team/other, which lacks it.
        assert_eq!(left.keys().collect::<Vec<_>>(), [&Digest::of(b"layer")]);
        assert_eq!(
            left[&Digest::of(b"layer")].image,
            "registry.example/team/app:v2"
        );
    }
}
