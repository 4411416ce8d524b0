//! What is inside a bundle, read through the seek table without decompressing the content.

use crate::archive::ReadAt;
use crate::sign::Signature;
use crate::stored_runs;
use crate::toc::Kind;
use crate::Bundle;
use serde::Serialize;

/// A bundle's contents and signers, as `bundle inspect` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Build time.
    pub created: String,
    /// Writing tool.
    pub tool: String,
    /// Target platforms.
    pub platforms: Vec<String>,
    /// File size in bytes.
    pub file_size: u64,
    /// Total decompressed size of the tar stream.
    pub tar_size: u64,
    /// Number of zstd frames.
    pub frames: usize,
    /// SHA-256 of `bundle.json`.
    pub toc_sha256: String,
    /// Every member, `bundle.json` first.
    pub members: Vec<MemberSummary>,
    /// Where each run of stored bytes that `bundle.json` pins lies in the file (format v2;
    /// empty for v1, or when the members are not where `bundle.json` puts them).
    pub stored_runs: Vec<RunSummary>,
    /// Signature members.
    pub signatures: Vec<SignatureSummary>,
    /// Why signatures could not be read, if so.
    pub signature_problem: Option<String>,
}

/// One member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberSummary {
    /// Path inside the bundle.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes its frames take in the file.
    pub compressed: u64,
    /// Kind from `bundle.json` (`None` for `bundle.json` itself).
    pub kind: Option<Kind>,
    /// SHA-256 from `bundle.json`.
    pub sha256: Option<String>,
}

/// One run of stored bytes (docs/format.md §6.5): the file's bytes `[offset, offset + length)`
/// must hash to `sha256`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// First member of the run.
    pub first: String,
    /// Last member of the run.
    pub last: String,
    /// Members in the run.
    pub members: usize,
    /// File offset of the run's first frame.
    pub offset: u64,
    /// Bytes the run's frames take in the file.
    pub length: u64,
    /// SHA-256 that `bundle.json` pins for those bytes.
    pub sha256: String,
}

/// One signature member (not verified here).
#[derive(Debug, Clone, Serialize)]
pub struct SignatureSummary {
    /// Member path.
    pub member: String,
    /// Signing key id, if the signature parses.
    pub key_id: Option<String>,
    /// Trusted comment, if the signature parses.
    pub trusted_comment: Option<String>,
}

/// Summarises `bundle` from its seek table, `bundle.json` and signature members.
pub fn summarize<S: ReadAt>(bundle: &Bundle<S>) -> Summary {
    let m = bundle.toc();
    let table = bundle.archive().table();
    let compressed = |frames: &std::ops::Range<usize>| -> u64 {
        table.frames()[frames.clone()]
            .iter()
            .map(|f| u64::from(f.compressed))
            .sum()
    };
    let members = bundle
        .members()
        .iter()
        .enumerate()
        .map(|(i, loc)| {
            let entry = i.checked_sub(1).and_then(|j| m.members.get(j));
            MemberSummary {
                path: loc.path.clone(),
                size: loc.size,
                compressed: compressed(&loc.frames),
                kind: entry.map(|e| e.kind),
                sha256: entry.map(|e| e.sha256.clone()),
            }
        })
        .collect();
    let stored_runs = runs(bundle, compressed);
    let (signatures, signature_problem) = match bundle.signatures() {
        Ok(found) => (
            found
                .iter()
                .map(|(_, s)| {
                    let parsed = Signature::parse(&String::from_utf8_lossy(&s.bytes)).ok();
                    SignatureSummary {
                        member: s.path.clone(),
                        key_id: parsed.as_ref().map(|p| p.key_id().to_string()),
                        trusted_comment: parsed.map(|p| p.trusted_comment().to_string()),
                    }
                })
                .collect(),
            None,
        ),
        Err(problem) => (Vec::new(), Some(problem.to_string())),
    };
    Summary {
        name: m.name.clone(),
        version: m.version.clone(),
        created: m.created.clone(),
        tool: m.tool.clone(),
        platforms: m.platforms.clone(),
        file_size: bundle.archive().source().len(),
        tar_size: table.data_len(),
        frames: table.frames().len(),
        toc_sha256: bundle.toc_sha256(),
        members,
        stored_runs,
        signatures,
        signature_problem,
    }
}

/// The stored runs of `bundle` with their places in the file; `compressed` gives the bytes a
/// range of frames takes.
fn runs<S: ReadAt>(
    bundle: &Bundle<S>,
    compressed: impl Fn(&std::ops::Range<usize>) -> u64,
) -> Vec<RunSummary> {
    let Some(pinned) = bundle.toc().stored.as_deref() else {
        return Vec::new();
    };
    let Ok(places) = stored_runs::places(bundle, pinned) else {
        return Vec::new();
    };
    let table = bundle.archive().table().frames();
    pinned
        .iter()
        .zip(places)
        .filter_map(|(run, place)| {
            Some(RunSummary {
                offset: table.get(place.frames.start)?.offset,
                length: compressed(&place.frames),
                first: place.first,
                last: place.last,
                members: run.members,
                sha256: run.sha256.clone(),
            })
        })
        .collect()
}
