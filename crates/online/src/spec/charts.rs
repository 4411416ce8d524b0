//! `charts.toml`: the upstream charts the stack uses, pinned by version, written by hand.
//!
//! ```toml
//! [[chart]]
//! name = "cert-manager"
//! repo = "https://charts.jetstack.io"   # a classic chart repository (index.yaml)
//! version = "~1.19"                     # a SemVer range, the highest match is taken
//!
//! [[chart]]
//! name = "kube-prometheus-stack"
//! oci = "oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack"
//! version = "88.0.1"                    # an exact version (the OCI tag)
//! ```
//!
//! Rules, each reported as `FILE:LINE[:COLUMN]: message`: unknown keys are errors; each chart
//! has a name, exactly one of `repo` (http or https) and `oci` (whose last path component is
//! the chart's name, without tag or digest), and a `version`: a range for `repo`
//! (Cargo-style: `~1.19`, `^1.2`, `>=1.2, <2`, `1.19.*`; prereleases only when the range names
//! one), an exact version for `oci`; no chart is listed twice.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{line_of, read_text, Location, SpecError};
use oci::Reference;

/// A parsed and validated `charts.toml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartsFile {
    /// The file it was read from (used in messages).
    pub path: PathBuf,
    /// The charts, in file order.
    pub charts: Vec<UpstreamChart>,
}

/// One `[[chart]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamChart {
    /// The chart's name.
    pub name: String,
    /// Where it comes from.
    pub source: ChartSource,
    /// The version as written: a range for a repository, the exact version for OCI.
    pub version: String,
    /// Line of the entry's `name`.
    pub line: usize,
}

/// Where an upstream chart comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ChartSource {
    /// A classic chart repository, and the range of versions to choose from.
    Repo {
        /// The repository URL, without a trailing `/`.
        url: String,
        /// The versions acceptable.
        range: semver::VersionReq,
    },
    /// An OCI repository holding the chart.
    Oci {
        /// `oci://registry/repository`, normalised (no tag).
        repository: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    chart: Vec<RawChart>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChart {
    name: Spanned<String>,
    repo: Option<Spanned<String>>,
    oci: Option<Spanned<String>>,
    version: Spanned<String>,
}

impl ChartsFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ChartsFile, SpecError> {
        let text = read_text(path)?;
        ChartsFile::parse(&text, path)
    }

    /// Parses `text`; `path` names the file in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<ChartsFile, SpecError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path))?;
        let at = |span: std::ops::Range<usize>| Location::line(path, line_of(text, span.start));
        let mut charts: Vec<UpstreamChart> = Vec::with_capacity(raw.chart.len());
        for entry in raw.chart {
            let name = entry.name.get_ref().clone();
            let line = line_of(text, entry.name.span().start);
            if !valid_name(&name) {
                return Err(SpecError::invalid(
                    at(entry.name.span()),
                    format!(
                        "invalid chart name {name:?} (letters, digits, '-', '_' and '.', not \
                         starting with '.')"
                    ),
                ));
            }
            if let Some(first) = charts.iter().find(|c| c.name == name) {
                return Err(SpecError::invalid(
                    at(entry.name.span()),
                    format!("chart {name} listed twice (first at line {})", first.line),
                ));
            }
            let version = entry.version.get_ref().clone();
            let source = match (&entry.repo, &entry.oci) {
                (Some(repo), None) => {
                    let url = repo.get_ref().trim_end_matches('/').to_string();
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        return Err(SpecError::invalid(
                            at(repo.span()),
                            format!("repo {url:?} of chart {name} is not an http(s) URL"),
                        ));
                    }
                    let range = semver::VersionReq::parse(&version).map_err(|e| {
                        SpecError::invalid(
                            at(entry.version.span()),
                            format!("invalid version range {version:?} of chart {name}: {e}"),
                        )
                    })?;
                    ChartSource::Repo { url, range }
                }
                (None, Some(oci)) => {
                    let repository = oci_repository(oci.get_ref(), &name).map_err(|m| {
                        SpecError::invalid(at(oci.span()), format!("chart {name}: {m}"))
                    })?;
                    if Reference::parse(&format!("x.invalid/x:{}", oci_tag(&version))).is_err() {
                        return Err(SpecError::invalid(
                            at(entry.version.span()),
                            format!(
                                "version {version:?} of chart {name} is not a valid OCI tag \
                                 (an oci chart takes an exact version)"
                            ),
                        ));
                    }
                    ChartSource::Oci { repository }
                }
                _ => {
                    return Err(SpecError::invalid(
                        at(entry.name.span()),
                        format!("chart {name} needs exactly one of repo and oci"),
                    ))
                }
            };
            charts.push(UpstreamChart {
                name,
                source,
                version,
                line,
            });
        }
        Ok(ChartsFile {
            path: path.to_path_buf(),
            charts,
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The normalised `oci://registry/repository` of `written`, which must end in `/<name>`.
pub(crate) fn oci_repository(written: &str, name: &str) -> Result<String, String> {
    let rest = written
        .strip_prefix("oci://")
        .ok_or_else(|| format!("{written:?} does not start with oci://"))?;
    let last = rest.rsplit('/').next().unwrap_or(rest);
    if rest.contains('@') || last.contains(':') {
        return Err(format!(
            "{written:?} names a tag or digest (give the version in `version`)"
        ));
    }
    if last != name {
        return Err(format!(
            "{written:?} does not end in /{name} (helm pulls oci://REPO/NAME)"
        ));
    }
    let reference = Reference::parse(rest).map_err(|e| format!("{written:?}: {}", e.reason))?;
    Ok(format!("oci://{}", reference.name()))
}

/// The OCI tag of chart version `version`: helm writes `+` (build metadata) as `_`.
pub fn oci_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// A chart version as helm compares them: SemVer 2, with an optional leading `v`.
pub fn parse_version(text: &str) -> Option<semver::Version> {
    semver::Version::parse(text.strip_prefix('v').unwrap_or(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ChartsFile, SpecError> {
        ChartsFile::parse(text, Path::new("charts.toml"))
    }

    #[test]
    fn both_kinds_of_source_parse() {
        let file = parse(
            "[[chart]]\nname = \"cert-manager\"\nrepo = \"https://charts.jetstack.io/\"\n\
             version = \"~1.19\"\n\n[[chart]]\nname = \"gateway-helm\"\n\
             oci = \"oci://docker.io/envoyproxy/gateway-helm\"\nversion = \"v1.9.0\"\n",
        )
        .unwrap();
        assert_eq!(file.charts.len(), 2);
        assert_eq!(file.charts[0].line, 2);
        match &file.charts[0].source {
            ChartSource::Repo { url, range } => {
                assert_eq!(url, "https://charts.jetstack.io");
                assert!(range.matches(&semver::Version::new(1, 19, 4)));
                assert!(!range.matches(&semver::Version::new(1, 20, 0)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            file.charts[1].source,
            ChartSource::Oci {
                repository: "oci://docker.io/envoyproxy/gateway-helm".into()
            }
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let cases = [
            ("[[chart]]\nname = \"a\"\nrepo = \"https://r\"\nversion = \"1\"\nextra = 1\n", "charts.toml:5:1: ", "unknown field"),
            ("[[chart]]\nname = \"a\"\nversion = \"1\"\n", "charts.toml:2: ", "exactly one of"),
            ("[[chart]]\nname = \"a\"\nrepo = \"ftp://r\"\nversion = \"1\"\n", "charts.toml:3: ", "http(s)"),
            ("[[chart]]\nname = \"a\"\nrepo = \"https://r\"\nversion = \"~x\"\n", "charts.toml:4: ", "range"),
            ("[[chart]]\nname = \"a\"\noci = \"oci://ghcr.io/x/b\"\nversion = \"1.0.0\"\n", "charts.toml:3: ", "does not end in /a"),
            ("[[chart]]\nname = \"a\"\noci = \"oci://ghcr.io/x/a:1\"\nversion = \"1.0.0\"\n", "charts.toml:3: ", "tag or digest"),
            ("[[chart]]\nname = \"a\"\noci = \"oci://ghcr.io/x/a\"\nversion = \"~1\"\n", "charts.toml:4: ", "exact version"),
            ("[[chart]]\nname = \"a\"\nrepo = \"https://r\"\nversion = \"1\"\n[[chart]]\nname = \"a\"\nrepo = \"https://r\"\nversion = \"1\"\n", "charts.toml:6: ", "listed twice (first at line 2)"),
        ];
        for (text, location, message) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.starts_with(location), "{error}");
            assert!(error.contains(message), "{error}");
        }
    }
}
