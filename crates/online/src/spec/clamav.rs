//! The `[clamav]` table of images.toml: which ClamAV image the signature databases are added
//! to, which databases, and where they come from.
//!
//! ```toml
//! [clamav]
//! image = "docker.io/clamav/clamav:1.4_base"   # one of the [[images]]; gets a database layer
//! databases = ["main", "daily", "bytecode"]     # default
//! dir = "/srv/cvdupdate/database"               # the directory Cisco's cvdupdate keeps, or
//! # mirror = "https://clamav.corp.example/"     # a private mirror (never the public CDN)
//! cert_dir = "/etc/clamav/certs"                # trusted roots for .sign files (optional)
//! allow_unsigned = false                        # accept .cud databases (local builds only)
//! certificates_valid_at = "2026-06-01T00:00:00Z" # check .sign certificates as of this time
//!                                               # (re-locking an archived set; default now)
//! ```
//!
//! `dir` is relative to images.toml. The command line (`--clamav-dir`, `--clamav-mirror`)
//! overrides the source; without any, the lock's recorded URLs are used.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{line_of, Location, SpecError};
use oci::Reference;

/// The parsed `[clamav]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClamavSpec {
    /// The ClamAV image (normalised) that the database layer is added to.
    pub image: Reference,
    /// Database names, without extension (`main`, `daily`, `bytecode`).
    pub databases: Vec<String>,
    /// Where the databases come from: a `file://` directory URL or an `http(s)://` mirror,
    /// ending in `/`.
    pub source: Option<String>,
    /// Trusted certificates for `.sign` files.
    pub cert_dir: Option<PathBuf>,
    /// Whether unsigned `.cud` databases are accepted.
    pub allow_unsigned: bool,
    /// The time `.sign` certificates must be valid at; `None` is the time of locking.
    pub certificates_valid_at: Option<std::time::SystemTime>,
    /// Line of `image`.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClamav {
    image: Spanned<String>,
    databases: Option<Spanned<Vec<String>>>,
    dir: Option<Spanned<String>>,
    mirror: Option<Spanned<String>>,
    cert_dir: Option<String>,
    #[serde(default)]
    allow_unsigned: bool,
    certificates_valid_at: Option<Spanned<String>>,
}

/// The source URL of a database directory: `file:///abs/dir/`.
pub fn dir_url(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let text = absolute.display().to_string();
    format!("file://{}/", text.trim_end_matches('/'))
}

/// A mirror URL with exactly one trailing `/`.
pub fn mirror_url(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

impl RawClamav {
    /// Validates the table of `path` (whose text is `text`): a listed image, simple unique
    /// database names, at most one source.
    pub(crate) fn convert(
        &self,
        text: &str,
        path: &Path,
        listed: &[Reference],
    ) -> Result<ClamavSpec, SpecError> {
        let at = |offset: usize| Location::line(path, line_of(text, offset));
        let image = Reference::parse(self.image.get_ref())
            .map_err(|e| SpecError::invalid(at(self.image.span().start), e.to_string()))?;
        if !listed.contains(&image) {
            return Err(SpecError::invalid(
                at(self.image.span().start),
                format!("[clamav] image {image} is not one of the [[images]]"),
            ));
        }
        let databases = match &self.databases {
            Some(list) => {
                let names = list.get_ref().clone();
                for (i, name) in names.iter().enumerate() {
                    let simple = !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !simple || names[..i].contains(name) {
                        return Err(SpecError::invalid(
                            at(list.span().start),
                            format!("database name {name:?} is empty, not simple, or listed twice"),
                        ));
                    }
                }
                if names.is_empty() {
                    return Err(SpecError::invalid(at(list.span().start), "no databases"));
                }
                names
            }
            None => ["main", "daily", "bytecode"].map(String::from).to_vec(),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let source = match (&self.dir, &self.mirror) {
            (Some(_), Some(mirror)) => {
                return Err(SpecError::invalid(
                    at(mirror.span().start),
                    "[clamav] takes dir or mirror, not both",
                ))
            }
            (Some(dir), None) => Some(dir_url(&base.join(dir.get_ref()))),
            (None, Some(mirror)) => {
                let url = mirror.get_ref();
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(SpecError::invalid(
                        at(mirror.span().start),
                        format!("mirror {url:?} is not an http(s):// URL"),
                    ));
                }
                Some(mirror_url(url))
            }
            (None, None) => None,
        };
        let certificates_valid_at = match &self.certificates_valid_at {
            Some(text) => Some(
                oci::time::parse_rfc3339(text.get_ref())
                    .map(|secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                    .ok_or_else(|| {
                        SpecError::invalid(
                            at(text.span().start),
                            format!(
                                "certificates_valid_at {:?} is not an RFC 3339 UTC time",
                                text.get_ref()
                            ),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(ClamavSpec {
            image,
            databases,
            source,
            cert_dir: self.cert_dir.as_ref().map(|d| base.join(d)),
            allow_unsigned: self.allow_unsigned,
            certificates_valid_at,
            line: line_of(text, self.image.span().start),
        })
    }
}
