//! Rendered images against images.toml: which are missing, which listed ones are unused.

use std::path::Path;

use super::error::DiscoverError;
use super::finding::Finding;
use crate::spec::{ImageSpec, ImagesFile};
use oci::{Reference, ReferenceError};

/// The outcome of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Rendered images that images.toml does not list, each with every place it is rendered;
    /// ordered by image. An error.
    pub missing: Vec<Missing>,
    /// Listed images that nothing renders, in file order. A warning: operators may start them
    /// at run time, or they serve other purposes.
    pub unused: Vec<ImageSpec>,
}

/// A rendered image images.toml does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The image.
    pub image: Reference,
    /// Every place it is rendered.
    pub places: Vec<Finding>,
}

/// Compares rendered images with images.toml (see [`covers`] for when an entry matches).
pub fn check(findings: &[Finding], images: &ImagesFile) -> Report {
    let mut missing: Vec<Missing> = Vec::new();
    for finding in findings {
        if images
            .images
            .iter()
            .any(|listed| covers(&listed.reference, &finding.image))
        {
            continue;
        }
        match missing.iter_mut().find(|m| m.image == finding.image) {
            Some(entry) => entry.places.push(finding.clone()),
            None => missing.push(Missing {
                image: finding.image.clone(),
                places: vec![finding.clone()],
            }),
        }
    }
    missing.sort_by(|a, b| a.image.cmp(&b.image));
    let unused = images
        .images
        .iter()
        .filter(|listed| !findings.iter().any(|f| covers(&listed.reference, &f.image)))
        .cloned()
        .collect();
    Report { missing, unused }
}

impl Report {
    /// `Ok` when nothing is missing; otherwise a [`DiscoverError::Missing`] naming, one line
    /// each, every place every missing image is rendered. `images` names the image list.
    pub fn ensure_complete(&self, images: &Path) -> Result<(), DiscoverError> {
        if self.missing.is_empty() {
            return Ok(());
        }
        let mut details = String::new();
        for missing in &self.missing {
            details.push_str(&format!("  {}\n", missing.image));
            for place in &missing.places {
                details.push_str(&format!("    {place}\n"));
            }
        }
        Err(DiscoverError::Missing {
            images: images.to_path_buf(),
            count: self.missing.len(),
            details: details.trim_end().to_string(),
        })
    }
}

/// Whether a listed image carries a rendered one: the same repository and, when both name a
/// digest, the same digest; otherwise the same tag (a listed `app:1@sha256:...` carries a
/// rendered `app:1`; a rendered `app:1@sha256:...` is carried by a listed `app:1`, whose
/// digest the lock fixes).
pub fn covers(listed: &Reference, rendered: &Reference) -> bool {
    if listed.registry != rendered.registry || listed.repository != rendered.repository {
        return false;
    }
    match (&listed.digest, &rendered.digest) {
        (Some(l), Some(r)) => l == r,
        _ => rendered.tag.is_some() && listed.tag == rendered.tag,
    }
}

/// The findings of one image, as a user names it: with a tag or digest, the findings that
/// image covers (see [`covers`]); as a bare repository (`haproxy`, `ghcr.io/org/app`), every
/// tag of it.
pub fn findings_of<'a>(
    findings: &'a [Finding],
    image: &str,
) -> Result<Vec<&'a Finding>, ReferenceError> {
    let wanted = Reference::parse(image)?;
    let bare = !names_tag_or_digest(image);
    Ok(findings
        .iter()
        .filter(|f| {
            if bare {
                f.image.name() == wanted.name()
            } else {
                covers(&wanted, &f.image)
            }
        })
        .collect())
}

/// Whether `written` names a tag or a digest itself, rather than getting `latest` from
/// normalisation.
pub(crate) fn names_tag_or_digest(written: &str) -> bool {
    written.contains('@')
        || written
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Reference {
        Reference::parse(text).unwrap()
    }

    fn finding(image: &str, field: &str) -> Finding {
        Finding {
            image: reference(image),
            written: image.to_string(),
            release: "db".into(),
            chart: "charts/db".into(),
            template: "db/templates/cluster.yaml".into(),
            kind: "Cluster".into(),
            object: "main".into(),
            field: field.into(),
            profiles: vec!["1k".into()],
        }
    }

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn covering_rules() {
        assert!(covers(
            &reference("haproxy:3.2"),
            &reference("docker.io/library/haproxy:3.2")
        ));
        assert!(!covers(
            &reference("haproxy:3.2"),
            &reference("haproxy:3.3")
        ));
        assert!(!covers(
            &reference("haproxy:3.2"),
            &reference("ghcr.io/haproxy:3.2")
        ));
        let pinned = reference(&format!("app:1@sha256:{A}"));
        assert!(covers(&pinned, &reference("app:1")));
        assert!(covers(&pinned, &reference(&format!("app@sha256:{A}"))));
        assert!(!covers(&pinned, &reference(&format!("app:1@sha256:{B}"))));
        assert!(covers(
            &reference("app:1"),
            &reference(&format!("app:1@sha256:{B}"))
        ));
        assert!(!covers(
            &reference("app:1"),
            &reference(&format!("app@sha256:{B}"))
        ));
    }

    #[test]
    fn missing_and_unused() {
        let images = ImagesFile::parse(
            "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"ghcr.io/cloudnative-pg/postgresql:18.0\"\n[[images]]\nref = \"haproxy:3.2\"\n",
            Path::new("images.toml"),
        )
        .unwrap();
        let findings = [
            finding("ghcr.io/cloudnative-pg/postgresql:18.0", "spec.imageName"),
            finding(
                "ghcr.io/cloudnative-pg/postgresql:17.6",
                "spec.template.spec.containers[0].env[0].value",
            ),
            finding(
                "ghcr.io/cloudnative-pg/postgresql:17.6",
                "spec.template.spec.containers[1].env[0].value",
            ),
        ];
        let report = check(&findings, &images);
        assert_eq!(report.missing.len(), 1);
        assert_eq!(
            report.missing[0].image.to_string(),
            "ghcr.io/cloudnative-pg/postgresql:17.6"
        );
        assert_eq!(report.missing[0].places.len(), 2);
        assert_eq!(report.unused.len(), 1);
        assert_eq!(report.unused[0].written, "haproxy:3.2");
        let message = report
            .ensure_complete(Path::new("images.toml"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "1 rendered image(s) not in images.toml:\n  ghcr.io/cloudnative-pg/postgresql:17.6\n    \
             release db (chart charts/db), template db/templates/cluster.yaml, Cluster/main, \
             field spec.template.spec.containers[0].env[0].value, profiles 1k\n    \
             release db (chart charts/db), template db/templates/cluster.yaml, Cluster/main, \
             field spec.template.spec.containers[1].env[0].value, profiles 1k"
        );
        let complete = check(&findings[..1], &images);
        assert!(complete.ensure_complete(Path::new("images.toml")).is_ok());
    }

    #[test]
    fn findings_by_name_tag_or_repository() {
        let findings = [
            finding("ghcr.io/cloudnative-pg/postgresql:18.0", "a"),
            finding("ghcr.io/cloudnative-pg/postgresql:17.6", "b"),
            finding("busybox:1.37", "c"),
        ];
        let fields = |image: &str| -> Vec<&str> {
            findings_of(&findings, image)
                .unwrap()
                .iter()
                .map(|f| f.field.as_str())
                .collect()
        };
        assert_eq!(fields("ghcr.io/cloudnative-pg/postgresql:17.6"), ["b"]);
        assert_eq!(fields("ghcr.io/cloudnative-pg/postgresql"), ["a", "b"]);
        assert_eq!(fields("busybox"), ["c"]);
        assert_eq!(fields("docker.io/library/busybox:1.37"), ["c"]);
        assert!(fields("busybox:1.36").is_empty());
        assert!(findings_of(&findings, "NOT VALID").is_err());
    }
}
