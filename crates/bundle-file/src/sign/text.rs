//! Line and base64 handling shared by the three minisign text formats.
//!
//! The minisign C tool reads each line with `fgets` and then cuts it at the
//! first `\r` or `\n`; [`lines`] does the same, so a file with CRLF line
//! endings reads as it does for the tool. Base64 is the standard alphabet
//! with canonical padding (libsodium's `sodium_base64_VARIANT_ORIGINAL`).

use std::fs;
use std::io::Read;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::{CommentKind, FileKind, SignError};

/// Prefix of the first line of every minisign file.
pub(crate) const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
/// Prefix of the third line of a signature file.
pub(crate) const TRUSTED_PREFIX: &str = "trusted comment: ";

/// Longest untrusted comment, in bytes, that the minisign tool reads back
/// whole: it reads the line into a 1024-byte buffer (prefix, comment,
/// newline and the terminating NUL must fit).
pub const MAX_UNTRUSTED_COMMENT_BYTES: usize = 1024 - UNTRUSTED_PREFIX.len() - 2;
/// Longest trusted comment, in bytes, that the minisign tool accepts (its
/// buffer is 8192 bytes; it refuses to sign longer ones).
pub const MAX_TRUSTED_COMMENT_BYTES: usize = 8192 - TRUSTED_PREFIX.len() - 2;

/// Upper bound for the size of any minisign file we read (the largest
/// legitimate one, a signature with a maximal trusted comment, is < 9 KiB).
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Splits `text` into lines the way the minisign tool reads them: each line
/// ends at `\n` and is cut at its first `\r`. Trailing empty lines are
/// dropped, so a final newline (or none) makes no difference.
pub(crate) fn lines(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .split('\n')
        .map(|line| line.split('\r').next().unwrap_or(""))
        .collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Returns line `number` (1-based) of `lines`, or [`SignError::MissingLine`]
/// when it is absent or empty.
pub(crate) fn required_line<'a>(
    lines: &[&'a str],
    number: usize,
    kind: FileKind,
    expected: &'static str,
) -> Result<&'a str, SignError> {
    match lines.get(number - 1) {
        Some(line) if !line.is_empty() => Ok(line),
        _ => Err(SignError::MissingLine {
            kind,
            line: number,
            expected,
        }),
    }
}

/// Fails with [`SignError::TrailingData`] when `lines` has more than `last` lines.
pub(crate) fn no_trailing_lines(
    lines: &[&str],
    last: usize,
    kind: FileKind,
) -> Result<(), SignError> {
    if lines.len() > last {
        return Err(SignError::TrailingData {
            kind,
            last_line: last,
        });
    }
    Ok(())
}

/// Strips `prefix` from line `number`, or fails with [`SignError::MissingPrefix`].
pub(crate) fn strip_prefix<'a>(
    line: &'a str,
    prefix: &'static str,
    number: usize,
    kind: FileKind,
) -> Result<&'a str, SignError> {
    line.strip_prefix(prefix).ok_or(SignError::MissingPrefix {
        kind,
        line: number,
        prefix,
    })
}

/// Decodes the base64 `line` into exactly `N` bytes.
pub(crate) fn decode_exact<const N: usize>(
    line: &str,
    number: usize,
    kind: FileKind,
    field: &'static str,
) -> Result<[u8; N], SignError> {
    let bytes = STANDARD.decode(line).map_err(|source| SignError::Base64 {
        kind,
        field,
        line: number,
        source,
    })?;
    let actual = bytes.len();
    bytes.try_into().map_err(|_| SignError::WrongLength {
        kind,
        field,
        line: number,
        expected: N,
        actual,
    })
}

/// Standard base64 with padding, as minisign writes it.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Reads a small text file, naming it in every error.
pub(crate) fn read_small_file(path: &Path, kind: FileKind) -> Result<String, SignError> {
    let read_error = |source| SignError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(read_error)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(SignError::FileTooLarge {
            path: path.to_path_buf(),
            kind,
            limit: MAX_FILE_BYTES,
        });
    }
    Ok(text)
}

/// Checks that a comment can be written as one line that the minisign tool
/// reads back unchanged.
pub(crate) fn check_comment(comment: &str, which: CommentKind) -> Result<(), SignError> {
    let max = match which {
        CommentKind::Untrusted => MAX_UNTRUSTED_COMMENT_BYTES,
        CommentKind::Trusted => MAX_TRUSTED_COMMENT_BYTES,
    };
    if comment.contains(['\n', '\r']) {
        return Err(SignError::InvalidComment {
            which,
            problem: "contains a line break",
        });
    }
    if comment.contains('\0') {
        return Err(SignError::InvalidComment {
            which,
            problem: "contains a NUL character",
        });
    }
    if comment.len() > max {
        return Err(SignError::InvalidComment {
            which,
            problem: match which {
                CommentKind::Untrusted => "is longer than 1003 bytes",
                CommentKind::Trusted => "is longer than 8173 bytes",
            },
        });
    }
    Ok(())
}

/// Makes any comment writable: line breaks and NULs become spaces, and an
/// over-long comment is cut (on a character boundary) to the maximum length.
pub(crate) fn sanitize_comment(comment: &str, which: CommentKind) -> String {
    let max = match which {
        CommentKind::Untrusted => MAX_UNTRUSTED_COMMENT_BYTES,
        CommentKind::Trusted => MAX_TRUSTED_COMMENT_BYTES,
    };
    let mut out: String = comment
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if out.len() > max {
        let mut end = max;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cut_at_cr_and_drop_trailing_empties() {
        assert_eq!(lines("a\r\nb\n\n\n"), vec!["a", "b"]);
        assert_eq!(lines("a\nb"), vec!["a", "b"]);
        assert_eq!(lines("a\rjunk\n\nc\n"), vec!["a", "", "c"]);
        assert!(lines("").is_empty());
        assert!(lines("\n\r\n").is_empty());
    }

    #[test]
    fn limits_match_the_c_tool() {
        assert_eq!(MAX_UNTRUSTED_COMMENT_BYTES, 1003);
        assert_eq!(MAX_TRUSTED_COMMENT_BYTES, 8173);
    }

    #[test]
    fn decode_exact_reports_length_and_base64_errors() {
        let err = decode_exact::<4>("AAAA", 2, FileKind::Signature, "x").unwrap_err();
        assert!(matches!(
            err,
            SignError::WrongLength {
                expected: 4,
                actual: 3,
                line: 2,
                ..
            }
        ));
        let err = decode_exact::<3>("AA*A", 2, FileKind::Signature, "x").unwrap_err();
        assert!(matches!(err, SignError::Base64 { line: 2, .. }));
        assert_eq!(
            decode_exact::<3>("AAEC", 1, FileKind::Signature, "x").unwrap(),
            [0, 1, 2]
        );
    }

    #[test]
    fn comments_are_checked_and_sanitized() {
        assert!(check_comment("fine\tcomment", CommentKind::Trusted).is_ok());
        assert!(check_comment("two\nlines", CommentKind::Trusted).is_err());
        assert!(check_comment("cr\r", CommentKind::Untrusted).is_err());
        assert!(check_comment("nul\0", CommentKind::Untrusted).is_err());
        assert!(check_comment(&"x".repeat(1003), CommentKind::Untrusted).is_ok());
        assert!(check_comment(&"x".repeat(1004), CommentKind::Untrusted).is_err());
        assert!(check_comment(&"x".repeat(8173), CommentKind::Trusted).is_ok());
        assert!(check_comment(&"x".repeat(8174), CommentKind::Trusted).is_err());

        assert_eq!(
            sanitize_comment("a\nb\r\0c", CommentKind::Trusted),
            "a b  c"
        );
        let long = "é".repeat(600); // 1200 bytes, 2 per char
        let cut = sanitize_comment(&long, CommentKind::Untrusted);
        assert_eq!(cut.len(), 1002);
        assert!(check_comment(&cut, CommentKind::Untrusted).is_ok());
    }
}
