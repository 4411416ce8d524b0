//! What the bundle carries, as the pinning reads it: each image's repository, tag and root
//! digest from the bundle's `index.json`, and where `installer load` put it.

use std::collections::BTreeMap;

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use oci::layout::{INDEX_FILE, REF_NAME};
use oci::{Digest, ImageIndex, Reference};

use super::PinError;
use crate::load::Target;

/// One image of the bundle: the tag it was built from (if any) and its root digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Carried {
    tag: Option<String>,
    digest: Digest,
}

/// Every image of a bundle, by registry and repository.
#[derive(Debug, Clone, Default)]
pub struct BundleImages {
    by_name: BTreeMap<(String, String), Vec<Carried>>,
}

/// Why a reference does not resolve to an image of the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCarried(pub String);

impl BundleImages {
    /// The images of the bundle's `index.json`, which is checked against the (signed)
    /// `bundle.json` first. Helm chart artifacts are not images and are left out.
    pub fn read<S: ReadAt>(bundle: &Bundle<S>) -> Result<BundleImages, PinError> {
        let bytes = bundle.read_small_checked(INDEX_FILE)?;
        let index = ImageIndex::from_json(&bytes).map_err(PinError::Index)?;
        BundleImages::from_index(&index)
    }

    /// The images an OCI `index.json` names by [`REF_NAME`].
    pub fn from_index(index: &ImageIndex) -> Result<BundleImages, PinError> {
        let chart_prefix = format!("{}/", online::chart::artifact::REPOSITORY_PREFIX);
        let mut images = BundleImages::default();
        for descriptor in &index.manifests {
            let Some(name) = descriptor.annotation(REF_NAME) else {
                return Err(PinError::Unnamed(descriptor.digest.clone()));
            };
            if name.starts_with(&chart_prefix) {
                continue;
            }
            let reference = Reference::parse(name).map_err(|e| PinError::BadName {
                name: name.to_string(),
                reason: e.reason,
            })?;
            images.add(&reference, descriptor.digest.clone());
        }
        Ok(images)
    }

    /// Records that the bundle carries `reference` as `digest`.
    pub fn add(&mut self, reference: &Reference, digest: Digest) {
        self.by_name
            .entry((reference.registry.clone(), reference.repository.clone()))
            .or_default()
            .push(Carried {
                tag: reference.tag.clone(),
                digest,
            });
    }

    /// How many images the bundle carries.
    pub fn len(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// Whether the bundle carries no image.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The tags the bundle carries of repositories whose path ends with `/suffix` (or is it).
    pub fn tags_of(&self, suffix: &str) -> Vec<&str> {
        self.by_name
            .iter()
            .filter(|((_, repository), _)| named(repository, suffix))
            .flat_map(|(_, carried)| carried.iter().filter_map(|c| c.tag.as_deref()))
            .collect()
    }

    /// The tagged references the bundle carries of repositories named `name` or ending with
    /// `/name`, sorted.
    pub fn tagged(&self, name: &str) -> Vec<Reference> {
        let mut out: Vec<Reference> = self
            .by_name
            .iter()
            .filter(|((_, repository), _)| named(repository, name))
            .flat_map(|((registry, repository), carried)| {
                carried.iter().filter_map(move |c| {
                    c.tag.as_ref().map(|tag| Reference {
                        registry: registry.clone(),
                        repository: repository.clone(),
                        tag: Some(tag.clone()),
                        digest: None,
                    })
                })
            })
            .collect();
        out.sort_by_key(|a| a.to_string());
        out
    }

    /// The upstream registries of the bundle's images (`docker.io`, `ghcr.io`, ...), sorted.
    pub fn registries(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.by_name.keys().map(|(r, _)| r.as_str()).collect();
        out.dedup();
        out
    }

    /// The reference by which the site registry serves `image`: `REGISTRY[/PREFIX]/REPO@DIGEST`
    /// with the digest the bundle carries for its tag (or the digest it names, if the bundle
    /// carries it). A reference already into the site registry is resolved by its repository.
    pub fn pin(&self, image: &Reference, target: &Target) -> Result<String, NotCarried> {
        let (repository, carried) = self.find(image, target)?;
        let digest = match (&image.digest, &image.tag) {
            (Some(digest), _) => carried
                .iter()
                .find(|c| c.digest == *digest)
                .map(|c| &c.digest)
                .ok_or_else(|| NotCarried(format!("the bundle has {}", listing(carried))))?,
            (None, Some(tag)) => carried
                .iter()
                .find(|c| c.tag.as_deref() == Some(tag))
                .map(|c| &c.digest)
                .ok_or_else(|| {
                    NotCarried(format!(
                        "the bundle has no tag {tag} of it, only {}",
                        listing(carried)
                    ))
                })?,
            (None, None) => return Err(NotCarried("it names neither a tag nor a digest".into())),
        };
        let path = match &target.prefix {
            Some(prefix) => format!("{prefix}/{repository}"),
            None => repository.to_string(),
        };
        Ok(format!("{}/{path}@{digest}", target.registry))
    }

    /// The repository (as the site registry names it, without the prefix) and the bundle's
    /// images of `image`'s repository.
    fn find<'a>(
        &'a self,
        image: &'a Reference,
        target: &Target,
    ) -> Result<(&'a str, &'a [Carried]), NotCarried> {
        if let Some(carried) = self
            .by_name
            .get(&(image.registry.clone(), image.repository.clone()))
        {
            return Ok((&image.repository, carried));
        }
        let in_site = image.registry == target.registry;
        let repository = match (&target.prefix, in_site) {
            (Some(prefix), true) => image.repository.strip_prefix(&format!("{prefix}/")),
            (None, true) => Some(image.repository.as_str()),
            (_, false) => None,
        };
        let found = repository.and_then(|repository| {
            self.by_name
                .iter()
                .find(|((_, r), _)| r == repository)
                .map(|((_, r), carried)| (r.as_str(), carried.as_slice()))
        });
        found.ok_or_else(|| {
            NotCarried(format!(
                "the bundle carries no image of {}/{}",
                image.registry, image.repository
            ))
        })
    }
}

/// Whether `repository` is `name` or ends with `/name`.
fn named(repository: &str, name: &str) -> bool {
    repository == name || repository.ends_with(&format!("/{name}"))
}

/// `tag v1 (sha256:...), digest sha256:...` for a message.
fn listing(carried: &[Carried]) -> String {
    carried
        .iter()
        .map(|c| match &c.tag {
            Some(tag) => format!("tag {tag} ({})", c.digest),
            None => format!("digest {}", c.digest),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn images() -> BundleImages {
        let mut images = BundleImages::default();
        for (name, n) in [
            ("docker.io/matrixdotorg/synapse:v1.164.2", 1),
            ("haproxy:3.2-alpine", 2),
            ("ghcr.io/cloudnative-pg/postgresql:17.6", 3),
        ] {
            images.add(&Reference::parse(name).unwrap(), digest(n));
        }
        images
    }

    fn target(prefix: Option<&str>) -> Target {
        Target {
            registry: "registry.site:5000".into(),
            prefix: prefix.map(String::from),
        }
    }

    fn pin(images: &BundleImages, name: &str, prefix: Option<&str>) -> Result<String, String> {
        images
            .pin(&Reference::parse(name).unwrap(), &target(prefix))
            .map_err(|e| e.0)
    }

    #[test]
    fn tags_and_digests_resolve_to_the_bundle_digest_in_the_site_registry() {
        let images = images();
        let d1 = digest(1);
        assert_eq!(
            pin(&images, "matrixdotorg/synapse:v1.164.2", None).unwrap(),
            format!("registry.site:5000/matrixdotorg/synapse@{d1}")
        );
        assert_eq!(
            pin(
                &images,
                "docker.io/library/haproxy:3.2-alpine",
                Some("mirror/x")
            )
            .unwrap(),
            format!("registry.site:5000/mirror/x/library/haproxy@{}", digest(2))
        );
        // A digest the bundle carries, whatever tag is written with it.
        assert_eq!(
            pin(
                &images,
                &format!("ghcr.io/cloudnative-pg/postgresql:other@{}", digest(3)),
                None
            )
            .unwrap(),
            format!("registry.site:5000/cloudnative-pg/postgresql@{}", digest(3))
        );
        // Already in the site registry (chart values pointing there): pinned the same way.
        assert_eq!(
            pin(
                &images,
                "registry.site:5000/mirror/x/matrixdotorg/synapse:v1.164.2",
                Some("mirror/x")
            )
            .unwrap(),
            format!("registry.site:5000/mirror/x/matrixdotorg/synapse@{d1}")
        );
    }

    #[test]
    fn what_the_bundle_lacks_is_refused_with_what_it_has() {
        let images = images();
        let e = pin(&images, "matrixdotorg/synapse:v1.150.0", None).unwrap_err();
        assert!(
            e.contains("no tag v1.150.0") && e.contains("v1.164.2"),
            "{e}"
        );
        let e = pin(&images, &format!("haproxy@{}", digest(9)), None).unwrap_err();
        assert!(e.contains("3.2-alpine"), "{e}");
        let e = pin(&images, "quay.io/matrixdotorg/synapse:v1.164.2", None).unwrap_err();
        assert!(
            e.contains("no image of quay.io/matrixdotorg/synapse"),
            "{e}"
        );
        // The site registry without the prefix images were loaded under.
        let e = pin(
            &images,
            "registry.site:5000/matrixdotorg/synapse:v1.164.2",
            Some("mirror"),
        )
        .unwrap_err();
        assert!(e.contains("no image of registry.site:5000"), "{e}");
    }

    #[test]
    fn index_names_are_read_and_charts_left_out() {
        let index: ImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": "application/vnd.oci.image.index.v1+json",
                 "digest": digest(1).to_string(), "size": 10,
                 "annotations": {REF_NAME: "docker.io/library/haproxy:3.2-alpine"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": digest(2).to_string(), "size": 10,
                 "annotations": {REF_NAME: "charts/messenger:0.1.0"}}
            ]
        }))
        .unwrap();
        let images = BundleImages::from_index(&index).unwrap();
        assert_eq!(images.len(), 1);
        assert_eq!(images.registries(), ["docker.io"]);
        assert_eq!(images.tags_of("haproxy"), ["3.2-alpine"]);
        assert!(images.tags_of("proxy").is_empty());
        let unnamed: ImageIndex = serde_json::from_value(serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": "x", "digest": digest(1).to_string(), "size": 1}]
        }))
        .unwrap();
        assert!(matches!(
            BundleImages::from_index(&unnamed),
            Err(PinError::Unnamed(_))
        ));
    }
}
