//! Extraction: every member written below a fresh directory, each one renamed into place only
//! after its SHA-256 matched `bundle.json`.

use crate::archive::ReadAt;
use crate::verify::{check_members, MemberSink};
use crate::{Bundle, BundleError, Progress};
use oci::DigestWriter;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Extracts `bundle` into `dir`, which must not exist or be empty. Signatures should have been
/// checked by the caller ([`crate::verify::verify`] or [`crate::TrustPolicy::check`]).
/// Returns the number of files written.
///
/// Everything is written into a temporary sibling of `dir`, renamed to `dir` only once every
/// member passed its check: a failed extraction leaves `dir` as it was (absent, or empty),
/// never a directory that looks complete.
pub fn extract<S: ReadAt>(
    bundle: &Bundle<S>,
    dir: &Path,
    threads: usize,
    progress: &dyn Progress,
) -> Result<usize, BundleError> {
    let existed = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BundleError::Input {
                    path: dir.display().to_string(),
                    reason: "the target directory is not empty".into(),
                });
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(BundleError::io(dir, e)),
    };
    let parent = match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
    let name = dir
        .file_name()
        .map_or_else(|| "extract".into(), |n| n.to_string_lossy().into_owned());
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(parent)
        .map_err(|e| BundleError::io(parent, e))?;
    let signatures = bundle
        .signatures()
        .map_err(|problem| BundleError::Layout(problem.to_string()))?;
    let signatures: Vec<_> = signatures.iter().map(|(_, s)| s.clone()).collect();
    let mut writer = DirWriter {
        root: staging.path().to_path_buf(),
        open: None,
        written: 0,
    };
    check_members(
        bundle,
        Some(&signatures),
        threads,
        progress,
        Some(&mut writer),
    )?;
    let written = writer.written;
    drop(writer);
    if existed {
        std::fs::remove_dir(dir).map_err(|e| BundleError::io(dir, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        BundleError::io(dir, e)
    })?;
    Ok(written)
}

/// Writes the member at `path` to `target` through `<target>.partial`, renamed into place
/// only once its SHA-256 matched bundle.json; `mode` sets its Unix permissions.
pub fn extract_member<S: ReadAt>(
    bundle: &Bundle<S>,
    path: &str,
    target: &Path,
    mode: u32,
) -> Result<(), BundleError> {
    let missing = || BundleError::Missing {
        path: path.to_string(),
    };
    let entry = bundle
        .toc()
        .members
        .iter()
        .find(|m| m.path == path)
        .ok_or_else(missing)?;
    let located = bundle.member(path).ok_or_else(missing)?;
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| {
        let file = File::create(&partial).map_err(|e| BundleError::io(&partial, e))?;
        let mut writer = DigestWriter::new(BufWriter::with_capacity(1 << 20, file));
        std::io::copy(
            &mut bundle.member_reader(located, 0, located.size),
            &mut writer,
        )
        .map_err(|e| BundleError::io(&partial, e))?;
        let (file, digest, _) = writer.finish();
        let file = file
            .into_inner()
            .map_err(|e| BundleError::io(&partial, e.into_error()))?;
        file.sync_all().map_err(|e| BundleError::io(&partial, e))?;
        if digest.hex() != entry.sha256 {
            return Err(BundleError::Changed {
                path: path.to_string(),
                expected: entry.sha256.clone(),
                actual: digest.hex().to_string(),
            });
        }
        set_mode(&partial, mode)?;
        std::fs::rename(&partial, target).map_err(|e| BundleError::io(target, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| BundleError::io(path, e))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), BundleError> {
    Ok(())
}

/// Writes members to `<path>.partial` and renames them on commit.
struct DirWriter {
    root: PathBuf,
    open: Option<(PathBuf, PathBuf, BufWriter<File>)>,
    written: usize,
}

impl MemberSink for DirWriter {
    fn begin(&mut self, path: &str) -> Result<(), BundleError> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BundleError::io(parent, e))?;
        }
        let mut partial = target.clone().into_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = File::create(&partial).map_err(|e| BundleError::io(&partial, e))?;
        self.open = Some((partial, target, BufWriter::with_capacity(1 << 20, file)));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        if let Some((partial, _, file)) = self.open.as_mut() {
            file.write_all(bytes)
                .map_err(|e| BundleError::io(&*partial, e))?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), BundleError> {
        if let Some((partial, target, file)) = self.open.take() {
            file.into_inner()
                .map_err(|e| BundleError::io(&partial, e.into_error()))?;
            std::fs::rename(&partial, &target).map_err(|e| BundleError::io(&target, e))?;
            self.written += 1;
        }
        Ok(())
    }
}

impl Drop for DirWriter {
    fn drop(&mut self) {
        if let Some((partial, _, _)) = self.open.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}
