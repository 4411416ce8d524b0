//! The site file as the deploy reads it: its profile and the switches that turn parts of the
//! stack on and off, over the chart's defaults and the profile file.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::DeployError;

/// A site file, read.
#[derive(Debug, Clone)]
pub struct Site {
    /// Where it was read from.
    pub path: PathBuf,
    /// The scale profile it names (`profile`).
    pub profile: String,
    /// Its values as written.
    pub values: Value,
    /// The digest of the bytes read (the journal records which site file a deploy ran).
    pub digest: oci::Digest,
}

impl Site {
    /// Reads the site file at `path`; it must be a YAML mapping naming a `profile`.
    pub fn read(path: &Path) -> Result<Site, DeployError> {
        let text = oci::files::read_capped_to_string(path, oci::files::INPUT_FILE_LIMIT)
            .map_err(|e| DeployError::io(path, e))?;
        let invalid = |message: String| DeployError::Site {
            path: path.to_path_buf(),
            message,
        };
        let values: Value = serde_norway::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        if !values.is_mapping() {
            return Err(invalid("the site file is not a YAML mapping".into()));
        }
        let profile = match values.get("profile") {
            Some(Value::String(p)) if !p.is_empty() => p.clone(),
            Some(other) => {
                return Err(invalid(format!(
                    "profile must be a string such as \"1k\", not {}",
                    serde_norway::to_string(other).unwrap_or_default().trim()
                )))
            }
            None => return Err(invalid("missing property 'profile'".into())),
        };
        Ok(Site {
            path: path.to_path_buf(),
            profile,
            values,
            digest: oci::Digest::of(text.as_bytes()),
        })
    }

    /// The homeserver's name (`serverName`), if the file sets one.
    pub fn server_name(&self) -> Option<&str> {
        self.values.get("serverName").and_then(Value::as_str)
    }

    /// `https://<hosts.matrix>.<domain>`, the homeserver's client URL (the chart's default
    /// host label is `matrix`), if the file sets a `domain`.
    pub fn matrix_url(&self) -> Option<String> {
        self.host_url("matrix", "matrix")
    }

    /// `https://<hosts.admin>.<domain>`, where the chart serves the admin API (default label
    /// `admin`), if the file sets a `domain`.
    pub fn admin_url(&self) -> Option<String> {
        self.host_url("admin", "admin")
    }

    /// `https://<hosts.KEY or DEFAULT>.<domain>`.
    fn host_url(&self, key: &str, default: &str) -> Option<String> {
        let domain = self.values.get("domain").and_then(Value::as_str)?;
        let label = self
            .values
            .get("hosts")
            .and_then(|h| h.get(key))
            .and_then(Value::as_str)
            .unwrap_or(default);
        Some(format!("https://{label}.{domain}"))
    }
}

/// The boolean at dotted `path` of `values`; a missing or non-boolean value is false.
pub fn switch(values: &Value, path: &str) -> bool {
    let mut here = values;
    for key in path.split('.') {
        match here.get(key) {
            Some(next) => here = next,
            None => return false,
        }
    }
    here.as_bool().unwrap_or(false)
}

/// An empty values mapping.
pub fn empty() -> Value {
    Value::Mapping(Mapping::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_read_booleans_of_merged_values() {
        let mut base: Value =
            serde_norway::from_str("a: {b: 1, c: [1, 2]}\nmonitoring: {enabled: false}\n").unwrap();
        let over: Value =
            serde_norway::from_str("a: {c: [3]}\nmonitoring: {enabled: true}\nx: y\n").unwrap();
        capacity::merge(&mut base, over);
        assert_eq!(base["a"]["b"].as_i64(), Some(1));
        assert_eq!(base["a"]["c"].as_sequence().map(Vec::len), Some(1));
        assert!(switch(&base, "monitoring.enabled"));
        assert!(!switch(&base, "x"));
        assert!(!switch(&base, "turn.enabled"));
    }

    #[test]
    fn site_files_need_a_profile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(&path, "serverName: x\n").unwrap();
        let e = Site::read(&path).unwrap_err().to_string();
        assert!(e.contains("site.yaml") && e.contains("profile"), "{e}");
        std::fs::write(&path, "profile: 1000\n").unwrap();
        let e = Site::read(&path).unwrap_err().to_string();
        assert!(e.contains("1000"), "{e}");
        std::fs::write(&path, "profile: \"1k\"\n").unwrap();
        assert_eq!(Site::read(&path).unwrap().profile, "1k");
        assert_eq!(Site::read(&path).unwrap().matrix_url(), None);
        std::fs::write(
            &path,
            "profile: 1k\nserverName: example.org\ndomain: chat.example.org\n",
        )
        .unwrap();
        let site = Site::read(&path).unwrap();
        assert_eq!(site.server_name(), Some("example.org"));
        assert_eq!(
            site.matrix_url().as_deref(),
            Some("https://matrix.chat.example.org")
        );
        assert_eq!(
            site.admin_url().as_deref(),
            Some("https://admin.chat.example.org")
        );
        std::fs::write(&path, "profile: 1k\ndomain: d.org\nhosts: {matrix: hs}\n").unwrap();
        assert_eq!(
            Site::read(&path).unwrap().matrix_url().as_deref(),
            Some("https://hs.d.org")
        );
    }
}
