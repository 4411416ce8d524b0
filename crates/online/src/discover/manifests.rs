//! Splits `helm template` output into documents, each with the template it came from (the
//! `# Source: CHART/templates/x.yaml` comment helm writes at the top of every document).

use serde::Deserialize;
use serde_norway::Value;

/// Template name for a document helm gave no `# Source:` line.
const UNKNOWN_TEMPLATE: &str = "(unknown template)";

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The template path from the `# Source:` line.
    pub template: String,
    /// The parsed object.
    pub value: Value,
}

/// A document that does not parse: its template and the parser's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDocument {
    /// The template path from the `# Source:` line.
    pub template: String,
    /// What the YAML parser said.
    pub message: String,
}

/// The objects of `output`, in order, with YAML merge keys (`<<: *anchor`) applied; empty
/// and null documents are dropped.
pub fn documents(output: &str) -> Result<Vec<Document>, BadDocument> {
    let mut out = Vec::new();
    for chunk in chunks(output) {
        let template = chunk
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .unwrap_or(UNKNOWN_TEMPLATE)
            .trim()
            .to_string();
        for document in serde_norway::Deserializer::from_str(chunk) {
            let bad = |e: serde_norway::Error| BadDocument {
                template: template.clone(),
                message: e.to_string(),
            };
            let mut value = Value::deserialize(document).map_err(bad)?;
            value.apply_merge().map_err(bad)?;
            if !value.is_null() {
                out.push(Document {
                    template: template.clone(),
                    value,
                });
            }
        }
    }
    Ok(out)
}

/// The text between `---` separator lines. A separator cannot occur inside a block scalar of
/// a document (its lines are indented), so splitting on them is exact for helm's output.
pub fn chunks(output: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in output.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare.starts_with("--- ") {
            out.push(&output[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    out.push(&output[start..]);
    out.retain(|c| !c.trim().is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_source() {
        let output = "---\n# Source: app/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\ndata:\n  x: |\n    ---\n    inner\n---\n# Source: app/templates/empty.yaml\n---\n# Source: app/charts/db/templates/b.yaml\nkind: Secret\n";
        let docs = documents(output).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].template, "app/templates/a.yaml");
        assert_eq!(
            docs[0]
                .value
                .get("data")
                .and_then(|d| d.get("x"))
                .and_then(Value::as_str),
            Some("---\ninner\n")
        );
        assert_eq!(docs[1].template, "app/charts/db/templates/b.yaml");
        assert_eq!(
            docs[1].value.get("kind").and_then(Value::as_str),
            Some("Secret")
        );
    }

    #[test]
    fn merge_keys_are_applied() {
        let output = "# Source: app/templates/m.yaml\nbase: &base {image: \"a:1\"}\nc:\n  - <<: *base\n    name: x\n";
        let docs = documents(output).unwrap();
        let item = docs[0].value.get("c").and_then(|c| c.get(0));
        assert_eq!(
            item.and_then(|i| i.get("image")).and_then(Value::as_str),
            Some("a:1")
        );
    }

    #[test]
    fn bad_yaml_names_its_template() {
        let output = "---\n# Source: app/templates/ok.yaml\nkind: A\n---\n# Source: app/templates/bad.yaml\nkind: [\n";
        let bad = documents(output).unwrap_err();
        assert_eq!(bad.template, "app/templates/bad.yaml");
        assert!(!bad.message.is_empty());
        let bad = documents("kind: [\n").unwrap_err();
        assert_eq!(bad.template, UNKNOWN_TEMPLATE);
    }
}
