//! Error bodies of the OCI distribution spec: `{"errors":[{"code","message","detail"}]}`.

use serde::Serialize;

/// One distribution-spec error code with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 404: the repository is not in the bundle.
    NameUnknown,
    /// 404: no such manifest in the repository.
    ManifestUnknown,
    /// 404: no such blob in the repository.
    BlobUnknown,
    /// 400: the digest is malformed.
    DigestInvalid,
    /// 400: the repository name is malformed.
    NameInvalid,
    /// 416: the requested range cannot be satisfied.
    RangeInvalid,
    /// 405: the operation is not supported (this registry is read-only).
    Unsupported,
    /// 400: the pagination parameters are malformed.
    PaginationNumberInvalid,
    /// 500: reading the bundle failed.
    Internal,
}

impl Code {
    /// The spec's code string.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::NameInvalid => "NAME_INVALID",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::Internal => "UNKNOWN",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Code::NameUnknown | Code::ManifestUnknown | Code::BlobUnknown => 404,
            Code::DigestInvalid | Code::NameInvalid | Code::PaginationNumberInvalid => 400,
            Code::RangeInvalid => 416,
            Code::Unsupported => 405,
            Code::Internal => 500,
        }
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    code: &'a str,
    message: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Entry<'a>; 1],
}

/// The JSON body for one error.
pub fn body(code: Code, message: &str, detail: &str) -> Vec<u8> {
    serde_json::to_vec(&Body {
        errors: [Entry {
            code: code.as_str(),
            message,
            detail,
        }],
    })
    .expect("serialising an error body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_spec_shaped() {
        let v: serde_json::Value =
            serde_json::from_slice(&body(Code::BlobUnknown, "blob unknown", "sha256:00")).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["message"], "blob unknown");
        assert_eq!(v["errors"][0]["detail"], "sha256:00");
        assert_eq!(Code::RangeInvalid.status(), 416);
        assert_eq!(Code::Unsupported.status(), 405);
    }
}
