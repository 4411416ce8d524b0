//! What is inside a bundle, read through the seek table without decompressing the content.

use crate::archive::ReadAt;
use crate::sign::Signature;
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
        signatures,
        signature_problem,
    }
}
