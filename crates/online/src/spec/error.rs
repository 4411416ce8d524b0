//! Errors of the spec files, and where in a file they are.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A place in a spec file: the file, a 1-based line and, where meaningful, a 1-based column
/// (counted in characters). Displays as `FILE:LINE:COLUMN`, `FILE:LINE`, or `FILE` when the
/// line is unknown (0), as for entries built in memory rather than parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it was named to the loader.
    pub path: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, if it adds anything to the line.
    pub column: Option<usize>,
}

impl Location {
    /// A location at `line` of `path`, without a column.
    pub fn line(path: &Path, line: usize) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column: None,
        }
    }

    /// The line and column of byte `offset` in `text` (clamped to the text).
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Location {
        let (line, column) = line_column(text, offset);
        Location {
            path: path.to_path_buf(),
            line,
            column: Some(column),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        Ok(())
    }
}

/// The 1-based line and 1-based character column of byte `offset` in `text`. An offset past
/// the end, or inside a multi-byte character, is moved back to the nearest character start.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    line_column(text, offset).0
}

/// Why a spec file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file does not parse, or parses but breaks a rule; the message says which.
    /// A profile was asked for that the render plan does not define.
    #[error("profile {profile:?} is not in {} (known: {known})", plan.display())]
    UnknownProfile {
        /// The profile asked for.
        profile: String,
        /// The render plan.
        plan: PathBuf,
        /// The profiles the plan defines, comma-separated.
        known: String,
    },
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong, without the location.
        message: String,
    },
}

impl SpecError {
    /// An [`SpecError::Invalid`] at `location`.
    pub fn invalid(location: Location, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            location,
            message: message.into(),
        }
    }

    /// The location of an [`SpecError::Invalid`], `None` for read errors.
    pub fn location(&self) -> Option<&Location> {
        match self {
            SpecError::Read { .. } | SpecError::UnknownProfile { .. } => None,
            SpecError::Invalid { location, .. } => Some(location),
        }
    }

    /// A TOML syntax or shape error (`toml` reports the byte span) at its line and column.
    pub(crate) fn from_toml(error: &toml::de::Error, text: &str, path: &Path) -> SpecError {
        let location = match error.span() {
            Some(Range { start, .. }) => Location::at_offset(path, text, start),
            None => Location::line(path, 0),
        };
        SpecError::invalid(location, error.message().trim_end().to_string())
    }
}

/// Reads a spec file as UTF-8 text (at most [`oci::files::INPUT_FILE_LIMIT`] bytes).
pub(crate) fn read_text(path: &Path) -> Result<String, SpecError> {
    oci::files::read_capped_to_string(path, oci::files::INPUT_FILE_LIMIT).map_err(|source| {
        SpecError::Read {
            path: path.to_path_buf(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "ab\ncdé\nfg";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        // After the two-byte 'é': column counts characters, not bytes.
        assert_eq!(line_column(text, 7), (2, 4));
        // Inside 'é' moves back to its start; past the end clamps.
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 100), (3, 3));
    }

    #[test]
    fn locations_display_as_file_line_column() {
        let path = Path::new("images.toml");
        assert_eq!(Location::line(path, 12).to_string(), "images.toml:12");
        assert_eq!(
            Location::at_offset(path, "a\n  b", 4).to_string(),
            "images.toml:2:3"
        );
        assert_eq!(Location::line(path, 0).to_string(), "images.toml");
    }
}
