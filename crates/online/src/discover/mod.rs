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
pub use manifests::{chunks, documents, BadDocument, Document};

use crate::spec::{Profile, Release, RenderPlan};
use finding::Findings;
use oci::Reference;
use rules::Certainty;

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
                for finding in findings_in(release, &document.template, &document.value)? {
                    findings.add(finding, profile_name.as_deref());
                }
            }
        }
    }
    Ok(findings.into_vec())
}

/// One value of a rendered object that names an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageField {
    /// Field path, e.g. `spec.template.spec.containers[0].image` (a flag's value is the
    /// argument that holds it, `...args[2]`, written `--flag=REF` or as `REF` after the flag).
    pub field: String,
    /// The value as rendered.
    pub written: String,
    /// It, parsed.
    pub image: Reference,
}

/// A field that must name an image and does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnImage {
    /// Field path.
    pub field: String,
    /// The value found.
    pub value: String,
    /// Why it is not a reference.
    pub reason: &'static str,
}

/// Every image `object` (one rendered Kubernetes object) names, by the rules of this module:
/// containers anywhere, custom-resource image fields, image flags and variables. A value of a
/// generic rule that is not a reference with a tag or digest is not an image; a value of a
/// known rule that is not a reference is an error.
pub fn image_fields(object: &Value) -> Result<Vec<ImageField>, NotAnImage> {
    let mut out = Vec::new();
    for hit in walk::hits(object) {
        let image = match (Reference::parse(&hit.value), hit.certainty) {
            (Ok(image), Certainty::Known) => image,
            (Ok(image), Certainty::Generic) if check::names_tag_or_digest(&hit.value) => image,
            (_, Certainty::Generic) => continue,
            (Err(e), Certainty::Known) => {
                return Err(NotAnImage {
                    field: hit.field,
                    value: hit.value,
                    reason: e.reason,
                })
            }
        };
        out.push(ImageField {
            field: hit.field,
            written: hit.value,
            image,
        });
    }
    Ok(out)
}

/// `Kind/name` of a rendered object, for messages.
pub fn object_name(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("(none)");
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    format!("{kind}/{name}")
}

/// The findings of one rendered object.
fn findings_in(
    release: &Release,
    template: &str,
    object: &Value,
) -> Result<Vec<Finding>, DiscoverError> {
    let fields = image_fields(object).map_err(|bad| DiscoverError::InvalidImage {
        place: format!(
            "release {} (chart {}), template {template}, {}, field {}",
            release.name,
            release.chart.written,
            object_name(object),
            bad.field
        ),
        value: bad.value,
        reason: bad.reason,
    })?;
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_string();
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    Ok(fields
        .into_iter()
        .map(|f| Finding {
            image: f.image,
            written: f.written,
            release: release.name.clone(),
            chart: release.chart.written.clone(),
            template: template.to_string(),
            kind: kind.clone(),
            object: name.clone(),
            field: f.field,
            profiles: Vec::new(),
        })
        .collect())
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

    /// A CloudNativePG Cluster (a known image field) or an unknown custom resource (a generic
    /// one) naming `image`.
    fn object(known: bool, image: &str) -> Value {
        let yaml = if known {
            format!("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {{name: main}}\nspec: {{imageName: {image:?}}}\n")
        } else {
            format!("apiVersion: example.com/v1\nkind: Thing\nmetadata: {{name: main}}\nspec: {{image: {image:?}}}\n")
        };
        serde_norway::from_str(&yaml).unwrap()
    }

    #[test]
    fn known_fields_must_hold_references() {
        let e = findings_in(
            &release(),
            "db/templates/cluster.yaml",
            &object(true, "Postgres:{{bad}}"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "release db (chart charts/db), template db/templates/cluster.yaml, Cluster/main, \
             field spec.imageName: \"Postgres:{{bad}}\" is not an image reference: invalid tag"
        );
        let found = findings_in(&release(), "t", &object(true, "postgres")).unwrap();
        assert_eq!(
            found[0].image.to_string(),
            "docker.io/library/postgres:latest"
        );
        assert_eq!(
            (found[0].kind.as_str(), found[0].object.as_str()),
            ("Cluster", "main")
        );
    }

    #[test]
    fn generic_rules_skip_what_is_not_a_tagged_reference() {
        for value in ["quay.io/prometheus/prometheus", "not an image", ""] {
            let found = image_fields(&object(false, value)).unwrap();
            assert!(found.is_empty(), "{value}");
        }
        let found = image_fields(&object(false, "ghcr.io/org/x:1")).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].field, "spec.image");
    }
}
