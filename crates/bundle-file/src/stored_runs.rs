//! The content members' bytes as the file stores them, pinned in runs: `bundle.json` lists,
//! for each run of consecutive members, the SHA-256 of their frames exactly as written
//! (docs/format.md §6.5). The packer plans the runs from the members' sizes before it writes
//! anything and hashes the frames as they are written; verification hashes the stored bytes
//! back, on every core, without decompressing them.

use crate::archive::frames::check_frame;
use crate::archive::parallel::ordered_map;
use crate::archive::tar::{header_len, padding};
use crate::archive::{ArchiveError, ReadAt};
use crate::toc::StoredRun;
use crate::Bundle;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Tar-stream bytes after which a run ends with the member that reached them: enough that a
/// run is long reads and hashing, few enough runs that `bundle.json` stays small (one entry
/// per 16 MiB) and the cores finish together.
const RUN_BYTES: u64 = 16 << 20;

/// How many members each run covers, for content members given as (path, size) in archive
/// order: a run ends after the member that brings it to [`RUN_BYTES`] of tar stream; the last
/// run takes what is left. No members, no runs.
fn plan<'a>(members: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<usize> {
    let mut runs = Vec::new();
    let (mut count, mut bytes) = (0, 0u64);
    for (path, size) in members {
        count += 1;
        bytes += header_len(path, size) + size + padding(size);
        if bytes >= RUN_BYTES {
            runs.push(count);
            (count, bytes) = (0, 0);
        }
    }
    if count > 0 {
        runs.push(count);
    }
    runs
}

/// The runs of a pack: planned from the members' sizes, then filled with the SHA-256 of the
/// frames the writer hands over, each into the run of the member it belongs to.
pub(crate) struct RunHashers {
    /// Members of each run.
    plan: Vec<usize>,
    /// Run of each content member, by its index among them.
    run_of: Vec<usize>,
    hashers: Vec<Sha256>,
}

impl RunHashers {
    /// Runs for content members given as (path, size) in archive order (see [`plan`]).
    pub(crate) fn new<'a>(members: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let plan = plan(members);
        let run_of = plan
            .iter()
            .enumerate()
            .flat_map(|(run, &members)| std::iter::repeat_n(run, members))
            .collect();
        let hashers = vec![Sha256::new(); plan.len()];
        RunHashers {
            plan,
            run_of,
            hashers,
        }
    }

    /// The runs with a placeholder for each hash (64 `0`s): what `bundle.json` holds, at its
    /// final size, before the frames are written.
    pub(crate) fn placeholders(&self) -> Vec<StoredRun> {
        runs(&self.plan, std::iter::repeat_with(|| "0".repeat(64)))
    }

    /// `frame`, just written, of content member `member` (by index among them).
    pub(crate) fn update(&mut self, member: usize, frame: &[u8]) {
        let hasher = self
            .run_of
            .get(member)
            .and_then(|&run| self.hashers.get_mut(run));
        if let Some(hasher) = hasher {
            hasher.update(frame);
        }
    }

    /// The runs with the SHA-256 of the frames handed over.
    pub(crate) fn finish(self) -> Vec<StoredRun> {
        let hashes = self.hashers.into_iter().map(|h| hex::encode(h.finalize()));
        runs(&self.plan, hashes)
    }
}

/// Runs of `plan`'s lengths with `hashes`.
fn runs(plan: &[usize], hashes: impl IntoIterator<Item = String>) -> Vec<StoredRun> {
    plan.iter()
        .zip(hashes)
        .map(|(&members, sha256)| StoredRun { members, sha256 })
        .collect()
}

/// Where a run lies: its frames and its first and last member.
#[derive(Debug, Clone)]
pub(crate) struct RunPlace {
    /// The frames the run's members take.
    pub frames: Range<usize>,
    /// Path of its first member.
    pub first: String,
    /// Path of its last member.
    pub last: String,
}

/// Where each of `runs` lies in `bundle`, or why that cannot be said: a member that does not
/// start on the frame after the previous member's, or runs that do not cover the members.
pub(crate) fn places<S: ReadAt>(
    bundle: &Bundle<S>,
    runs: &[StoredRun],
) -> Result<Vec<RunPlace>, String> {
    // bundle.json and SHA256SUMS come first; the runs cover the members after them.
    let content = bundle.members().get(2..).unwrap_or_default();
    let mut next = bundle.members().get(1).map_or(0, |m| m.frames.end);
    let mut out = Vec::with_capacity(runs.len());
    let mut members = content.iter();
    for run in runs {
        let start = next;
        let (mut first, mut last) = (None, None);
        for member in members.by_ref().take(run.members) {
            if member.frames.is_empty() || member.frames.start != next {
                return Err(format!(
                    "member {} does not start the frame after the previous member's",
                    member.path
                ));
            }
            next = member.frames.end;
            first.get_or_insert_with(|| member.path.clone());
            last = Some(member.path.clone());
        }
        let (Some(first), Some(last)) = (first, last) else {
            return Err("a stored run covers no member".into());
        };
        out.push(RunPlace {
            frames: start..next,
            first,
            last,
        });
    }
    Ok(out)
}

/// A run whose stored bytes are not what `bundle.json` pins.
#[derive(Debug)]
pub(crate) struct RunMismatch {
    /// Index of the run.
    pub run: usize,
    /// SHA-256 of its frames as read, or why they could not be read as frames.
    pub found: Result<String, ArchiveError>,
}

/// Hashes the frames of each run at `places` as stored, on `threads` workers, checking each
/// frame's header against the seek table on the way (without decompressing), and compares
/// each hash with `pinned`. `done` hears of each run that matched, in order, with its
/// decompressed bytes. Stops at the first run that does not match.
pub(crate) fn check<S: ReadAt>(
    bundle: &Bundle<S>,
    places: &[RunPlace],
    pinned: &[StoredRun],
    threads: usize,
    mut done: impl FnMut(u64),
) -> Result<(), RunMismatch> {
    let archive = bundle.archive();
    let frames = archive.table().frames();
    ordered_map(
        threads,
        threads * 2,
        places
            .iter()
            .map(|place| place.frames.clone())
            .enumerate()
            .map(Ok),
        Vec::new,
        |buf: &mut Vec<u8>, (run, range): (usize, Range<usize>)| {
            let mut hasher = Sha256::new();
            let mut bytes = 0;
            for index in range {
                let frame = &frames[index];
                buf.resize(frame.compressed as usize, 0);
                archive
                    .source()
                    .read_exact_at(buf, frame.offset)
                    .map_err(|e| ArchiveError::io(format!("reading frame {index}"), e))
                    .and_then(|()| check_frame(index, frame, buf))
                    .map_err(|e| (run, e))?;
                hasher.update(&buf[..]);
                bytes += u64::from(frame.decompressed);
            }
            Ok((run, hex::encode(hasher.finalize()), bytes))
        },
        |result: Result<(usize, String, u64), (usize, ArchiveError)>| match result {
            Ok((run, found, bytes)) if pinned.get(run).is_some_and(|p| p.sha256 == found) => {
                done(bytes);
                Ok(())
            }
            Ok((run, found, _)) => Err(RunMismatch {
                run,
                found: Ok(found),
            }),
            Err((run, e)) => Err(RunMismatch { run, found: Err(e) }),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_end_after_the_member_that_fills_them() {
        let mib = 1 << 20;
        // 10 + 10 MiB fill a run (with headers and padding past 16 MiB); then 3 small ones,
        // one large, and a small rest.
        let sizes = [10 * mib, 10 * mib, 1, 2, 3, 17 * mib, 5];
        let members = sizes.iter().map(|&s| ("blobs/sha256/x", s));
        assert_eq!(plan(members), vec![2, 4, 1]);
        assert_eq!(plan(std::iter::empty()), Vec::<usize>::new());
        assert_eq!(plan([("a", 0)]), vec![1]);
    }
}
