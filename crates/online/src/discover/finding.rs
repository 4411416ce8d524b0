//! A rendered image and the place it was found.

use std::collections::BTreeMap;
use std::fmt;

use oci::Reference;

/// One place an image is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The image, normalised (`busybox:1.37` becomes `docker.io/library/busybox:1.37`).
    pub image: Reference,
    /// The value as rendered (for a flag, only the part after `=`).
    pub written: String,
    /// The release.
    pub release: String,
    /// The chart as the render plan names it.
    pub chart: String,
    /// The template, from helm's `# Source:` line (`app/templates/operator.yaml`).
    pub template: String,
    /// The object's kind.
    pub kind: String,
    /// The object's `metadata.name`.
    pub object: String,
    /// The field path (`spec.template.spec.initContainers[0].image`).
    pub field: String,
    /// The profiles whose rendering has it, in plan order; empty when the release is rendered
    /// without profiles.
    pub profiles: Vec<String>,
}

impl fmt::Display for Finding {
    /// One line: `release R (chart C), template T, Kind/name, field F[, profiles P, Q]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "release {} (chart {}), template {}, {}/{}, field {}",
            self.release, self.chart, self.template, self.kind, self.object, self.field
        )?;
        if !self.profiles.is_empty() {
            write!(f, ", profiles {}", self.profiles.join(", "))?;
        }
        Ok(())
    }
}

/// Findings of several renderings, one per place, with the profiles of each place merged.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    by_place: BTreeMap<Place, Finding>,
}

/// What makes a place: everything but the profiles.
type Place = (Reference, String, String, String, String, String);

impl Findings {
    /// Adds `finding` (whose `profiles` is empty) as found in `profile`.
    pub fn add(&mut self, finding: Finding, profile: Option<&str>) {
        let place = (
            finding.image.clone(),
            finding.release.clone(),
            finding.template.clone(),
            finding.kind.clone(),
            finding.object.clone(),
            finding.field.clone(),
        );
        let entry = self.by_place.entry(place).or_insert(finding);
        if let Some(profile) = profile {
            if !entry.profiles.iter().any(|p| p == profile) {
                entry.profiles.push(profile.to_string());
            }
        }
    }

    /// Every finding, ordered by image, release, template, object and field.
    pub fn into_vec(self) -> Vec<Finding> {
        self.by_place.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(image: &str, field: &str) -> Finding {
        Finding {
            image: Reference::parse(image).unwrap(),
            written: image.to_string(),
            release: "app".into(),
            chart: "charts/app".into(),
            template: "app/templates/web.yaml".into(),
            kind: "Deployment".into(),
            object: "web".into(),
            field: field.into(),
            profiles: Vec::new(),
        }
    }

    #[test]
    fn places_merge_their_profiles() {
        let mut all = Findings::default();
        let a = "spec.template.spec.containers[0].image";
        all.add(finding("web:1", a), Some("small"));
        all.add(finding("web:1", a), Some("large"));
        all.add(finding("web:1", a), Some("large"));
        all.add(finding("docker.io/library/web:1", a), Some("huge"));
        all.add(
            finding("busybox:1", "spec.template.spec.initContainers[0].image"),
            Some("large"),
        );
        let all = all.into_vec();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].image.to_string(), "docker.io/library/busybox:1");
        assert_eq!(all[1].profiles, ["small", "large", "huge"]);
        assert_eq!(
            all[1].to_string(),
            "release app (chart charts/app), template app/templates/web.yaml, Deployment/web, \
             field spec.template.spec.containers[0].image, profiles small, large, huge"
        );
    }
}
