//! Which fields, flags and environment variables name images, beyond a pod's containers.
//!
//! Each rule is either *known* (the field certainly names an image: a value that is not an
//! image reference is an error) or *generic* (a naming convention that usually names one: a
//! value that is not a reference with an explicit tag or digest is skipped, so base names such
//! as prometheus-operator's `--prometheus-default-base-image=quay.io/prometheus/prometheus`
//! are not mistaken for images).

/// How sure a rule is that a value names an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Certainty {
    /// The rule table names this field, flag or variable.
    Known,
    /// Only the name's shape suggests an image.
    Generic,
}

/// Custom-resource fields that name images: (API group, kind, field path with `[]` for any
/// index).
const CR_FIELDS: &[(&str, &str, &str)] = &[
    ("postgresql.cnpg.io", "Cluster", "spec.imageName"),
    ("postgresql.cnpg.io", "ImageCatalog", "spec.images[].image"),
    (
        "postgresql.cnpg.io",
        "ClusterImageCatalog",
        "spec.images[].image",
    ),
    ("monitoring.coreos.com", "Prometheus", "spec.image"),
    ("monitoring.coreos.com", "PrometheusAgent", "spec.image"),
    ("monitoring.coreos.com", "Alertmanager", "spec.image"),
    ("monitoring.coreos.com", "ThanosRuler", "spec.image"),
];

/// Keys that generically name an image anywhere under a custom resource's `spec`.
const CR_IMAGE_KEYS: &[&str] = &["image", "imageName"];

/// Operator flags that name images: prometheus-operator's config reloader (both spellings)
/// and cert-manager's ACME HTTP-01 solver.
const IMAGE_FLAGS: &[&str] = &[
    "--prometheus-config-reloader",
    "--config-reloader-image",
    "--acme-http01-solver-image",
];

/// Environment variables that name images: CloudNativePG's operator, postgres and PgBouncer.
const IMAGE_ENV: &[&str] = &[
    "OPERATOR_IMAGE_NAME",
    "POSTGRES_IMAGE_NAME",
    "PGBOUNCER_IMAGE_NAME",
];

/// The keys under which pod specs list containers.
pub(crate) const CONTAINER_LISTS: &[&str] =
    &["containers", "initContainers", "ephemeralContainers"];

/// The API group of an `apiVersion` (`""` for the core group's `v1`).
pub(crate) fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Whether objects of this API group are custom resources: the group has a dot and is not one
/// of Kubernetes' own (`*.k8s.io`), so `apps`, `batch` and CRDs themselves are not.
pub(crate) fn is_custom(group: &str) -> bool {
    group.contains('.') && !group.ends_with(".k8s.io") && group != "k8s.io"
}

/// Whether the field at `path` (indices written as `[]`) of a custom resource names an image;
/// `key` is the field's last key.
pub(crate) fn cr_field(group: &str, kind: &str, path: &str, key: &str) -> Option<Certainty> {
    if CR_FIELDS
        .iter()
        .any(|(g, k, p)| *g == group && *k == kind && *p == path)
    {
        Some(Certainty::Known)
    } else if is_custom(group) && path.starts_with("spec.") && CR_IMAGE_KEYS.contains(&key) {
        Some(Certainty::Generic)
    } else {
        None
    }
}

/// Whether a command-line flag (without its value) names an image: a known flag, or any
/// `--*-image`.
pub(crate) fn image_flag(flag: &str) -> Option<Certainty> {
    if IMAGE_FLAGS.contains(&flag) {
        Some(Certainty::Known)
    } else if flag.starts_with("--") && flag.ends_with("-image") {
        Some(Certainty::Generic)
    } else {
        None
    }
}

/// Whether an environment variable names an image: a known name, or any `*_IMAGE` or
/// `*_IMAGE_NAME`.
pub(crate) fn image_env(name: &str) -> Option<Certainty> {
    if IMAGE_ENV.contains(&name) {
        Some(Certainty::Known)
    } else if name.ends_with("_IMAGE") || name.ends_with("_IMAGE_NAME") {
        Some(Certainty::Generic)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_custom_resources() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("postgresql.cnpg.io/v1"), "postgresql.cnpg.io");
        assert!(is_custom("postgresql.cnpg.io"));
        assert!(is_custom("monitoring.coreos.com"));
        for builtin in [
            "",
            "apps",
            "batch",
            "apiextensions.k8s.io",
            "networking.k8s.io",
        ] {
            assert!(!is_custom(builtin), "{builtin}");
        }
    }

    #[test]
    fn cr_fields_known_and_generic() {
        let cnpg = "postgresql.cnpg.io";
        assert_eq!(
            cr_field(cnpg, "Cluster", "spec.imageName", "imageName"),
            Some(Certainty::Known)
        );
        assert_eq!(
            cr_field(cnpg, "ImageCatalog", "spec.images[].image", "image"),
            Some(Certainty::Known)
        );
        assert_eq!(
            cr_field(
                "gateway.envoyproxy.io",
                "EnvoyProxy",
                "spec.provider.image",
                "image"
            ),
            Some(Certainty::Generic)
        );
        // Only under spec, only in custom resources, only image-like keys.
        assert_eq!(cr_field(cnpg, "Cluster", "status.image", "image"), None);
        assert_eq!(cr_field("apps", "Deployment", "spec.image", "image"), None);
        assert_eq!(
            cr_field(cnpg, "Cluster", "spec.imagePullPolicy", "imagePullPolicy"),
            None
        );
    }

    #[test]
    fn flags_and_env() {
        assert_eq!(
            image_flag("--prometheus-config-reloader"),
            Some(Certainty::Known)
        );
        assert_eq!(
            image_flag("--acme-http01-solver-image"),
            Some(Certainty::Known)
        );
        assert_eq!(image_flag("--sidecar-image"), Some(Certainty::Generic));
        assert_eq!(image_flag("--image-pull-policy"), None);
        assert_eq!(image_flag("-image"), None);
        assert_eq!(image_env("POSTGRES_IMAGE_NAME"), Some(Certainty::Known));
        assert_eq!(image_env("SIDECAR_IMAGE"), Some(Certainty::Generic));
        assert_eq!(image_env("BACKUP_IMAGE_NAME"), Some(Certainty::Generic));
        assert_eq!(image_env("IMAGE_PULL_POLICY"), None);
    }
}
