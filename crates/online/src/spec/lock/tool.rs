//! One `[[tool]]` table of manifests.lock: a tool's binary for one platform, pinned twice
//! (the download's sha256 and the binary's).

use oci::Digest;
use serde::{Deserialize, Serialize};

use crate::spec::tools::{ToolDownload, ToolSpec};

/// One `[[tool]]` entry of manifests.lock: a tool's binary for one platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedTool {
    /// The tool's name.
    pub name: String,
    /// Its version, as tools.toml gives it.
    pub version: String,
    /// The platform, `os/arch[/variant]`.
    pub platform: String,
    /// Where it was downloaded from.
    pub url: String,
    /// The binary's path inside the archive, when the download is an archive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// sha256 of the download.
    pub download_sha256: Digest,
    /// sha256 of the binary.
    pub sha256: Digest,
    /// Size of the binary in bytes.
    pub size: u64,
}

impl LockedTool {
    /// Whether this entry was locked from `download` of `tool` (same name, version, platform,
    /// URL and member): a changed source needs locking again.
    pub fn matches(&self, tool: &ToolSpec, download: &ToolDownload) -> bool {
        self.name == tool.name
            && self.version == tool.version
            && self.platform == download.platform.to_string()
            && self.url == download.url
            && self.member == download.member
    }

    /// The binary's path in the bundle: `tools/<os>-<arch>[-<variant>]/<name>`.
    pub fn bundle_path(&self) -> String {
        format!("{}/{}", tools_dir(&self.platform), self.name)
    }
}

/// The bundle directory holding the tools for `platform` (`linux/amd64` ->
/// `tools/linux-amd64`).
pub fn tools_dir(platform: &str) -> String {
    format!("tools/{}", platform.replace('/', "-"))
}
