//! The site's files (files.toml): pinned into manifests.lock by `bundle lock`, read again from
//! their sources by the build, which refuses one whose content changed since, and carried as
//! `files/<name>` with `files.json` listing them (name, SHA-256, size, description).

use oci::Digest;
use serde::Serialize;

use crate::spec::{FilesFile, LockedFile};
use crate::store::download::{download, DownloadError};
use crate::store::{BlobCache, StoreError};

/// The member listing the files.
pub const FILES_INDEX: &str = "files.json";

/// Why a file cannot be locked or carried, naming it.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Its source cannot be read.
    #[error("file {name} (files.toml line {line})")]
    Fetch {
        /// The file's name.
        name: String,
        /// Its line in files.toml.
        line: usize,
        /// Why.
        #[source]
        source: DownloadError,
    },
    /// Its source changed after it was locked.
    #[error(
        "file {name} (files.toml line {line}): {source_url} now hashes to {actual}, \
         manifests.lock pins {expected}; run `bundle lock` to take the new content"
    )]
    Changed {
        /// The file's name.
        name: String,
        /// Its line in files.toml.
        line: usize,
        /// Where it was read.
        source_url: String,
        /// What the lock pins.
        expected: Digest,
        /// What the source holds now.
        actual: Digest,
    },
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line of `files.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// The file's name.
    pub name: String,
    /// Its bundle member.
    pub path: String,
    /// sha256 of the content (files.json writes its hex as `sha256`).
    #[serde(rename = "sha256", serialize_with = "hex_of")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// What it is.
    pub description: String,
}

fn hex_of<S: serde::Serializer>(digest: &Digest, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(digest.hex())
}

/// The lock's `[[file]]` entries for `files`: an entry whose name and source are unchanged is
/// kept unless `refresh` accepts its name; any other is read from its source and pinned.
pub async fn resolve(
    files: &FilesFile,
    previous: &[LockedFile],
    refresh: &dyn Fn(&str) -> bool,
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<LockedFile>, FileError> {
    let mut locked = Vec::with_capacity(files.files.len());
    for spec in &files.files {
        if let Some(kept) = previous.iter().find(|l| l.matches(spec)) {
            if !refresh(&spec.name) {
                locked.push(kept.clone());
                continue;
            }
        }
        let stored = download(http, &files.source_url(spec), cache, None)
            .await
            .map_err(|source| FileError::Fetch {
                name: spec.name.clone(),
                line: spec.line,
                source,
            })?;
        locked.push(LockedFile {
            name: spec.name.clone(),
            source: spec.source.clone(),
            sha256: stored.digest,
            size: stored.size,
        });
    }
    Ok(locked)
}

/// How the lock's files differ from files.toml (none: no files.toml and no entries), one
/// line each.
pub fn mismatches(files: Option<&FilesFile>, locked: &[LockedFile]) -> Vec<String> {
    let specs = files.map(|f| f.files.as_slice()).unwrap_or_default();
    let mut problems = Vec::new();
    for spec in specs {
        if !locked.iter().any(|l| l.matches(spec)) {
            let path = files
                .map(|f| f.path.display().to_string())
                .unwrap_or_default();
            problems.push(format!(
                "{path}:{}: file {:?} from {:?} is not in the lock",
                spec.line, spec.name, spec.source
            ));
        }
    }
    for entry in locked {
        if !specs.iter().any(|s| entry.matches(s)) {
            problems.push(format!(
                "the lock has file {:?} from {:?}, which files.toml does not list",
                entry.name, entry.source
            ));
        }
    }
    problems
}

/// Reads every locked file from its source into the cache and checks it against the lock:
/// paths and `file://` sources are read every time (a local build output changes in place),
/// `http(s)://` ones only when the cache lacks the pinned content. Returns the entries of
/// `files.json`, in lock order.
pub async fn fetch(
    files: &FilesFile,
    locked: &[LockedFile],
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<FileEntry>, FileError> {
    let mut entries = Vec::with_capacity(locked.len());
    for entry in locked {
        let Some(spec) = files.files.iter().find(|s| entry.matches(s)) else {
            continue;
        };
        let url = files.source_url(spec);
        let expected = (!url.starts_with("file://")).then_some(&entry.sha256);
        let fetch_error = |source| FileError::Fetch {
            name: spec.name.clone(),
            line: spec.line,
            source,
        };
        let stored = match download(http, &url, cache, expected).await {
            Err(DownloadError::DigestMismatch { actual, .. }) => {
                return Err(changed(spec.line, entry, url, actual))
            }
            other => other.map_err(fetch_error)?,
        };
        if stored.digest != entry.sha256 {
            return Err(changed(spec.line, entry, url, stored.digest));
        }
        entries.push(FileEntry {
            name: entry.name.clone(),
            path: entry.bundle_path(),
            digest: entry.sha256.clone(),
            size: entry.size,
            description: spec.description.clone(),
        });
    }
    Ok(entries)
}

fn changed(line: usize, entry: &LockedFile, source_url: String, actual: Digest) -> FileError {
    FileError::Changed {
        name: entry.name.clone(),
        line,
        source_url,
        expected: entry.sha256.clone(),
        actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_toml(dir: &Path) -> FilesFile {
        let path = dir.join("files.toml");
        std::fs::write(
            &path,
            "[[file]]\nname = \"app.apk\"\nsource = \"app.apk\"\ndescription = \"the app\"\n",
        )
        .unwrap();
        FilesFile::load(&path).unwrap()
    }

    #[tokio::test]
    async fn a_file_changed_after_locking_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path().join("cache")).unwrap();
        let http = reqwest::Client::new();
        std::fs::write(dir.path().join("app.apk"), b"version 1").unwrap();
        let files = files_toml(dir.path());
        let locked = resolve(&files, &[], &|_| false, &http, &cache)
            .await
            .unwrap();
        assert_eq!(locked[0].sha256, Digest::of(b"version 1"));
        let entries = fetch(&files, &locked, &http, &cache).await.unwrap();
        assert_eq!(entries[0].path, "files/app.apk");
        assert_eq!(entries[0].description, "the app");

        std::fs::write(dir.path().join("app.apk"), b"version 2").unwrap();
        let error = fetch(&files, &locked, &http, &cache)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("file app.apk (files.toml line 2): file://")
                && error.contains(&Digest::of(b"version 2").to_string())
                && error.contains("run `bundle lock`"),
            "{error}"
        );
        // A build's lock keeps the entry (same name and source); `bundle lock` takes the new
        // content.
        let kept = resolve(&files, &locked, &|_| false, &http, &cache)
            .await
            .unwrap();
        assert_eq!(kept, locked);
        let taken = resolve(&files, &locked, &|name| name == "app.apk", &http, &cache)
            .await
            .unwrap();
        assert_eq!(taken[0].sha256, Digest::of(b"version 2"));
        fetch(&files, &taken, &http, &cache).await.unwrap();
    }

    #[test]
    fn the_lock_and_files_toml_must_list_the_same_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = files_toml(dir.path());
        let stray = LockedFile {
            name: "old.apk".into(),
            source: "old.apk".into(),
            sha256: Digest::of(b"x"),
            size: 1,
        };
        let problems = mismatches(Some(&files), &[stray]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("file \"app.apk\""));
        assert!(problems[1].contains("\"old.apk\""));
        assert!(mismatches(None, &[]).is_empty());
    }
}
