//! Request paths of the distribution API, parsed.

/// What a request path under `/v2/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/tags/list`.
    Tags(String),
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, String),
    /// Anything else under `/v2/` (uploads, referrers, ...).
    Other,
    /// Not under `/v2/` at all.
    NotV2,
}

/// Parses a request path (without the query).
pub fn parse(path: &str) -> Route {
    let rest = match path.strip_prefix("/v2") {
        Some("") => return Route::Base,
        Some(rest) => match rest.strip_prefix('/') {
            Some(rest) => rest,
            None => return Route::NotV2,
        },
        None => return Route::NotV2,
    };
    if rest.is_empty() {
        return Route::Base;
    }
    if rest == "_catalog" {
        return Route::Catalog;
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return named(name, Route::Tags);
    }
    if let Some(i) = rest.rfind("/manifests/") {
        let reference = &rest[i + "/manifests/".len()..];
        if !reference.is_empty() && !reference.contains('/') {
            let reference = reference.to_string();
            return named(&rest[..i], |n| Route::Manifest(n, reference));
        }
    }
    if let Some(i) = rest.rfind("/blobs/") {
        let digest = &rest[i + "/blobs/".len()..];
        if !digest.is_empty() && !digest.contains('/') {
            let digest = digest.to_string();
            return named(&rest[..i], |n| Route::Blob(n, digest));
        }
    }
    Route::Other
}

fn named(name: &str, make: impl FnOnce(String) -> Route) -> Route {
    if name.is_empty() || name.split('/').any(str::is_empty) {
        Route::Other
    } else {
        make(name.to_string())
    }
}

/// A single byte range of a `Range` header, resolved against the blob size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: send the whole blob.
    Whole,
    /// Send `start..=end`.
    Part { start: u64, end: u64 },
    /// The range lies outside the blob: 416.
    Unsatisfiable,
}

/// Resolves a `Range` header value (`bytes=a-b`, `bytes=a-`, `bytes=-n`) against `size`.
/// Headers in other units, multiple ranges and malformed values are ignored (the whole blob is
/// sent), as RFC 9110 allows.
pub fn byte_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Whole;
    };
    if spec.contains(',') {
        return ByteRange::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => ByteRange::Whole,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Part {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        (start, "") => match number(start) {
            None => ByteRange::Whole,
            Some(start) if start >= size => ByteRange::Unsatisfiable,
            Some(start) => ByteRange::Part {
                start,
                end: size - 1,
            },
        },
        (start, end) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start > end => ByteRange::Whole,
            (Some(start), Some(_)) if start >= size => ByteRange::Unsatisfiable,
            (Some(start), Some(end)) => ByteRange::Part {
                start,
                end: end.min(size - 1),
            },
            _ => ByteRange::Whole,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("/v2/"), Route::Base);
        assert_eq!(parse("/v2"), Route::Base);
        assert_eq!(parse("/v2/_catalog"), Route::Catalog);
        assert_eq!(parse("/v2/a/b/tags/list"), Route::Tags("a/b".into()));
        assert_eq!(
            parse("/v2/docker.io/a/b/manifests/v1"),
            Route::Manifest("docker.io/a/b".into(), "v1".into())
        );
        assert_eq!(
            parse("/v2/a/blobs/sha256:00"),
            Route::Blob("a".into(), "sha256:00".into())
        );
        assert_eq!(parse("/v2/a/blobs/uploads/"), Route::Other);
        assert_eq!(parse("/v2//manifests/x"), Route::Other);
        assert_eq!(parse("/v3/"), Route::NotV2);
        assert_eq!(parse("/v2x"), Route::NotV2);
    }

    #[test]
    fn ranges() {
        use ByteRange::*;
        assert_eq!(byte_range(None, 10), Whole);
        assert_eq!(byte_range(Some("bytes=0-3"), 10), Part { start: 0, end: 3 });
        assert_eq!(byte_range(Some("bytes=4-"), 10), Part { start: 4, end: 9 });
        assert_eq!(byte_range(Some("bytes=-3"), 10), Part { start: 7, end: 9 });
        assert_eq!(byte_range(Some("bytes=-30"), 10), Part { start: 0, end: 9 });
        assert_eq!(
            byte_range(Some("bytes=5-99"), 10),
            Part { start: 5, end: 9 }
        );
        assert_eq!(byte_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=10-20"), 10), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(byte_range(Some("bytes=0-1,3-4"), 10), Whole);
        assert_eq!(byte_range(Some("items=0-1"), 10), Whole);
        assert_eq!(byte_range(Some("bytes=x-1"), 10), Whole);
    }
}
