//! Full verification: signatures first, then the members. In a format v2 bundle the content
//! members' frames are hashed as stored, in the runs `bundle.json` pins, on every core and
//! without decompressing them ([`stored_runs`]). Otherwise, and to name the member at fault
//! when a run does not match, a pass over every frame checks each member's header, place, size
//! and SHA-256 against `bundle.json`: whole members hashed on every core when nothing needs
//! them in order, else one streaming pass (decompressed in parallel).

use crate::archive::tar::{MemberHeader, Parser, Visitor};
use crate::archive::{ArchiveError, ReadAt, SeekTable};
use crate::member_hashes::{self, HashedMember, Interrupted};
use crate::open::FoundSignature;
use crate::stored_runs::{self, RunMismatch};
use crate::toc::{is_signature_path, TOC_PATH};
use crate::trust::{Signers, TrustPolicy};
use crate::{Bundle, BundleError, Progress};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Report {
    /// Bundle name from `bundle.json`.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// What the member check covered.
    pub checked: Checked,
    /// Who signed.
    pub signers: Signers,
}

/// What is compared with `bundle.json` for each content member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Depth {
    /// Its frames exactly as stored, against the SHA-256 of their run (format v2): under a
    /// signature as strong as its content, since the content is what those bytes decompress
    /// to. A format v1 bundle, which pins no stored bytes, is checked by content.
    Stored,
    /// Its content, decompressed, against its own SHA-256, with every tar header parsed.
    Content,
}

/// What a member check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Members checked, `bundle.json` and signatures included.
    pub members: usize,
    /// Bytes of member data covered.
    pub bytes: u64,
    /// How the content members were checked.
    pub depth: Depth,
}

/// Verifies `bundle` under `policy`: signatures, then every member to `depth`, failing on the
/// first problem with an error that names the member. `threads` workers hash (and, by
/// content, decompress) frames.
pub fn verify<S: ReadAt>(
    bundle: &Bundle<S>,
    policy: &TrustPolicy,
    threads: usize,
    depth: Depth,
    progress: &dyn Progress,
) -> Result<Report, BundleError> {
    let signatures: Vec<FoundSignature> = match bundle.signatures() {
        Ok(found) => found.iter().map(|(_, sig)| sig.clone()).collect(),
        Err(problem) => {
            // The members are not where bundle.json puts them: the streaming pass names the
            // member at fault.
            check_members(bundle, None, threads, progress, None)?;
            return Err(BundleError::Layout(problem.to_string()));
        }
    };
    let signers = policy.check(bundle.toc_bytes(), &signatures)?;
    let checked = check_bundle(bundle, Some(&signatures), threads, depth, progress)?;
    Ok(Report {
        name: bundle.toc().name.clone(),
        version: bundle.toc().version.clone(),
        checked,
        signers,
    })
}

/// Checks every member of `bundle` to `depth` (by content when the bundle pins no stored
/// bytes); `signatures`, when given, must be exactly the signature members found. When a run
/// of stored bytes does not match, the content pass runs to name the member at fault.
pub fn check_bundle<S: ReadAt>(
    bundle: &Bundle<S>,
    signatures: Option<&[FoundSignature]>,
    threads: usize,
    depth: Depth,
    progress: &dyn Progress,
) -> Result<Checked, BundleError> {
    if depth == Depth::Stored {
        if let Some(checked) = check_stored(bundle, signatures, threads, progress)? {
            return Ok(checked);
        }
    }
    let (members, bytes) = check_members(bundle, signatures, threads, progress, None)?;
    Ok(Checked {
        members,
        bytes,
        depth: Depth::Content,
    })
}

/// The check by stored bytes: `bundle.json` and `SHA256SUMS` parsed and hashed as the content
/// pass does, then every run of content members hashed as stored. `None` when the bundle
/// cannot be checked this way (format v1, or members and signatures not where `bundle.json`
/// puts them): the content pass then checks it and names what is wrong.
fn check_stored<S: ReadAt>(
    bundle: &Bundle<S>,
    signatures: Option<&[FoundSignature]>,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Option<Checked>, BundleError> {
    let (Some(pinned), Ok(found)) = (bundle.toc().stored.as_deref(), bundle.signatures()) else {
        return Ok(None);
    };
    let found: Vec<FoundSignature> = found.iter().map(|(_, sig)| sig.clone()).collect();
    if signatures.is_some_and(|expected| first_difference(expected, &found).is_some()) {
        return Ok(None);
    }
    let Ok(places) = stored_runs::places(bundle, pinned) else {
        return Ok(None);
    };
    let table = bundle.archive().table();
    let first_content = places
        .first()
        .map_or(bundle.content_frames(), |r| r.frames.start);
    progress.start("verify", table.data_len());
    if !head_checks_out(bundle, first_content, progress) {
        return Ok(None);
    }
    let checked = stored_runs::check(bundle, &places, pinned, threads, |bytes| {
        progress.advance(bytes)
    });
    progress.finish();
    if let Err(RunMismatch { run, found }) = checked {
        // The content pass names the member at fault; if it finds none, the frames were
        // rewritten with the same content.
        check_members(bundle, signatures, threads, progress, None)?;
        let (Some(place), Some(expected)) = (places.get(run), pinned.get(run)) else {
            return Err(BundleError::Layout(format!("no stored run {run}")));
        };
        return Err(BundleError::StoredChanged {
            first: place.first.clone(),
            last: place.last.clone(),
            expected: expected.sha256.clone(),
            found: match found {
                Ok(sha256) => format!("they hash to {sha256}"),
                Err(e) => oci::error_chain(&e),
            },
        });
    }
    let bytes = bundle.members().iter().map(|m| m.size).sum::<u64>()
        + found.iter().map(|s| s.bytes.len() as u64).sum::<u64>();
    Ok(Some(Checked {
        members: bundle.members().len() + found.len(),
        bytes,
        depth: Depth::Stored,
    }))
}

/// The members before the stored runs, checked as the content pass would: `bundle.json` and
/// `SHA256SUMS` (the frames before `first_content`) parsed and hashed, ending between two
/// members. (Open already read the signatures after the runs and the end marker: two zero
/// blocks alone in the last frame.)
fn head_checks_out<S: ReadAt>(
    bundle: &Bundle<S>,
    first_content: usize,
    progress: &dyn Progress,
) -> bool {
    let mut checker = Checker::new(bundle, None);
    let mut parser = Parser::new();
    let head = bundle
        .archive()
        .for_each_frame(0..first_content, 1, |_, data| {
            let data = data.map_err(|e| checker.in_context(e))?;
            progress.advance(data.len() as u64);
            parser.feed(&data, &mut checker)
        });
    head.is_ok() && !checker.mismatch && checker.next == 2 && parser.between_members()
}

/// Receives members that pass their checks, e.g. to write them out.
pub trait MemberSink {
    /// A member starts.
    fn begin(&mut self, path: &str) -> Result<(), BundleError>;
    /// The next bytes of the member's data.
    fn write(&mut self, bytes: &[u8]) -> Result<(), BundleError>;
    /// The member's content matched `bundle.json`: make it permanent.
    fn commit(&mut self) -> Result<(), BundleError>;
}

/// Checks every member in one streaming pass; `signatures`, when given, must be exactly the
/// signature members found; `sink`, when given, receives every member and is told to commit
/// each one only after its hash matched. Returns the number of members and data bytes checked.
pub fn check_members<S: ReadAt>(
    bundle: &Bundle<S>,
    signatures: Option<&[FoundSignature]>,
    threads: usize,
    progress: &dyn Progress,
    sink: Option<&mut dyn MemberSink>,
) -> Result<(usize, u64), BundleError> {
    let table = bundle.archive().table();
    progress.start("verify", table.data_len());
    let mut checker = Checker::new(bundle, sink);
    let in_segments = if checker.sink.is_none() && threads > 1 {
        check_in_segments(bundle, threads, progress, &mut checker)
    } else {
        None
    };
    let result = match in_segments {
        Some(result) => result,
        None => check_sequentially(bundle, threads, progress, &mut checker),
    };
    progress.finish();
    if let Some(diagnosis) = checker.diagnose() {
        return Err(diagnosis);
    }
    result?;
    if let Some(missing) = checker.expected.get(checker.next) {
        return Err(BundleError::Missing {
            path: missing.0.to_string(),
        });
    }
    if let Some(expected) = signatures {
        if let Some(diff) = first_difference(expected, &checker.signatures) {
            return Err(BundleError::SignatureChanged { path: diff });
        }
    }
    Ok((checker.members, checker.bytes))
}

/// Whole members hashed on every core ([`member_hashes`]), checked in order by `checker`;
/// `None` when the bundle is not framed as the segments assume, with `checker` and the
/// progress reset for the sequential pass, which names what is wrong.
fn check_in_segments<'a, S: ReadAt>(
    bundle: &'a Bundle<S>,
    threads: usize,
    progress: &dyn Progress,
    checker: &mut Checker<'a, '_>,
) -> Option<Result<(), BundleError>> {
    let hashed = member_hashes::each_segment(bundle, threads, |members, bytes| {
        for member in members {
            checker.hashed(member)?;
        }
        progress.advance(bytes);
        Ok::<(), BundleError>(())
    });
    match hashed {
        Ok(()) => Some(Ok(())),
        Err(Interrupted::Sink(e)) => Some(Err(e)),
        Err(Interrupted::Layout) => {
            *checker = Checker::new(bundle, None);
            progress.start("verify", bundle.archive().table().data_len());
            None
        }
    }
}

/// One pass over the frames in order: decompressed on `threads` workers, parsed and hashed on
/// this thread (the only way when a sink must see the members in order).
fn check_sequentially<S: ReadAt>(
    bundle: &Bundle<S>,
    threads: usize,
    progress: &dyn Progress,
    checker: &mut Checker<'_, '_>,
) -> Result<(), BundleError> {
    let table = bundle.archive().table();
    let mut parser = Parser::new();
    bundle
        .archive()
        .for_each_frame(0..table.frames().len(), threads, |_, data| {
            let data = data.map_err(|e| checker.in_context(e))?;
            parser.feed(&data, checker).map_err(|e| match e {
                BundleError::Archive(source) => checker.in_context(source),
                other => other,
            })?;
            progress.advance(data.len() as u64);
            Ok::<(), BundleError>(())
        })
        .and_then(|()| parser.finish().map_err(|e| checker.in_context(e)))
}

fn first_difference(expected: &[FoundSignature], found: &[FoundSignature]) -> Option<String> {
    if let Some((a, _)) = expected.iter().zip(found).find(|(a, b)| a != b) {
        return Some(a.path.clone());
    }
    let longer = if expected.len() > found.len() {
        expected
    } else {
        found
    };
    longer
        .get(expected.len().min(found.len()))
        .map(|s| s.path.clone())
}

/// What the member being read is.
enum Current {
    /// `bundle.json` or a listed member: hash and compare.
    Listed { index: usize, hasher: Box<Sha256> },
    /// A signature member: keep its bytes.
    Signature(FoundSignature),
    /// After a mismatch: only the sequence of paths matters now.
    Skipped,
}

/// Walks the tar stream and compares it with `bundle.json`.
struct Checker<'a, 's> {
    sink: Option<&'s mut dyn MemberSink>,
    table: &'a SeekTable,
    /// Paths and sizes in the expected order: `bundle.json`, then the listed members.
    expected: Vec<(&'a str, u64, &'a str)>,
    toc_sha256: String,
    next: usize,
    current: Option<Current>,
    /// Paths seen in the listed region, kept once the order went wrong, for the diagnosis.
    seen: Vec<String>,
    seen_set: HashSet<String>,
    mismatch: bool,
    signatures: Vec<FoundSignature>,
    members: usize,
    bytes: u64,
}

impl<'a, 's> Checker<'a, 's> {
    fn new<S: ReadAt>(bundle: &'a Bundle<S>, sink: Option<&'s mut dyn MemberSink>) -> Self {
        let toc_sha256 = bundle.toc_sha256();
        let mut expected = vec![(TOC_PATH, bundle.toc_bytes().len() as u64, "")];
        expected.extend(
            bundle
                .toc()
                .members
                .iter()
                .map(|e| (e.path.as_str(), e.size, e.sha256.as_str())),
        );
        Checker {
            sink,
            table: bundle.archive().table(),
            expected,
            toc_sha256,
            next: 0,
            current: None,
            seen: Vec::new(),
            seen_set: HashSet::new(),
            mismatch: false,
            signatures: Vec::new(),
            members: 0,
            bytes: 0,
        }
    }

    fn in_listed_region(&self) -> bool {
        self.next < self.expected.len()
    }

    /// Names the member an archive error happened in.
    fn in_context(&self, source: ArchiveError) -> BundleError {
        let path = match &self.current {
            Some(Current::Listed { index, .. }) => Some(self.expected[*index].0.to_string()),
            Some(Current::Signature(sig)) => Some(sig.path.clone()),
            _ => self.expected.get(self.next).map(|e| e.0.to_string()),
        };
        match path {
            Some(path) => BundleError::InMember { path, source },
            None => BundleError::Archive(source),
        }
    }

    /// After the stream: explains a wrong member sequence (added, renamed, duplicated,
    /// missing or reordered members).
    fn diagnose(&self) -> Option<BundleError> {
        if !self.mismatch {
            return None;
        }
        let listed: HashSet<&str> = self.expected.iter().map(|e| e.0).collect();
        let mut counted = HashSet::new();
        for path in &self.seen {
            if !counted.insert(path.as_str()) {
                return Some(BundleError::Duplicate { path: path.clone() });
            }
            if !listed.contains(path.as_str()) {
                return Some(BundleError::Unexpected { path: path.clone() });
            }
        }
        if let Some(missing) = self.expected.iter().find(|e| !counted.contains(e.0)) {
            return Some(BundleError::Missing {
                path: missing.0.to_string(),
            });
        }
        let (path, expected) = self
            .seen
            .iter()
            .zip(&self.expected)
            .find(|(seen, exp)| seen.as_str() != exp.0)
            .map(|(seen, exp)| (seen.clone(), exp.0.to_string()))?;
        Some(BundleError::OutOfOrder { path, expected })
    }

    /// A member a worker parsed and hashed: checked as if its bytes had streamed through.
    fn hashed(&mut self, member: HashedMember) -> Result<(), BundleError> {
        self.member(&member.header)?;
        match self.current.take() {
            Some(Current::Listed { index, .. }) => {
                self.members += 1;
                self.bytes += member.header.size;
                self.compare(index, hex::encode(member.sha256))
            }
            other => {
                self.current = other;
                self.data(&member.signature)?;
                self.member_end()
            }
        }
    }

    /// Compares listed member `index`'s hash with `bundle.json`.
    fn compare(&self, index: usize, actual: String) -> Result<(), BundleError> {
        let (path, _, listed) = self.expected[index];
        let expected = if index == 0 {
            self.toc_sha256.as_str()
        } else {
            listed
        };
        if actual != expected {
            return Err(BundleError::Changed {
                path: path.to_string(),
                expected: expected.to_string(),
                actual,
            });
        }
        Ok(())
    }

    fn start_mismatch(&mut self) {
        if !self.mismatch {
            self.mismatch = true;
            self.seen = self.expected[..self.next]
                .iter()
                .map(|e| e.0.to_string())
                .collect();
        }
    }
}

impl Visitor for Checker<'_, '_> {
    type Error = BundleError;

    fn member(&mut self, header: &MemberHeader) -> Result<(), BundleError> {
        let path = &header.path;
        let starts_frame = self
            .table
            .frame_at(header.offset)
            .is_some_and(|i| self.table.frames()[i].data_offset == header.offset);
        if !starts_frame {
            return Err(BundleError::Layout(format!(
                "member {path} does not start a frame of its own"
            )));
        }
        if self.mismatch {
            if !is_signature_path(path) {
                self.seen.push(path.clone());
            }
            self.current = Some(Current::Skipped);
            return Ok(());
        }
        if !self.in_listed_region() || is_signature_path(path) {
            if !is_signature_path(path) {
                if self.seen_set.contains(path) {
                    return Err(BundleError::Duplicate { path: path.clone() });
                }
                return Err(BundleError::Unexpected { path: path.clone() });
            }
            if self.in_listed_region() {
                // Signatures start while listed members are still due.
                self.start_mismatch();
                self.current = Some(Current::Skipped);
                return Ok(());
            }
            self.current = Some(Current::Signature(FoundSignature {
                path: path.clone(),
                bytes: Vec::new(),
            }));
            if let Some(sink) = self.sink.as_mut() {
                sink.begin(path)?;
            }
            return Ok(());
        }
        let (expected_path, expected_size, _) = self.expected[self.next];
        if path != expected_path {
            self.start_mismatch();
            self.seen.push(path.clone());
            self.current = Some(Current::Skipped);
            return Ok(());
        }
        if header.size != expected_size {
            return Err(BundleError::SizeMismatch {
                path: path.clone(),
                header: header.size,
                toc: expected_size,
            });
        }
        self.seen_set.insert(path.clone());
        self.current = Some(Current::Listed {
            index: self.next,
            hasher: Box::new(Sha256::new()),
        });
        self.next += 1;
        if let Some(sink) = self.sink.as_mut() {
            sink.begin(path)?;
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        match &mut self.current {
            Some(Current::Listed { hasher, .. }) => hasher.update(bytes),
            Some(Current::Signature(sig)) => {
                if sig.bytes.len() + bytes.len() > crate::open::MAX_SIGNATURE_LEN as usize {
                    return Err(BundleError::Layout(format!(
                        "signature {} is too large",
                        sig.path
                    )));
                }
                sig.bytes.extend_from_slice(bytes);
            }
            _ => return Ok(()),
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.write(bytes)?;
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn member_end(&mut self) -> Result<(), BundleError> {
        self.members += 1;
        match self.current.take() {
            Some(Current::Listed { index, hasher }) => {
                self.compare(index, hex::encode(hasher.finalize()))?
            }
            Some(Current::Signature(sig)) => self.signatures.push(sig),
            _ => return Ok(()),
        }
        if let Some(sink) = self.sink.as_mut() {
            sink.commit()?;
        }
        Ok(())
    }
}
