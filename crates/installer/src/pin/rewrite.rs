//! Rewrites a release's rendered manifests: every field that names an image (by the rules of
//! `bundle find-images`) gets the pinned reference, or the whole stream is refused.

use serde_norway::Value;

use online::discover::{chunks, documents, image_fields, object_name};

use super::images::BundleImages;
use super::{PinError, Refusal};
use crate::load::Target;

/// One rewritten field, for the caller's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pinned {
    /// `Kind/name` of the object.
    pub object: String,
    /// Field path.
    pub field: String,
    /// The reference as rendered.
    pub from: String,
    /// The pinned reference.
    pub to: String,
}

/// The manifests of `release`, rendered as `stream` (helm's multi-document YAML), with every
/// image pinned to the bundle's digest in `target`, and what was rewritten. Every image the
/// bundle does not carry is reported at once, naming release, object and field.
///
/// Only the references change: each document's text is edited in place (YAML 1.1 readers
/// such as Kubernetes' would read a re-serialised `0440` differently), then parsed again and
/// compared with the expected object, so nothing else can have changed.
pub fn post_render(
    stream: &str,
    release: &str,
    images: &BundleImages,
    target: &Target,
) -> Result<(String, Vec<Pinned>), PinError> {
    let mut out = String::with_capacity(stream.len() + 1024);
    let mut pinned = Vec::new();
    let mut refusals = Vec::new();
    for chunk in chunks(stream) {
        let docs = documents(chunk).map_err(|bad| PinError::Yaml {
            release: release.to_string(),
            template: bad.template,
            message: bad.message,
        })?;
        let mut expected = Vec::with_capacity(docs.len());
        let mut edits: Vec<(String, String)> = Vec::new();
        let mut chunk_pins = Vec::new();
        for doc in &docs {
            let mut object = doc.value.clone();
            let name = object_name(&object);
            let refuse = |field: String, image: String, reason: String| Refusal {
                release: release.to_string(),
                template: doc.template.clone(),
                object: name.clone(),
                field,
                image,
                reason,
            };
            let fields = match image_fields(&object) {
                Ok(fields) => fields,
                Err(bad) => {
                    refusals.push(refuse(bad.field, bad.value, bad.reason.to_string()));
                    continue;
                }
            };
            for field in fields {
                let to = match images.pin(&field.image, target) {
                    Ok(to) => to,
                    Err(e) => {
                        refusals.push(refuse(field.field, field.written, e.0));
                        continue;
                    }
                };
                if !replace(&mut object, &field.field, &field.written, &to) {
                    refusals.push(refuse(
                        field.field,
                        field.written,
                        "the field cannot be rewritten in place".to_string(),
                    ));
                    continue;
                }
                if !edits.iter().any(|(w, _)| *w == field.written) {
                    edits.push((field.written.clone(), to.clone()));
                }
                chunk_pins.push(Pinned {
                    object: name.clone(),
                    field: field.field,
                    from: field.written,
                    to,
                });
            }
            expected.push(object);
        }
        if !refusals.is_empty() {
            continue;
        }
        let text = edit(chunk, &edits);
        let edited = documents(&text).ok();
        let same = edited.is_some_and(|docs| {
            docs.len() == expected.len() && docs.iter().zip(&expected).all(|(d, e)| d.value == *e)
        });
        if !same {
            let first = docs.first();
            refusals.push(Refusal {
                release: release.to_string(),
                template: first.map(|d| d.template.clone()).unwrap_or_default(),
                object: first.map(|d| object_name(&d.value)).unwrap_or_default(),
                field: chunk_pins
                    .first()
                    .map(|p| p.field.clone())
                    .unwrap_or_default(),
                image: chunk_pins
                    .first()
                    .map(|p| p.from.clone())
                    .unwrap_or_default(),
                reason: "the reference also appears outside image fields; it cannot be \
                         rewritten in place"
                    .to_string(),
            });
            continue;
        }
        pinned.extend(chunk_pins);
        out.push_str("---\n");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    if !refusals.is_empty() {
        return Err(PinError::Refused(refusals));
    }
    Ok((out, pinned))
}

/// Characters that may stand next to a YAML scalar or flag value in helm's output.
fn is_boundary(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '=' | ',' | '[' | ']' | '{' | '}')
}

/// `text` with every whole occurrence of each `from` replaced by its `to`.
fn edit(text: &str, edits: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (from, to) in edits {
        if from == to {
            continue;
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(from.as_str()) {
            let before = rest[..at].chars().next_back();
            let after = rest[at + from.len()..].chars().next();
            let whole = before.is_none_or(is_boundary) && after.is_none_or(is_boundary);
            out.push_str(&rest[..at]);
            out.push_str(if whole { to } else { from });
            rest = &rest[at + from.len()..];
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// Sets the string at `path` (`a.b[0].c`) from `written` to `to`; a `--flag=written`
/// argument keeps its flag. False when the path or value is not there.
fn replace(object: &mut Value, path: &str, written: &str, to: &str) -> bool {
    let Some(Value::String(text)) = at_path(object, path) else {
        return false;
    };
    if text == written {
        *text = to.to_string();
        return true;
    }
    match text.strip_suffix(written) {
        Some(flag) if flag.ends_with('=') => {
            *text = format!("{flag}{to}");
            true
        }
        _ => false,
    }
}

/// The value at a field path as `online::discover` writes it: keys joined by `.`, sequence
/// indices as `[i]`.
fn at_path<'a>(mut value: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    for segment in path.split('.') {
        let (key, mut indices) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            value = value.get_mut(key)?;
        }
        while let Some(rest) = indices.strip_prefix('[') {
            let (index, after) = rest.split_once(']')?;
            value = value.get_mut(index.parse::<usize>().ok()?)?;
            indices = after;
        }
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci::{Digest, Reference};

    fn images() -> BundleImages {
        let mut images = BundleImages::default();
        images.add(
            &Reference::parse("docker.io/library/busybox:1.37").unwrap(),
            Digest::of(b"busybox"),
        );
        images.add(
            &Reference::parse("ghcr.io/cloudnative-pg/postgresql:17.6").unwrap(),
            Digest::of(b"pg"),
        );
        images
    }

    fn target() -> Target {
        Target {
            registry: "reg.site:5000".into(),
            prefix: Some("matrix".into()),
        }
    }

    const STREAM: &str = "\
---
# Source: app/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
        - name: wait
          image: busybox:1.37
      containers:
        - name: op
          image: docker.io/library/busybox:1.37
          args: [\"--postgres-image=ghcr.io/cloudnative-pg/postgresql:17.6\", \"-v\"]
          env:
            - name: SIDECAR_IMAGE
              value: busybox:1.37
---
# Source: app/templates/cluster.yaml
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: db
spec:
  imageName: ghcr.io/cloudnative-pg/postgresql:17.6
";

    #[test]
    fn every_image_field_is_pinned_and_the_rest_kept() {
        let (out, pinned) = post_render(STREAM, "app", &images(), &target()).unwrap();
        let busybox = format!(
            "reg.site:5000/matrix/library/busybox@{}",
            Digest::of(b"busybox")
        );
        let pg = format!(
            "reg.site:5000/matrix/cloudnative-pg/postgresql@{}",
            Digest::of(b"pg")
        );
        let docs = documents(&out).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].template, "app/templates/deploy.yaml");
        let pod = &docs[0].value["spec"]["template"]["spec"];
        assert_eq!(pod["initContainers"][0]["image"].as_str(), Some(&*busybox));
        assert_eq!(pod["containers"][0]["image"].as_str(), Some(&*busybox));
        assert_eq!(
            pod["containers"][0]["args"][0].as_str(),
            Some(&*format!("--postgres-image={pg}"))
        );
        assert_eq!(pod["containers"][0]["args"][1].as_str(), Some("-v"));
        assert_eq!(
            pod["containers"][0]["env"][0]["value"].as_str(),
            Some(&*busybox)
        );
        assert_eq!(docs[1].value["spec"]["imageName"].as_str(), Some(&*pg));
        assert_eq!(pinned.len(), 5);
        assert!(pinned
            .iter()
            .any(|p| p.object == "Cluster/db" && p.field == "spec.imageName"));
        // Pinning what is pinned changes nothing.
        let (again, _) = post_render(&out, "app", &images(), &target()).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn every_unknown_image_is_refused_naming_release_object_and_field() {
        let stream = STREAM
            .replace("image: busybox:1.37", "image: busybox:1.36")
            .replace("postgresql:17.6\n", "postgresql:18.0\n");
        let Err(PinError::Refused(refusals)) = post_render(&stream, "app", &images(), &target())
        else {
            panic!("refusal expected");
        };
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        let text = PinError::Refused(refusals.clone()).to_string();
        assert!(text.contains("release app"), "{text}");
        assert!(
            text.contains("Deployment/web")
                && text.contains("spec.template.spec.initContainers[0].image")
                && text.contains("busybox:1.36"),
            "{text}"
        );
        assert!(
            text.contains("Cluster/db") && text.contains("spec.imageName"),
            "{text}"
        );
    }

    #[test]
    fn only_references_change_in_the_text() {
        let stream = format!(
            "{STREAM}---\n# Source: app/templates/sts.yaml\nkind: StatefulSet\nmetadata:\n  name: s\n  \
             annotations: {{note: \"busybox:1.37-rc is not busybox:1.37x\"}}\nspec:\n  template:\n    \
             spec:\n      volumes: [{{name: k, secret: {{secretName: k, defaultMode: 0440}}}}]\n      \
             containers: [{{name: a, image: 'busybox:1.37'}}]\n"
        );
        let (out, _) = post_render(&stream, "app", &images(), &target()).unwrap();
        assert!(out.contains("defaultMode: 0440"), "{out}");
        assert!(
            out.contains("busybox:1.37-rc is not busybox:1.37x"),
            "{out}"
        );
        assert!(
            out.contains("image: 'reg.site:5000/matrix/library/busybox@sha256:"),
            "{out}"
        );
        // The same reference in a non-image field cannot be edited in place: refused.
        let clash = stream.replace("busybox:1.37-rc is not busybox:1.37x", "busybox:1.37");
        let Err(PinError::Refused(refusals)) = post_render(&clash, "app", &images(), &target())
        else {
            panic!("refusal expected");
        };
        assert_eq!(refusals[0].object, "StatefulSet/s");
        assert!(refusals[0].reason.contains("outside image fields"));
    }

    #[test]
    fn paths_resolve_keys_and_indices() {
        let mut v: Value = serde_norway::from_str("a:\n  b:\n    - [x, y]\n").unwrap();
        assert_eq!(
            at_path(&mut v, "a.b[0][1]").and_then(|v| v.as_str().map(String::from)),
            Some("y".to_string())
        );
        assert!(at_path(&mut v, "a.b[3]").is_none());
        assert!(at_path(&mut v, "a.c").is_none());
        assert!(!replace(&mut v, "a.b[0][0]", "z", "w"));
        assert!(replace(&mut v, "a.b[0][0]", "x", "w"));
    }
}
