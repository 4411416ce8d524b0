//! One `[[file]]` table of manifests.lock: a file of files.toml, pinned by SHA-256.

use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::spec::files::FileSpec;

/// One `[[file]]` entry of manifests.lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedFile {
    /// Its name (`files/<name>` in the bundle).
    pub name: String,
    /// Its source, as files.toml gives it.
    pub source: String,
    /// sha256 of the content.
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
}

impl LockedFile {
    /// Whether this entry was locked from `spec` (same name and source): a changed source
    /// needs locking again.
    pub fn matches(&self, spec: &FileSpec) -> bool {
        self.name == spec.name && self.source == spec.source
    }

    /// Its path in the bundle: `files/<name>`.
    pub fn bundle_path(&self) -> String {
        format!("{FILES_DIR}/{}", self.name)
    }
}

/// The bundle directory holding the site's files.
pub const FILES_DIR: &str = "files";
