//! Walks one rendered object and yields every value that names an image, with its field path.
//!
//! Pod specs are found anywhere in any object, by their container lists (`containers`,
//! `initContainers`, `ephemeralContainers`), so Deployments, StatefulSets, DaemonSets, Jobs,
//! CronJobs' `jobTemplate`, Pods and custom resources embedding pod templates are all covered.
//! In each container: `image`, image flags in `command` and `args` (`--flag=REF` or
//! `--flag REF`) and image environment variables. In custom resources: the fields of
//! [`super::rules`].

use serde_norway::Value;

use super::rules::{self, Certainty, CONTAINER_LISTS};

/// One value that names an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    /// Field path, e.g. `spec.template.spec.initContainers[0].image`.
    pub field: String,
    /// The value, e.g. `busybox:1.37`.
    pub value: String,
    /// How sure the rule is.
    pub certainty: Certainty,
}

/// Every image-naming value of `object`.
pub(crate) fn hits(object: &Value) -> Vec<Hit> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let walker = Walker {
        group: rules::group_of(api_version),
        kind,
    };
    let mut out = Vec::new();
    walker.value(object, "", "", &mut out);
    out
}

struct Walker<'a> {
    group: &'a str,
    kind: &'a str,
}

impl Walker<'_> {
    /// Walks `value` at `path`; `pattern` is the path with every index written as `[]`.
    fn value(&self, value: &Value, path: &str, pattern: &str, out: &mut Vec<Hit>) {
        match value {
            Value::Mapping(map) => {
                for (key, child) in map {
                    let Some(key) = key.as_str() else { continue };
                    let here = join(path, key);
                    let here_pattern = join(pattern, key);
                    match child {
                        Value::Sequence(items) if CONTAINER_LISTS.contains(&key) => {
                            for (i, item) in items.iter().enumerate() {
                                container(item, &format!("{here}[{i}]"), out);
                            }
                        }
                        Value::String(text) => {
                            if let Some(certainty) =
                                rules::cr_field(self.group, self.kind, &here_pattern, key)
                            {
                                out.push(Hit {
                                    field: here,
                                    value: text.clone(),
                                    certainty,
                                });
                            }
                        }
                        _ => self.value(child, &here, &here_pattern, out),
                    }
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &format!("{path}[{i}]"), &format!("{pattern}[]"), out);
                }
            }
            Value::Tagged(tagged) => self.value(&tagged.value, path, pattern, out),
            _ => {}
        }
    }
}

/// The images one container names: `image`, image flags in `command` and `args`, image
/// environment variables.
fn container(container: &Value, path: &str, out: &mut Vec<Hit>) {
    if let Some(image) = container.get("image").and_then(Value::as_str) {
        out.push(Hit {
            field: format!("{path}.image"),
            value: image.to_string(),
            certainty: Certainty::Known,
        });
    }
    for list in ["command", "args"] {
        if let Some(Value::Sequence(items)) = container.get(list) {
            flags(items, &format!("{path}.{list}"), out);
        }
    }
    if let Some(Value::Sequence(env)) = container.get("env") {
        for (i, var) in env.iter().enumerate() {
            let name = var.get("name").and_then(Value::as_str);
            let value = var.get("value").and_then(Value::as_str);
            if let (Some(name), Some(value)) = (name, value) {
                if let Some(certainty) = rules::image_env(name) {
                    out.push(Hit {
                        field: format!("{path}.env[{i}].value"),
                        value: value.to_string(),
                        certainty,
                    });
                }
            }
        }
    }
}

/// Image flags in an argument list, as `--flag=REF` or as `--flag` followed by `REF`.
fn flags(items: &[Value], path: &str, out: &mut Vec<Hit>) {
    for (i, item) in items.iter().enumerate() {
        let Some(arg) = item.as_str() else { continue };
        let (flag, value, at) = match arg.split_once('=') {
            Some((flag, value)) => (flag, value, i),
            None => match items.get(i + 1).and_then(Value::as_str) {
                Some(next) if !next.starts_with('-') => (arg, next, i + 1),
                _ => continue,
            },
        };
        if let Some(certainty) = rules::image_flag(flag) {
            out.push(Hit {
                field: format!("{path}[{at}]"),
                value: value.to_string(),
                certainty,
            });
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(yaml: &str) -> Vec<(String, String, Certainty)> {
        let value: Value = serde_norway::from_str(yaml).unwrap();
        hits(&value)
            .into_iter()
            .map(|h| (h.field, h.value, h.certainty))
            .collect()
    }

    fn known(field: &str, value: &str) -> (String, String, Certainty) {
        (field.to_string(), value.to_string(), Certainty::Known)
    }

    #[test]
    fn containers_of_a_deployment() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
        - name: init
          image: busybox:1.37
      containers:
        - name: web
          image: ghcr.io/org/web:1.0
          imagePullPolicy: IfNotPresent
        - name: sidecar
          image: ghcr.io/org/sidecar:2.0
"#;
        assert_eq!(
            found(yaml),
            [
                known("spec.template.spec.initContainers[0].image", "busybox:1.37"),
                known(
                    "spec.template.spec.containers[0].image",
                    "ghcr.io/org/web:1.0"
                ),
                known(
                    "spec.template.spec.containers[1].image",
                    "ghcr.io/org/sidecar:2.0"
                ),
            ]
        );
    }

    #[test]
    fn cronjob_and_ephemeral_containers() {
        let yaml = r#"
apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: "alpine:3.22"}]
          ephemeralContainers: [{name: debug, image: "busybox:1.37"}]
"#;
        assert_eq!(
            found(yaml),
            [
                known(
                    "spec.jobTemplate.spec.template.spec.containers[0].image",
                    "alpine:3.22"
                ),
                known(
                    "spec.jobTemplate.spec.template.spec.ephemeralContainers[0].image",
                    "busybox:1.37"
                ),
            ]
        );
    }

    #[test]
    fn flags_in_both_spellings_and_env() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: operator
          image: quay.io/prometheus-operator/prometheus-operator:v0.93.0
          command: ["/bin/operator", "--acme-http01-solver-image", "quay.io/jetstack/cert-manager-acmesolver:v1.21.0"]
          args:
            - --log-level=info
            - --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0
            - --sidecar-image=ghcr.io/org/sidecar:1
            - --verbose
          env:
            - {name: WATCH_NAMESPACE, value: ""}
            - {name: POSTGRES_IMAGE_NAME, value: "ghcr.io/cloudnative-pg/postgresql:17.6"}
            - {name: HELPER_IMAGE, value: "ghcr.io/org/helper:3"}
            - name: FROM_SECRET_IMAGE
              valueFrom: {secretKeyRef: {name: s, key: k}}
"#;
        let c = "spec.template.spec.containers[0]";
        assert_eq!(
            found(yaml),
            [
                known(
                    &format!("{c}.image"),
                    "quay.io/prometheus-operator/prometheus-operator:v0.93.0"
                ),
                known(
                    &format!("{c}.command[2]"),
                    "quay.io/jetstack/cert-manager-acmesolver:v1.21.0"
                ),
                known(
                    &format!("{c}.args[1]"),
                    "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0"
                ),
                (
                    format!("{c}.args[2]"),
                    "ghcr.io/org/sidecar:1".into(),
                    Certainty::Generic
                ),
                known(
                    &format!("{c}.env[1].value"),
                    "ghcr.io/cloudnative-pg/postgresql:17.6"
                ),
                (
                    format!("{c}.env[2].value"),
                    "ghcr.io/org/helper:3".into(),
                    Certainty::Generic
                ),
            ]
        );
    }

    #[test]
    fn custom_resources() {
        let cluster = r#"
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: main, labels: {image: not-an-image}}
spec:
  instances: 3
  imageName: ghcr.io/cloudnative-pg/postgresql:18.0
"#;
        assert_eq!(
            found(cluster),
            [known(
                "spec.imageName",
                "ghcr.io/cloudnative-pg/postgresql:18.0"
            )]
        );
        let catalog = r#"
apiVersion: postgresql.cnpg.io/v1
kind: ClusterImageCatalog
spec:
  images:
    - {major: 17, image: "ghcr.io/cloudnative-pg/postgresql:17.6"}
    - {major: 18, image: "ghcr.io/cloudnative-pg/postgresql:18.0"}
"#;
        assert_eq!(
            found(catalog),
            [
                known(
                    "spec.images[0].image",
                    "ghcr.io/cloudnative-pg/postgresql:17.6"
                ),
                known(
                    "spec.images[1].image",
                    "ghcr.io/cloudnative-pg/postgresql:18.0"
                ),
            ]
        );
        // A pooler embeds a pod template; an unknown CR's image keys are generic.
        let pooler = r#"
apiVersion: postgresql.cnpg.io/v1
kind: Pooler
spec:
  template:
    spec:
      containers: [{name: pgbouncer, image: "ghcr.io/cloudnative-pg/pgbouncer:1.25.0"}]
  extra: {image: "ghcr.io/org/x:1"}
"#;
        assert_eq!(
            found(pooler),
            [
                known(
                    "spec.template.spec.containers[0].image",
                    "ghcr.io/cloudnative-pg/pgbouncer:1.25.0"
                ),
                (
                    "spec.extra.image".into(),
                    "ghcr.io/org/x:1".into(),
                    Certainty::Generic
                ),
            ]
        );
    }

    #[test]
    fn core_objects_other_than_pod_specs_are_not_scanned() {
        let yaml = r#"
apiVersion: v1
kind: ConfigMap
data: {image: "ghcr.io/org/x:1", POSTGRES_IMAGE_NAME: "ghcr.io/org/y:1"}
"#;
        assert!(found(yaml).is_empty());
        let crd = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  versions: [{schema: {openAPIV3Schema: {properties: {spec: {properties: {image: {type: string}}}}}}}]
"#;
        assert!(found(crd).is_empty());
    }
}
