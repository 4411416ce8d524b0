//! Packing a staged directory into a bundle: every regular file below it becomes a member, in
//! a fixed order, with `bundle.json` and `SHA256SUMS` generated in front; the output appears
//! only when complete.

use crate::archive::tar::check_path;
use crate::archive::writer::{stored_member_frames, Content, Member, Written};
use crate::archive::ArchiveError;
use crate::archive::{Writer, WriterOptions};
use crate::sign::SecretKey;
use crate::stored_runs::RunHashers;
use crate::toc::{
    is_signature_path, with_checksums, Entry, Kind, StoredRun, TableOfContents, CHECKSUMS_PATH,
    FIRST_SIGNATURE_PATH, FORMAT, TOC_PATH,
};
use crate::trust::trusted_comment;
use crate::writeback::Writeback;
use crate::{BundleError, Progress};
use oci::error_chain;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Metadata and settings for a pack.
#[derive(Debug, Clone)]
pub struct PackOptions {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Target platforms recorded in `bundle.json`.
    pub platforms: Vec<String>,
    /// Timestamp for `created` and every header; `None` takes the newest input mtime.
    pub timestamp: Option<u64>,
    /// Compression and hashing threads.
    pub threads: usize,
    /// zstd level.
    pub level: i32,
}

/// Latest timestamp a ustar header can hold (11 octal digits), in the year 2242.
const MAX_TIMESTAMP: u64 = 0o777_7777_7777;

/// One file to pack: where it goes in the bundle and where it is read from.
#[derive(Debug, Clone)]
pub struct Input {
    /// Path inside the bundle.
    pub path: String,
    /// File to read.
    pub file: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its modification time (seconds since the epoch), for the default timestamp.
    pub mtime: u64,
}

impl Input {
    /// `bytes` written to `dir/path` as member `path` (a file the build makes rather than
    /// takes from the cache: index.json, external-blobs.json, the bill of materials).
    pub fn staged(dir: &Path, path: &str, bytes: &[u8], mtime: u64) -> Result<Input, BundleError> {
        let file = dir.join(path);
        std::fs::write(&file, bytes).map_err(|e| BundleError::io(&file, e))?;
        Ok(Input {
            path: path.to_string(),
            file,
            size: bytes.len() as u64,
            mtime,
        })
    }
}

/// The bytes of a JSON member: `value` pretty-printed, with a final newline (bundle.json,
/// index.json and every listing the build writes).
pub fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Result of a pack.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The table of contents written.
    pub toc: TableOfContents,
    /// Size of the bundle file.
    pub compressed: u64,
}

/// Packs `dir` into the bundle file `out`, signed by `signer` if given, and writes the
/// signature beside it as `<out>.minisig`. Nothing is left at `out` on failure.
///
/// One pass over the inputs: `bundle.json` and `SHA256SUMS` are first written as stored frames
/// with placeholder hashes (their sizes do not depend on the hashes), the members are hashed as
/// they are compressed and written, and so are their frames as written, in the runs planned
/// from the members' sizes; the two stored frames are then overwritten in place.
pub fn pack(
    dir: &Path,
    out: &Path,
    options: &PackOptions,
    signer: Option<&SecretKey>,
    progress: &dyn Progress,
) -> Result<PackReport, BundleError> {
    pack_inputs(collect(dir)?, out, options, signer, progress)
}

/// Packs `inputs` (in bundle order, see [`sort_inputs`]) into the bundle file `out`, as
/// [`pack`] does for a directory.
pub fn pack_inputs(
    staged: Vec<Input>,
    out: &Path,
    options: &PackOptions,
    signer: Option<&SecretKey>,
    progress: &dyn Progress,
) -> Result<PackReport, BundleError> {
    check_inputs(&staged)?;
    let timestamp = options
        .timestamp
        .unwrap_or_else(|| staged.iter().map(|s| s.mtime).max().unwrap_or(0));
    if timestamp > MAX_TIMESTAMP {
        return Err(BundleError::Input {
            path: "timestamp".into(),
            reason: format!("{timestamp} is past what a tar header holds ({MAX_TIMESTAMP})"),
        });
    }
    let placeholder = "0".repeat(64);
    let skeleton: Vec<Entry> = staged
        .iter()
        .map(|s| Entry {
            path: s.path.clone(),
            size: s.size,
            sha256: placeholder.clone(),
            kind: Kind::of_path(&s.path),
        })
        .collect();
    let mut runs = RunHashers::new(staged.iter().map(|s| (s.path.as_str(), s.size)));
    let created = oci::time::format_rfc3339(timestamp)?;
    let (skeleton_toc, skeleton_sums) =
        describe(options, &created, skeleton.clone(), runs.placeholders());
    let writer_options = WriterOptions {
        level: options.level,
        threads: options.threads,
        mtime: timestamp,
        ..WriterOptions::default()
    };
    let total = staged.iter().map(|s| s.size).sum();
    let mut report = None;
    let compressed = write_atomically(out, |file| {
        let file = Writeback::new(file).map_err(|e| BundleError::io(out, e))?;
        let mut writer = Writer::new(BufWriter::with_capacity(1 << 20, file), writer_options);
        writer.write_stored_members(&[
            Member::bytes(TOC_PATH, skeleton_toc.to_bytes()),
            Member::bytes(CHECKSUMS_PATH, skeleton_sums.clone()),
        ])?;
        progress.start("pack", total);
        let members = staged.iter().map(|s| Member {
            path: s.path.clone(),
            size: s.size,
            content: Content::File(s.file.clone()),
        });
        let hashes = hash_alongside(staged.len(), |hash| {
            writer.write_members(members, &mut |w, frame| {
                progress.advance(w.data().len() as u64);
                runs.update(w.member, frame);
                hash(w);
            })
        })?;
        progress.finish();
        check_blob_names(&staged, &hashes)?;
        let mut entries = skeleton.clone();
        for (entry, sha256) in entries.iter_mut().zip(hashes) {
            entry.sha256 = sha256;
        }
        let (toc, sums) = describe(options, &created, entries, runs.finish());
        let toc_bytes = toc.to_bytes();
        if toc_bytes.len() != skeleton_toc.to_bytes().len() || sums.len() != skeleton_sums.len() {
            return Err(BundleError::Layout(
                "bundle.json changed size once hashes were filled in".into(),
            ));
        }
        let signature = signer.map(|key| sign_toc(key, &toc, &toc_bytes));
        if let Some(sig) = &signature {
            let member = Member::bytes(FIRST_SIGNATURE_PATH, sig.clone().into_bytes());
            writer.write_stored_members(&[member])?;
        }
        let (buf, _) = writer.finish()?;
        let mut file = buf
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(Writeback::into_file)
            .map_err(|e| BundleError::io(out, e))?;
        overwrite_stored(
            &mut file,
            out,
            timestamp,
            &[(TOC_PATH, &toc_bytes), (CHECKSUMS_PATH, &sums)],
        )?;
        report = Some((toc, signature));
        Ok(file)
    })?;
    let Some((toc, signature)) = report else {
        return Err(BundleError::Layout("pack produced no toc".into()));
    };
    write_sidecar(out, signature.as_deref())?;
    Ok(PackReport { toc, compressed })
}

/// Runs `write`, which hands every written frame to the function it is given; a thread of
/// its own hashes the frames' data per member meanwhile, so hashing and writing overlap.
/// Returns each member's SHA-256 in hex.
fn hash_alongside(
    members: usize,
    write: impl FnOnce(&mut dyn FnMut(Written)) -> Result<(), ArchiveError>,
) -> Result<Vec<String>, BundleError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Written>(4);
    std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut hashers = vec![Sha256::new(); members];
            for w in rx {
                if let Some(h) = hashers.get_mut(w.member) {
                    h.update(w.data());
                }
            }
            hashers
                .into_iter()
                .map(|h| hex::encode(h.finalize()))
                .collect::<Vec<_>>()
        });
        let result = write(&mut |w| {
            // The receiver lives until every sender is gone, so a send cannot fail here.
            let _ = tx.send(w);
        });
        drop(tx);
        let hashes = hasher
            .join()
            .map_err(|_| BundleError::Layout("the hashing thread failed".into()))?;
        result?;
        Ok(hashes)
    })
}

/// Every member named `blobs/sha256/<64 hex digits>` hashed, while it was packed, to its
/// name: the packer is where cached blobs are read, so it is where their content is trusted
/// (docs/architecture.md).
fn check_blob_names(staged: &[Input], hashes: &[String]) -> Result<(), BundleError> {
    for (input, actual) in staged.iter().zip(hashes) {
        let named = input
            .path
            .strip_prefix("blobs/sha256/")
            .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if let Some(hex) = named {
            if hex != actual {
                return Err(BundleError::BlobMismatch {
                    path: input.path.clone(),
                    file: input.file.clone(),
                    actual: actual.clone(),
                });
            }
        }
    }
    Ok(())
}

/// `bundle.json` and `SHA256SUMS` for the staged `entries`, whose stored bytes `runs` pin.
fn describe(
    options: &PackOptions,
    created: &str,
    entries: Vec<Entry>,
    runs: Vec<StoredRun>,
) -> (TableOfContents, Vec<u8>) {
    let (members, checksums) = with_checksums(entries);
    let toc = TableOfContents {
        format: FORMAT.into(),
        name: options.name.clone(),
        version: options.version.clone(),
        created: created.to_string(),
        tool: concat!("bundle ", env!("CARGO_PKG_VERSION")).into(),
        platforms: options.platforms.clone(),
        members,
        stored: Some(runs),
    };
    (toc, checksums)
}

/// Overwrites the stored frames at the start of `file` with `members`, which must have the
/// sizes of the placeholders written there.
fn overwrite_stored(
    file: &mut File,
    out: &Path,
    mtime: u64,
    members: &[(&str, &[u8])],
) -> Result<(), BundleError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| BundleError::io(out, e))?;
    for (path, data) in members {
        for (frame, _) in stored_member_frames(path, data, mtime)? {
            file.write_all(&frame)
                .map_err(|e| BundleError::io(out, e))?;
        }
    }
    Ok(())
}

/// Signs `bundle.json` with the bundle's trusted comment; returns the `.minisig` text.
pub fn sign_toc(key: &SecretKey, toc: &TableOfContents, toc_bytes: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(toc_bytes));
    let untrusted = format!(
        "signature of bundle {} {} by key {}",
        toc.name,
        toc.version,
        key.id()
    );
    key.sign(toc_bytes, &untrusted, &trusted_comment(toc, &sha))
        .to_file_string()
}

/// Writes `<bundle>.minisig` beside the bundle with `text`, or removes a stale one.
pub fn write_sidecar(bundle: &Path, text: Option<&str>) -> Result<(), BundleError> {
    let mut name = bundle.as_os_str().to_owned();
    name.push(".minisig");
    let sidecar = PathBuf::from(name);
    match text {
        Some(text) => write_atomically(&sidecar, |mut file| {
            file.write_all(text.as_bytes())
                .map_err(|e| BundleError::io(&sidecar, e))?;
            Ok(file)
        })
        .map(|_| ()),
        None => match std::fs::remove_file(&sidecar) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BundleError::io(&sidecar, e)),
            _ => Ok(()),
        },
    }
}

/// Creates `path` by writing a temporary file beside it with `fill`, syncing it and renaming
/// it into place; on any error the temporary file is removed and `path` is untouched.
/// Returns the size of the file.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(File) -> Result<File, BundleError>,
) -> Result<u64, BundleError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".bundle-partial-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| BundleError::io(dir, e))?;
    let (file, temp_path) = temp.into_parts();
    let file = fill(file)?;
    file.sync_all().map_err(|e| BundleError::io(path, e))?;
    let size = file.metadata().map_err(|e| BundleError::io(path, e))?.len();
    temp_path
        .persist(path)
        .map_err(|e| BundleError::io(path, e.error))?;
    Ok(size)
}

/// Every regular file under `dir`, in bundle order; refuses symlinks, special files, names
/// that are not UTF-8 or not safe, and the reserved names.
fn collect(dir: &Path) -> Result<Vec<Input>, BundleError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((abs, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&abs).map_err(|e| BundleError::io(&abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BundleError::io(&abs, e))?;
            let file = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(input(&file, "file name is not UTF-8"));
            };
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(&file).map_err(|e| BundleError::io(&file, e))?;
            if meta.is_dir() {
                stack.push((file, path));
            } else if meta.is_file() {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                out.push(Input {
                    path,
                    file,
                    size: meta.len(),
                    mtime,
                });
            } else {
                return Err(input(
                    &file,
                    "not a regular file or directory (symlinks and special files are not packed)",
                ));
            }
        }
    }
    sort_inputs(&mut out);
    Ok(out)
}

/// Puts inputs in bundle order: `oci-layout`, `index.json`, blobs, then the rest by path.
pub fn sort_inputs(inputs: &mut [Input]) {
    inputs.sort_by(|a, b| {
        (Kind::rank(&a.path), a.path.as_bytes()).cmp(&(Kind::rank(&b.path), b.path.as_bytes()))
    });
}

/// Refuses unsafe or reserved paths, duplicates and inputs out of bundle order.
fn check_inputs(inputs: &[Input]) -> Result<(), BundleError> {
    for (i, s) in inputs.iter().enumerate() {
        check_path(&s.path).map_err(|e| input(&s.file, &error_chain(&e)))?;
        if s.path == TOC_PATH || s.path == CHECKSUMS_PATH || is_signature_path(&s.path) {
            return Err(input(&s.file, "reserved name: the bundle generates it"));
        }
        if let Some(prev) = i.checked_sub(1).map(|j| &inputs[j]) {
            let order = (Kind::rank(&prev.path), prev.path.as_bytes())
                .cmp(&(Kind::rank(&s.path), s.path.as_bytes()));
            if order != std::cmp::Ordering::Less {
                return Err(input(
                    &s.file,
                    "duplicate path or inputs not in bundle order",
                ));
            }
        }
    }
    Ok(())
}

fn input(file: &Path, reason: &str) -> BundleError {
    BundleError::Input {
        path: file.display().to_string(),
        reason: reason.to_string(),
    }
}
