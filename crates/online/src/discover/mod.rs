//! Image discovery: every image the stack's charts render, where it comes from, and whether
//! images.toml carries it.
//!
//! - [`RenderPlan`]: `releases.toml`, the releases the installer deploys and the scale
//!   profiles (in [`crate::spec::releases`]).
//! - [`discover`] renders every release (once per profile) with `helm template` and collects
//!   every image reference as a [`Finding`]: containers, init and ephemeral containers of pod
//!   specs anywhere in any object, custom-resource image fields, operator image flags and
//!   image environment variables (the rules are in `rules.rs`).
//! - [`check`] compares the findings with an [`ImagesFile`](crate::spec::ImagesFile):
//!   missing images are errors ([`Report::ensure_complete`]), unused listed ones warnings.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use online::discover::{check, discover};
//! use online::spec::{ImagesFile, RenderPlan};
//! use std::path::Path;
//! let plan = RenderPlan::load(Path::new("releases.toml"))?;
//! let images = ImagesFile::load(Path::new("images.toml"))?;
//! let findings = discover(&plan, Path::new("helm"))?;
//! let report = check(&findings, &images);
//! report.ensure_complete(&images.path)?;
//! # Ok(()) }
//! ```

mod check;
mod error;
mod finding;
mod manifests;
mod render;
mod rules;
mod walk;

use std::path::Path;

use serde_norway::Value;

pub use check::{check, covers, findings_of, Missing, Report};
pub use error::DiscoverError;
pub use finding::Finding;

use crate::spec::{Profile, Release, RenderPlan};
use finding::Findings;
use oci::Reference;
use rules::Certainty;
use walk::Hit;

/// Renders every release of `plan` with the helm binary `helm` (once per profile for the
/// releases that take profiles) and returns every place an image is rendered, ordered by
/// image, release, template, object and field; a place rendered by several profiles is one
/// finding listing them.
pub fn discover(plan: &RenderPlan, helm: &Path) -> Result<Vec<Finding>, DiscoverError> {
    let mut findings = Findings::default();
    for release in &plan.releases {
        let profiles: Vec<Option<&Profile>> = if release.profiles && !plan.profiles.is_empty() {
            plan.profiles.iter().map(Some).collect()
        } else {
            vec![None]
        };
        for profile in profiles {
            let profile_name = profile.map(|p| p.name.clone());
            let output = render::template(helm, plan, release, profile)?;
            let documents = manifests::documents(&output).map_err(|bad| DiscoverError::Yaml {
                release: release.name.clone(),
                chart: release.chart.written.clone(),
                profile: profile_name.clone(),
                template: bad.template,
                message: bad.message,
            })?;
            for document in &documents {
                for hit in walk::hits(&document.value) {
                    if let Some(finding) =
                        to_finding(hit, release, &document.template, &document.value)?
                    {
                        findings.add(finding, profile_name.as_deref());
                    }
                }
            }
        }
    }
    Ok(findings.into_vec())
}

/// The finding of one hit: `None` for a generic rule's value that is not an image reference
/// with a tag or digest, an error for a known rule's value that is not a reference.
fn to_finding(
    hit: Hit,
    release: &Release,
    template: &str,
    object: &Value,
) -> Result<Option<Finding>, DiscoverError> {
    let field = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("(none)")
            .to_string()
    };
    let kind = field("kind");
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    let image = match (Reference::parse(&hit.value), hit.certainty) {
        (Ok(image), Certainty::Known) => image,
        (Ok(image), Certainty::Generic) if check::names_tag_or_digest(&hit.value) => image,
        (_, Certainty::Generic) => return Ok(None),
        (Err(e), Certainty::Known) => {
            return Err(DiscoverError::InvalidImage {
                place: format!(
                    "release {} (chart {}), template {template}, {kind}/{name}, field {}",
                    release.name, release.chart.written, hit.field
                ),
                value: hit.value,
                reason: e.reason,
            })
        }
    };
    Ok(Some(Finding {
        image,
        written: hit.value,
        release: release.name.clone(),
        chart: release.chart.written.clone(),
        template: template.to_string(),
        kind,
        object: name,
        field: hit.field,
        profiles: Vec::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release() -> Release {
        let plan = RenderPlan::parse(
            "[[release]]\nname = \"db\"\nnamespace = \"x\"\nchart = \"charts/db\"\n",
            Path::new("releases.toml"),
        )
        .unwrap();
        plan.releases[0].clone()
    }

    fn object() -> Value {
        serde_norway::from_str("kind: Cluster\nmetadata: {name: main}\n").unwrap()
    }

    fn hit(value: &str, certainty: Certainty) -> Hit {
        Hit {
            field: "spec.imageName".into(),
            value: value.into(),
            certainty,
        }
    }

    #[test]
    fn known_fields_must_hold_references() {
        let e = to_finding(
            hit("Postgres:{{bad}}", Certainty::Known),
            &release(),
            "db/templates/cluster.yaml",
            &object(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "release db (chart charts/db), template db/templates/cluster.yaml, Cluster/main, \
             field spec.imageName: \"Postgres:{{bad}}\" is not an image reference: invalid tag"
        );
        let found = to_finding(
            hit("postgres", Certainty::Known),
            &release(),
            "t",
            &object(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.image.to_string(), "docker.io/library/postgres:latest");
        assert_eq!(
            (found.kind.as_str(), found.object.as_str()),
            ("Cluster", "main")
        );
    }

    #[test]
    fn generic_rules_skip_what_is_not_a_tagged_reference() {
        for value in ["quay.io/prometheus/prometheus", "not an image", ""] {
            let found = to_finding(hit(value, Certainty::Generic), &release(), "t", &object());
            assert!(matches!(found, Ok(None)), "{value}");
        }
        let found = to_finding(
            hit("ghcr.io/org/x:1", Certainty::Generic),
            &release(),
            "t",
            &object(),
        );
        assert!(matches!(found, Ok(Some(_))));
    }
}
