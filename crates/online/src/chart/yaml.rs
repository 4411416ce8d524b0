//! A deterministic YAML writer for `index.yaml`: block mappings with keys sorted, block
//! sequences, and every string double-quoted in JSON's escaping (valid YAML), so no value is
//! ever read back as a number, a boolean or a date.

use serde_json::Value;

/// `value` (a mapping) as a YAML document.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".to_string()),
        Value::Object(o) if o.is_empty() => Some("{}".to_string()),
        _ => None,
    }
}

/// A mapping key: plain when it cannot be read as anything but that string, else quoted.
fn key_text(key: &str) -> String {
    let plain = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        key.to_string()
    } else {
        Value::String(key.to_string()).to_string()
    }
}

/// Writes the lines of a block mapping or sequence at `indent` spaces.
fn write_value(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                let item = &map[key.as_str()];
                let key_text = key_text(key);
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}{key_text}: {text}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key_text}:\n"));
                        // Sequences sit at their key's indentation, as helm writes them.
                        let inner = if item.is_array() { indent } else { indent + 2 };
                        write_value(out, item, inner);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        // The item's first line follows the dash; the rest align with it.
                        let mut block = String::new();
                        write_value(&mut block, item, indent + 2);
                        let trimmed = block.trim_start_matches(' ');
                        out.push_str(&format!("{pad}- {trimmed}"));
                    }
                }
            }
        }
        other => {
            if let Some(text) = scalar(other) {
                out.push_str(&format!("{pad}{text}\n"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_round_trip_through_a_yaml_parser() {
        let value = serde_json::json!({
            "b": "1.0", "a": true, "on": 1, "a b": 2, "entries": {"x": [{"name": "x", "urls": ["x-1.tgz"],
            "maintainers": [{"name": "n", "email": "e"}], "tags": [], "n": 3}]},
            "text": "line\n\"quoted\" : # not a comment"
        });
        let text = to_yaml(&value);
        assert!(
            text.starts_with("a: true\n\"a b\": 2\nb: \"1.0\"\n"),
            "{text}"
        );
        assert!(text.contains("\n\"on\": 1\n"), "{text}");
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
