//! `bundle.json`: the bundle's signed table of contents, and the `SHA256SUMS` file derived
//! from it for auditors.

use crate::archive::tar::check_path;
use oci::layout::{INDEX_FILE, LAYOUT_FILE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format identifier written in every `bundle.json`: the members' stored bytes are pinned in
/// runs ([`TableOfContents::stored`]).
pub const FORMAT: &str = "messenger-bundle/v2";
/// The earlier format, still read: no stored-byte digests, so its members are checked by
/// their content only.
pub const FORMAT_V1: &str = "messenger-bundle/v1";
/// Path of the table of contents, always the first member.
pub const TOC_PATH: &str = "bundle.json";
/// Path of the GNU-format checksum list, always the second member.
pub const CHECKSUMS_PATH: &str = "SHA256SUMS";
/// Largest `bundle.json` a reader accepts.
pub const MAX_TOC_LEN: u64 = 64 << 20;

/// What a member is for; decides where `installer` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `SHA256SUMS`.
    Checksums,
    /// The OCI layout's `oci-layout` and `index.json`.
    OciLayout,
    /// A blob of the OCI layout (`blobs/sha256/...`): layers, configs, manifests, indexes.
    Blob,
    /// A Helm chart archive or chart repository index.
    Chart,
    /// A ClamAV signature database.
    Clamav,
    /// Internal certificate authority material.
    Ca,
    /// A binary the installer needs (helm, kubectl).
    Tool,
    /// Documentation.
    Doc,
    /// Anything else.
    File,
}

impl Kind {
    /// The kind a member gets from its path in a staged directory.
    pub fn of_path(path: &str) -> Kind {
        let top = path.split('/').next().unwrap_or(path);
        match (path, top) {
            (CHECKSUMS_PATH, _) => Kind::Checksums,
            (LAYOUT_FILE | INDEX_FILE, _) => Kind::OciLayout,
            (_, "blobs") => Kind::Blob,
            (_, "charts") => Kind::Chart,
            (_, "clamav") => Kind::Clamav,
            (_, "ca") => Kind::Ca,
            (_, "tools") => Kind::Tool,
            (_, "docs") => Kind::Doc,
            _ => Kind::File,
        }
    }

    /// Sort rank of the kind's members in the archive: checksums, then the OCI layout
    /// (`oci-layout`, `index.json`, blobs), then everything else by path.
    pub fn rank(path: &str) -> u8 {
        match path {
            CHECKSUMS_PATH => 0,
            LAYOUT_FILE => 1,
            INDEX_FILE => 2,
            _ if Kind::of_path(path) == Kind::Blob => 3,
            _ => 4,
        }
    }
}

/// One member after `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Path inside the bundle.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// What the member is.
    pub kind: Kind,
}

/// The content of `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableOfContents {
    /// Always [`FORMAT`].
    pub format: String,
    /// Bundle name, e.g. `messenger`.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Build time, RFC 3339 in UTC, taken from the inputs so builds are reproducible.
    pub created: String,
    /// The tool and version that wrote the bundle.
    pub tool: String,
    /// Target platforms, e.g. `linux/amd64`.
    pub platforms: Vec<String>,
    /// Every member after `bundle.json`, in archive order, starting with `SHA256SUMS`.
    pub members: Vec<Entry>,
    /// The SHA-256 of the bytes stored in the file for the content members (every member
    /// after `SHA256SUMS`), in runs of consecutive members; required in [`FORMAT`], absent in
    /// [`FORMAT_V1`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<Vec<StoredRun>>,
}

/// The frames of `members` consecutive content members, pinned by the SHA-256 of their bytes
/// exactly as the file stores them (compressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredRun {
    /// How many members the run covers (at least one).
    pub members: usize,
    /// Lower-case hex SHA-256 of the run's frames as stored.
    pub sha256: String,
}

/// Why a `bundle.json` is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum TocError {
    /// Not valid JSON for the model.
    #[error("bundle.json is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// Another format version.
    #[error("bundle.json has format {found:?}; this tool reads {FORMAT:?} and {FORMAT_V1:?}")]
    Format { found: String },
    /// A rule of the format is broken.
    #[error("bundle.json: {0}")]
    Invalid(String),
}

impl TableOfContents {
    /// Parses and checks `bundle.json` bytes: format version, safe unique paths, well-formed
    /// hashes, `SHA256SUMS` first, no reserved names, stored runs (v2) covering exactly the
    /// content members.
    pub fn parse(bytes: &[u8]) -> Result<TableOfContents, TocError> {
        let toc: TableOfContents = serde_json::from_slice(bytes)?;
        let invalid = |msg: String| Err(TocError::Invalid(msg));
        match (toc.format.as_str(), &toc.stored) {
            (FORMAT, Some(runs)) => {
                let covered: usize = runs.iter().map(|r| r.members).sum();
                if runs
                    .iter()
                    .any(|r| r.members == 0 || !is_hex_sha256(&r.sha256))
                    || covered != toc.members.len().saturating_sub(1)
                {
                    return invalid(format!(
                        "the stored runs must each cover at least one member, carry a sha256, \
                         and together cover the {} content members (they cover {covered})",
                        toc.members.len().saturating_sub(1)
                    ));
                }
            }
            (FORMAT, None) => return invalid(format!("format {FORMAT} requires \"stored\"")),
            (FORMAT_V1, None) => {}
            (FORMAT_V1, Some(_)) => {
                return invalid(format!("format {FORMAT_V1} has no \"stored\""))
            }
            _ => return Err(TocError::Format { found: toc.format }),
        }
        match toc.members.first() {
            Some(e) if e.path == CHECKSUMS_PATH && e.kind == Kind::Checksums => {}
            _ => return invalid(format!("the first member must be {CHECKSUMS_PATH}")),
        }
        let listed = checksums_file(&toc.members[1..]);
        let sums = &toc.members[0];
        if sums.size != listed.len() as u64 || sums.sha256 != hex::encode(Sha256::digest(&listed)) {
            return invalid(format!(
                "{CHECKSUMS_PATH} as listed does not match the members bundle.json lists"
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for entry in &toc.members {
            if let Err(e) = check_path(&entry.path) {
                return invalid(e.to_string());
            }
            if entry.path == TOC_PATH || is_signature_path(&entry.path) {
                return invalid(format!("member {:?} uses a reserved name", entry.path));
            }
            if !seen.insert(entry.path.as_str()) {
                return invalid(format!("member {:?} is listed twice", entry.path));
            }
            if !is_hex_sha256(&entry.sha256) {
                return invalid(format!(
                    "member {:?} has a malformed sha256 {:?}",
                    entry.path, entry.sha256
                ));
            }
        }
        Ok(toc)
    }

    /// The canonical bytes of `bundle.json`: pretty-printed JSON and a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::pack::json_bytes(self)
    }

    /// Looks up a member by path.
    pub fn entry(&self, path: &str) -> Option<&Entry> {
        self.members.iter().find(|e| e.path == path)
    }
}

/// Whether `text` is 64 lower-case hex digits.
fn is_hex_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The member list of a bundle: the `SHA256SUMS` entry for `entries`, then `entries`; and
/// the `SHA256SUMS` bytes themselves.
pub fn with_checksums(entries: Vec<Entry>) -> (Vec<Entry>, Vec<u8>) {
    let checksums = checksums_file(&entries);
    let mut members = Vec::with_capacity(entries.len() + 1);
    members.push(Entry {
        path: CHECKSUMS_PATH.into(),
        size: checksums.len() as u64,
        sha256: hex::encode(Sha256::digest(&checksums)),
        kind: Kind::Checksums,
    });
    members.extend(entries);
    (members, checksums)
}

/// `SHA256SUMS` in GNU coreutils format for `entries` (every member after `SHA256SUMS`).
pub fn checksums_file<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<u8> {
    let mut out = String::new();
    for e in entries {
        out.push_str(&e.sha256);
        out.push_str("  ");
        out.push_str(&e.path);
        out.push('\n');
    }
    out.into_bytes()
}

/// Name of the signature member made by the bundle's first signer; `minisign -Vm bundle.json`
/// finds it by default once the bundle is extracted.
pub const FIRST_SIGNATURE_PATH: &str = "bundle.json.minisig";

/// Name of the signature member of a countersigner whose key id is `key_id`.
pub fn countersignature_path(key_id: &str) -> String {
    format!("bundle.json.{key_id}.minisig")
}

/// Whether `path` names a signature member.
pub fn is_signature_path(path: &str) -> bool {
    path == FIRST_SIGNATURE_PATH
        || path
            .strip_prefix("bundle.json.")
            .and_then(|rest| rest.strip_suffix(".minisig"))
            .is_some_and(|id| {
                id.len() == 16 && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F'))
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            path: path.into(),
            size: 1,
            sha256: "a".repeat(64),
            kind: Kind::of_path(path),
        }
    }

    /// A table of contents listing `paths`; `SHA256SUMS`, where `paths` names it, is computed from the
    /// other entries and kept in the place `paths` gives it.
    fn toc(paths: &[&str]) -> TableOfContents {
        let rest: Vec<Entry> = paths
            .iter()
            .filter(|p| **p != CHECKSUMS_PATH)
            .map(|p| entry(p))
            .collect();
        let (mut listed, _) = with_checksums(rest);
        let sums = listed.remove(0);
        let members = paths
            .iter()
            .map(|p| {
                if *p == CHECKSUMS_PATH {
                    sums.clone()
                } else {
                    listed.remove(0)
                }
            })
            .collect();
        TableOfContents {
            format: FORMAT.into(),
            name: "n".into(),
            version: "1".into(),
            created: "1970-01-01T00:00:00Z".into(),
            tool: "t".into(),
            platforms: vec![],
            stored: Some(vec![StoredRun {
                members: paths.len() - 1,
                sha256: "c".repeat(64),
            }]),
            members,
        }
    }

    #[test]
    fn a_checksum_list_that_disagrees_with_the_members_is_refused() {
        let mut m = toc(&["SHA256SUMS", "docs/a.md"]);
        TableOfContents::parse(&m.to_bytes()).unwrap();
        m.members[1].sha256 = "b".repeat(64);
        let err = TableOfContents::parse(&m.to_bytes()).unwrap_err();
        assert!(err.to_string().contains("SHA256SUMS as listed"), "{err}");
    }

    #[test]
    fn canonical_bytes_parse_back() {
        let m = toc(&["SHA256SUMS", "blobs/sha256/x", "docs/a.md"]);
        assert_eq!(TableOfContents::parse(&m.to_bytes()).unwrap(), m);
        assert_eq!(m.members[1].kind, Kind::Blob);
    }

    #[test]
    fn reserved_duplicate_and_unsafe_paths_are_refused() {
        for paths in [
            &["SHA256SUMS", "a", "a"][..],
            &["SHA256SUMS", "../a"],
            &["SHA256SUMS", "bundle.json.minisig"],
            &["SHA256SUMS", "bundle.json"],
            &["a", "SHA256SUMS"],
        ] {
            let err = TableOfContents::parse(&toc(paths).to_bytes()).unwrap_err();
            assert!(matches!(err, TocError::Invalid(_)), "{paths:?}: {err}");
        }
    }

    #[test]
    fn signature_paths() {
        assert!(is_signature_path("bundle.json.minisig"));
        assert!(is_signature_path(&countersignature_path(
            "0123456789ABCDEF"
        )));
        assert!(!is_signature_path("bundle.json.x.minisig"));
        assert!(!is_signature_path("bundle.json.0123456789abcdef.minisig"));
    }

    #[test]
    fn stored_runs_are_required_in_v2_refused_in_v1_and_cover_the_content_members() {
        let v2 = toc(&["SHA256SUMS", "docs/a.md", "docs/b.md"]);
        assert_eq!(TableOfContents::parse(&v2.to_bytes()).unwrap(), v2);

        let mut v1 = v2.clone();
        v1.format = FORMAT_V1.into();
        v1.stored = None;
        assert_eq!(TableOfContents::parse(&v1.to_bytes()).unwrap(), v1);
        assert!(!String::from_utf8(v1.to_bytes()).unwrap().contains("stored"));

        let refused = |toc: &TableOfContents, needle: &str| {
            let err = TableOfContents::parse(&toc.to_bytes()).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        };
        let mut m = v1.clone();
        m.stored = v2.stored.clone();
        refused(&m, "has no \"stored\"");
        let mut m = v2.clone();
        m.stored = None;
        refused(&m, "requires \"stored\"");
        let run = |members, sha256: &str| StoredRun {
            members,
            sha256: sha256.into(),
        };
        let c = "c".repeat(64);
        for runs in [
            vec![run(1, &c)],
            vec![run(1, &c), run(2, &c)],
            vec![run(2, &c), run(0, &c)],
            vec![run(2, "C")],
        ] {
            let mut m = v2.clone();
            m.stored = Some(runs);
            refused(&m, "stored runs");
        }
        let mut m = v2;
        m.format = "messenger-bundle/v3".into();
        assert!(matches!(
            TableOfContents::parse(&m.to_bytes()),
            Err(TocError::Format { .. })
        ));
    }
}
