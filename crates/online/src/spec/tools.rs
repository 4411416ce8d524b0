//! `tools.toml`: the binaries the installer runs offline (helm, kubectl), each with one
//! download per target platform.
//!
//! ```toml
//! [[tool]]
//! name = "helm"
//! version = "4.1.4"
//!
//! [[tool.download]]
//! platform = "linux/amd64"
//! url = "https://get.helm.sh/helm-v4.1.4-linux-amd64.tar.gz"
//! member = "linux-amd64/helm"     # the binary inside a .tar.gz; leave out for a bare binary
//! ```
//!
//! Rules, reported as `FILE:LINE[:COLUMN]: message`: unknown keys are errors; names are
//! unique and simple (`[a-z0-9-]`); each tool has a version and at least one download; no
//! platform twice per tool; URLs are `http(s)://` or `file://`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{line_of, read_text, Location, SpecError};
use oci::Platform;

/// A parsed and validated `tools.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolsFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The tools, in file order.
    pub tools: Vec<ToolSpec>,
}

/// One `[[tool]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    /// The command name, also the file name in the bundle.
    pub name: String,
    /// Its version, recorded in the lock.
    pub version: String,
    /// Where each platform's binary comes from.
    pub downloads: Vec<ToolDownload>,
    /// Line of `name`.
    pub line: usize,
}

/// One `[[tool.download]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDownload {
    /// The platform the binary runs on.
    pub platform: Platform,
    /// Where to download it.
    pub url: String,
    /// The binary's path inside a `.tar.gz`, or `None` when the URL is the binary itself.
    pub member: Option<String>,
    /// Line of `platform`.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tool: Vec<RawTool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: Spanned<String>,
    version: Spanned<String>,
    #[serde(default)]
    download: Vec<RawDownload>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDownload {
    platform: Spanned<String>,
    url: Spanned<String>,
    member: Option<Spanned<String>>,
}

impl ToolsFile {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<ToolsFile, SpecError> {
        let text = read_text(path)?;
        ToolsFile::parse(&text, path)
    }

    /// Parses and validates `text`; `path` names the file in messages.
    pub fn parse(text: &str, path: &Path) -> Result<ToolsFile, SpecError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path))?;
        let at = |span: std::ops::Range<usize>| Location::at_offset(path, text, span.start);
        let mut tools: Vec<ToolSpec> = Vec::new();
        for tool in raw.tool {
            let name = tool.name.get_ref().clone();
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(SpecError::invalid(
                    at(tool.name.span()),
                    format!("tool name {name:?} must be lowercase letters, digits and '-'"),
                ));
            }
            if let Some(first) = tools.iter().find(|t| t.name == name) {
                return Err(SpecError::invalid(
                    at(tool.name.span()),
                    format!(
                        "tool {name:?} is listed twice (first at line {})",
                        first.line
                    ),
                ));
            }
            if tool.version.get_ref().trim().is_empty() {
                return Err(SpecError::invalid(
                    at(tool.version.span()),
                    format!("tool {name:?} has an empty version"),
                ));
            }
            if tool.download.is_empty() {
                return Err(SpecError::invalid(
                    at(tool.name.span()),
                    format!("tool {name:?} has no [[tool.download]]"),
                ));
            }
            let mut downloads: Vec<ToolDownload> = Vec::new();
            for download in tool.download {
                let platform = download
                    .platform
                    .get_ref()
                    .parse::<Platform>()
                    .map_err(|e| SpecError::invalid(at(download.platform.span()), e.to_string()))?;
                if downloads.iter().any(|d| d.platform == platform) {
                    return Err(SpecError::invalid(
                        at(download.platform.span()),
                        format!("tool {name:?} lists platform {platform} twice"),
                    ));
                }
                let url = download.url.get_ref().clone();
                if !["http://", "https://", "file://"]
                    .iter()
                    .any(|s| url.starts_with(s))
                {
                    return Err(SpecError::invalid(
                        at(download.url.span()),
                        format!("{url:?} is not an http://, https:// or file:// URL"),
                    ));
                }
                downloads.push(ToolDownload {
                    platform,
                    url,
                    member: download.member.map(Spanned::into_inner),
                    line: line_of(text, download.platform.span().start),
                });
            }
            tools.push(ToolSpec {
                name,
                version: tool.version.into_inner(),
                downloads,
                line: line_of(text, tool.name.span().start),
            });
        }
        Ok(ToolsFile {
            path: path.to_path_buf(),
            tools,
        })
    }

    /// Checks that every tool has a download for each of `platforms` (the bundle's target
    /// platforms), naming the first tool and platform without one.
    pub fn check_platforms(&self, platforms: &[Platform]) -> Result<(), SpecError> {
        for tool in &self.tools {
            for platform in platforms {
                if !tool.downloads.iter().any(|d| d.platform == *platform) {
                    return Err(SpecError::invalid(
                        Location::line(&self.path, tool.line),
                        format!(
                            "tool {:?} has no download for target platform {platform}",
                            tool.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ToolsFile, String> {
        ToolsFile::parse(text, Path::new("tools.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[[tool]]
name = "helm"
version = "4.1.4"

[[tool.download]]
platform = "linux/amd64"
url = "https://get.helm.sh/helm-v4.1.4-linux-amd64.tar.gz"
member = "linux-amd64/helm"

[[tool.download]]
platform = "linux/arm64"
url = "https://get.helm.sh/helm-v4.1.4-linux-arm64.tar.gz"
member = "linux-arm64/helm"
"#;

    #[test]
    fn parses_tools_and_downloads() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.tools.len(), 1);
        let helm = &file.tools[0];
        assert_eq!(
            (helm.name.as_str(), helm.version.as_str()),
            ("helm", "4.1.4")
        );
        assert_eq!(helm.downloads[1].platform.to_string(), "linux/arm64");
        assert_eq!(
            helm.downloads[0].member.as_deref(),
            Some("linux-amd64/helm")
        );
        assert_eq!(helm.downloads[0].line, 7);
    }

    #[test]
    fn errors_name_the_line() {
        let twice = GOOD.replace("linux/arm64", "linux/amd64");
        assert_eq!(
            parse(&twice).unwrap_err(),
            "tools.toml:12:12: tool \"helm\" lists platform linux/amd64 twice"
        );
        let bad_url = GOOD.replace("https://get.helm.sh/helm-v4.1.4-linux-arm64", "ftp://x");
        assert!(parse(&bad_url)
            .unwrap_err()
            .starts_with("tools.toml:13:7: \"ftp://x.tar.gz\""));
        let unknown = GOOD.replace("member = \"linux-arm64/helm\"", "sha = \"x\"");
        assert!(parse(&unknown).unwrap_err().contains("tools.toml:14"));
        let name = GOOD.replace("\"helm\"", "\"Helm\"");
        assert!(parse(&name)
            .unwrap_err()
            .starts_with("tools.toml:3:8: tool name"));
    }

    #[test]
    fn every_target_platform_needs_a_download() {
        let file = parse(GOOD).unwrap();
        let s390: Platform = "linux/s390x".parse().unwrap();
        let err = file.check_platforms(&[s390]).unwrap_err().to_string();
        assert_eq!(
            err,
            "tools.toml:3: tool \"helm\" has no download for target platform linux/s390x"
        );
    }
}
