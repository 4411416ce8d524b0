//! `files.toml`: files the site needs besides images (a mobile client the site builds,
//! documentation, a trust profile for phones), each carried as `files/<name>`.
//!
//! ```toml
//! image = "docker.io/vectorim/element-web:v1.12.36"  # optional: the web image the download
//!                                                    # page rides on (an image of images.toml)
//!
//! [[file]]
//! name = "element-x.apk"                     # the file's name in the bundle and on the page
//! source = "dist/element-x-25.11.apk"         # a path (relative to files.toml), or a
//!                                             # file://, http:// or https:// URL
//! description = "Element X for Android, built by the site"
//! ```
//!
//! `bundle lock` pins each file's SHA-256 and size in manifests.lock (`[[file]]`); the build
//! reads each source again and refuses one whose content changed since. Rules, reported as
//! `FILE:LINE:COLUMN: message`: unknown keys are errors; names are unique, `[A-Za-z0-9._-]`,
//! not starting with a dot; sources are non-empty.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{line_of, read_text, Location, SpecError};

/// A parsed and validated `files.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesFile {
    /// The file it was read from.
    pub path: PathBuf,
    /// The files, in file order.
    pub files: Vec<FileSpec>,
    /// The web image the download page is built on (`image = ...`) and its line.
    pub image: Option<(String, usize)>,
}

/// One `[[file]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Its name in the bundle (`files/<name>`) and on the download page.
    pub name: String,
    /// Where it comes from, as written.
    pub source: String,
    /// What it is, for the download page.
    pub description: String,
    /// Line of `name`.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    image: Option<Spanned<String>>,
    #[serde(default)]
    file: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    source: Spanned<String>,
    #[serde(default)]
    description: String,
}

impl FilesFile {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<FilesFile, SpecError> {
        let text = read_text(path)?;
        FilesFile::parse(&text, path)
    }

    /// Parses and validates `text`; `path` names the file in messages.
    pub fn parse(text: &str, path: &Path) -> Result<FilesFile, SpecError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path))?;
        let at = |span: std::ops::Range<usize>| Location::at_offset(path, text, span.start);
        let mut files: Vec<FileSpec> = Vec::new();
        for entry in raw.file {
            let name = entry.name.get_ref().clone();
            let valid = !name.is_empty()
                && !name.starts_with('.')
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid {
                return Err(SpecError::invalid(
                    at(entry.name.span()),
                    format!(
                        "file name {name:?} must be letters, digits, '.', '_' and '-', not \
                         starting with '.'"
                    ),
                ));
            }
            if let Some(first) = files.iter().find(|f| f.name == name) {
                return Err(SpecError::invalid(
                    at(entry.name.span()),
                    format!(
                        "file {name:?} is listed twice (first at line {})",
                        first.line
                    ),
                ));
            }
            if entry.source.get_ref().trim().is_empty() {
                return Err(SpecError::invalid(
                    at(entry.source.span()),
                    format!("file {name:?} has an empty source"),
                ));
            }
            files.push(FileSpec {
                name,
                source: entry.source.into_inner(),
                description: entry.description,
                line: line_of(text, entry.name.span().start),
            });
        }
        let image = raw
            .image
            .map(|i| (i.get_ref().clone(), line_of(text, i.span().start)));
        Ok(FilesFile {
            path: path.to_path_buf(),
            files,
            image,
        })
    }

    /// `spec`'s source as a URL: a path is taken relative to this file's directory and
    /// becomes `file://`.
    pub fn source_url(&self, spec: &FileSpec) -> String {
        let source = &spec.source;
        if ["http://", "https://", "file://"]
            .iter()
            .any(|s| source.starts_with(s))
        {
            return source.clone();
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        format!("file://{}", base.join(source).display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FilesFile, String> {
        FilesFile::parse(text, Path::new("site/files.toml")).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
[[file]]
name = "element-x.apk"
source = "dist/element-x.apk"
description = "Element X for Android"

[[file]]
name = "guide.pdf"
source = "https://docs.example/guide.pdf"
"#;

    #[test]
    fn parses_files_and_resolves_sources() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.files.len(), 2);
        assert_eq!(file.files[0].line, 3);
        assert_eq!(file.files[1].description, "");
        assert_eq!(
            file.source_url(&file.files[0]),
            "file://site/dist/element-x.apk"
        );
        assert_eq!(
            file.source_url(&file.files[1]),
            "https://docs.example/guide.pdf"
        );
    }

    #[test]
    fn the_web_image_is_read_with_its_line() {
        assert_eq!(parse(GOOD).unwrap().image, None);
        let with = format!("# the page\nimage = \"docker.io/vectorim/element-web:v1\"\n{GOOD}");
        assert_eq!(
            parse(&with).unwrap().image,
            Some(("docker.io/vectorim/element-web:v1".to_string(), 2))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let twice = GOOD.replace("guide.pdf\"\nsource", "element-x.apk\"\nsource");
        assert_eq!(
            parse(&twice).unwrap_err(),
            "site/files.toml:8:8: file \"element-x.apk\" is listed twice (first at line 3)"
        );
        let hidden = GOOD.replace("\"guide.pdf\"", "\".profile\"");
        assert!(parse(&hidden)
            .unwrap_err()
            .starts_with("site/files.toml:8:8: file name \".profile\""));
        let slash = GOOD.replace("\"guide.pdf\"", "\"../x\"");
        assert!(parse(&slash).unwrap_err().contains("file name \"../x\""));
        let empty = GOOD.replace("\"dist/element-x.apk\"", "\" \"");
        assert!(parse(&empty).unwrap_err().contains("empty source"));
        let unknown = GOOD.replace("description =", "sha256 =");
        assert!(parse(&unknown).unwrap_err().contains("site/files.toml:5"));
    }
}
