//! One `[[clamav]]` table of manifests.lock: a validated ClamAV signature database.

use oci::Digest;
use serde::{Deserialize, Serialize};

/// One `[[clamav]]` entry of manifests.lock: a validated database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedDatabase {
    /// The file name (`main.cvd`, `daily.cvd`, `custom.cud`).
    pub file: String,
    /// Where it was taken from.
    pub url: String,
    /// The database version from its header.
    pub version: u32,
    /// Number of signatures.
    pub signatures: u32,
    /// Minimum engine functionality level.
    pub functionality_level: u32,
    /// Build time, seconds since the epoch.
    pub build_time: u64,
    /// sha256 of the file.
    pub sha256: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// sha256 of `<file>.sign`, when the source has one (verified at lock time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_sha256: Option<Digest>,
    /// Size of `<file>.sign`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_size: Option<u64>,
}

impl LockedDatabase {
    /// The URL of the `.sign` file beside the database.
    pub fn sign_url(&self) -> String {
        format!("{}.sign", self.url)
    }

    /// The database's name: its file name without extension (`daily`).
    pub fn name(&self) -> &str {
        self.file
            .rsplit_once('.')
            .map_or(self.file.as_str(), |(stem, _)| stem)
    }

    /// `name-version` of the database (`daily-27500`), for tags and messages.
    pub fn label(&self) -> String {
        format!("{}-{}", self.name(), self.version)
    }
}
