//! Packing a staged directory into a bundle: every regular file below it becomes a member, in
//! a fixed order, with `bundle.json` and `SHA256SUMS` generated in front; the output appears
//! only when complete.

use super::trust::trusted_comment;
use super::{BundleError, Progress};
use crate::archive::parallel::ordered_map;
use crate::archive::tar::check_path;
use crate::archive::writer::{Content, Member};
use crate::archive::{Writer, WriterOptions};
use crate::manifest::{
    checksums_file, is_signature_path, rfc3339, Entry, Kind, Manifest, CHECKSUMS_PATH,
    FIRST_SIGNATURE_PATH, FORMAT, MANIFEST_PATH,
};
use crate::sign::SecretKey;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
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

/// A staged file found under the input directory.
#[derive(Debug, Clone)]
struct Staged {
    path: String,
    file: PathBuf,
    size: u64,
    mtime: u64,
}

/// Result of a pack.
#[derive(Debug, Clone)]
pub struct PackReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// Size of the bundle file.
    pub compressed: u64,
}

/// Packs `dir` into the bundle file `out`, signed by `signer` if given, and writes the
/// signature beside it as `<out>.minisig`. Nothing is left at `out` on failure.
pub fn pack(
    dir: &Path,
    out: &Path,
    options: &PackOptions,
    signer: Option<&SecretKey>,
    progress: &dyn Progress,
) -> Result<PackReport, BundleError> {
    let staged = collect(dir)?;
    let timestamp = options
        .timestamp
        .unwrap_or_else(|| staged.iter().map(|s| s.mtime).max().unwrap_or(0));
    let entries = hash_all(&staged, options.threads, progress)?;
    let checksums = checksums_file(&entries);
    let mut members = vec![Entry {
        path: CHECKSUMS_PATH.into(),
        size: checksums.len() as u64,
        sha256: hex::encode(Sha256::digest(&checksums)),
        kind: Kind::Checksums,
    }];
    members.extend(entries);
    let manifest = Manifest {
        format: FORMAT.into(),
        name: options.name.clone(),
        version: options.version.clone(),
        created: rfc3339(timestamp),
        tool: concat!("bundle ", env!("CARGO_PKG_VERSION")).into(),
        platforms: options.platforms.clone(),
        members,
    };
    let manifest_bytes = manifest.to_bytes();
    let signature = signer.map(|key| sign_manifest(key, &manifest, &manifest_bytes));

    let mut to_write = vec![
        Member::bytes(MANIFEST_PATH, manifest_bytes),
        Member::bytes(CHECKSUMS_PATH, checksums),
    ];
    to_write.extend(staged.into_iter().map(|s| Member {
        path: s.path,
        size: s.size,
        content: Content::File(s.file),
    }));
    if let Some(sig) = &signature {
        to_write.push(Member::bytes(FIRST_SIGNATURE_PATH, sig.clone().into_bytes()));
    }
    let total = to_write.iter().map(|m| m.size).sum();
    let writer_options = WriterOptions {
        level: options.level,
        threads: options.threads,
        mtime: timestamp,
        ..WriterOptions::default()
    };
    let compressed = write_atomically(out, |file| {
        progress.start("pack", total);
        let mut writer = Writer::new(std::io::BufWriter::new(file), writer_options);
        writer.write_members(to_write, &mut |n| progress.advance(n))?;
        let (buf, _) = writer.finish()?;
        progress.finish();
        buf.into_inner().map_err(|e| BundleError::io(out, e.into_error()))
    })?;
    write_sidecar(out, signature.as_deref())?;
    Ok(PackReport {
        manifest,
        compressed,
    })
}

/// Signs `bundle.json` with the bundle's trusted comment; returns the `.minisig` text.
pub fn sign_manifest(key: &SecretKey, manifest: &Manifest, manifest_bytes: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(manifest_bytes));
    let untrusted = format!(
        "signature of bundle {} {} by key {}",
        manifest.name,
        manifest.version,
        key.id()
    );
    key.sign(manifest_bytes, &untrusted, &trusted_comment(manifest, &sha))
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
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(BundleError::io(&sidecar, e))
            }
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
        .tempfile_in(dir)
        .map_err(|e| BundleError::io(dir, e))?;
    let (file, temp_path) = temp.into_parts();
    let file = fill(file)?;
    file.sync_all().map_err(|e| BundleError::io(path, e))?;
    let size = file
        .metadata()
        .map_err(|e| BundleError::io(path, e))?
        .len();
    temp_path
        .persist(path)
        .map_err(|e| BundleError::io(path, e.error))?;
    Ok(size)
}

/// Every regular file under `dir`, in bundle order; refuses symlinks, special files, names
/// that are not UTF-8 or not safe, and the reserved names.
fn collect(dir: &Path) -> Result<Vec<Staged>, BundleError> {
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
                check_path(&path).map_err(|e| input(&file, &e.to_string()))?;
                if path == MANIFEST_PATH || path == CHECKSUMS_PATH || is_signature_path(&path) {
                    return Err(input(&file, "reserved name: the bundle generates it"));
                }
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                out.push(Staged {
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
    out.sort_by(|a, b| {
        (Kind::rank(&a.path), a.path.as_bytes()).cmp(&(Kind::rank(&b.path), b.path.as_bytes()))
    });
    Ok(out)
}

fn input(file: &Path, reason: &str) -> BundleError {
    BundleError::Input {
        path: file.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Hashes every staged file, several at a time.
fn hash_all(
    staged: &[Staged],
    threads: usize,
    progress: &dyn Progress,
) -> Result<Vec<Entry>, BundleError> {
    progress.start("hash", staged.iter().map(|s| s.size).sum());
    let mut entries = Vec::with_capacity(staged.len());
    ordered_map(
        threads,
        threads * 4,
        staged.iter().map(Ok::<_, BundleError>),
        || vec![0u8; 1 << 20],
        |buf, s: &Staged| hash_file(&s.file, s.size, buf).map(|sha| (s, sha)),
        |result| {
            let (s, sha256) = result?;
            progress.advance(s.size);
            entries.push(Entry {
                path: s.path.clone(),
                size: s.size,
                sha256,
                kind: Kind::of_path(&s.path),
            });
            Ok(())
        },
    )?;
    progress.finish();
    Ok(entries)
}

fn hash_file(path: &Path, size: u64, buf: &mut [u8]) -> Result<String, BundleError> {
    let mut file = File::open(path).map_err(|e| BundleError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BundleError::io(path, e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    if total != size {
        return Err(input(path, "file changed size while being packed"));
    }
    Ok(hex::encode(hasher.finalize()))
}
