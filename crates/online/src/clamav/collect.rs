//! Taking a signature set into the build: each database (and its `.sign`, where the source
//! has one) downloaded from the `cvdupdate` directory or private mirror into the blob cache,
//! validated with [`Cvd::verify`], and pinned in manifests.lock as a [`LockedDatabase`];
//! later builds fetch exactly the pinned bytes (from the cache when present).

use std::path::Path;

use super::{ClamavError, Cvd, VerifyOptions};
use crate::spec::{ClamavSpec, LockedDatabase};
use crate::store::{download, BlobCache, DownloadError, StoreError};

/// Why the signature set cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A download failed or is not what the lock pins.
    #[error("ClamAV database {name}")]
    Download {
        /// The database.
        name: String,
        /// The cause.
        #[source]
        source: DownloadError,
    },
    /// The database does not validate.
    #[error(transparent)]
    Invalid(#[from] ClamavError),
    /// Neither images.toml nor the command line says where the databases come from, and the
    /// lock has none.
    #[error(
        "no ClamAV database source: set [clamav] dir or mirror in images.toml, or pass \
         --clamav-dir or --clamav-mirror"
    )]
    NoSource,
    /// The cache or staging failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// I/O while staging a database for validation.
    #[error("staging {path} for validation")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A database file ready for the image layer: its name and the cached content.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    /// File name in the database directory.
    pub name: String,
    /// The cached file.
    pub path: std::path::PathBuf,
    /// Its size.
    pub size: u64,
}

/// Downloads every database of `spec` from `source` (a `file://` directory or `http(s)://`
/// mirror URL ending in `/`) into `cache`, validates each and returns the lock entries in
/// `spec.databases` order. A `.cud` is tried only when unsigned databases are allowed.
pub async fn collect(
    spec: &ClamavSpec,
    source: &str,
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<LockedDatabase>, CollectError> {
    let staging = tempfile::Builder::new()
        .prefix("clamav.")
        .tempdir_in(cache.root().join("tmp"))
        .map_err(|e| CollectError::Io {
            path: cache.root().display().to_string(),
            source: e,
        })?;
    let options = VerifyOptions {
        cert_dir: spec.cert_dir.clone(),
        allow_unsigned: spec.allow_unsigned,
        at: spec.certificates_valid_at,
    };
    let mut locked = Vec::with_capacity(spec.databases.len());
    for name in &spec.databases {
        let extensions: &[&str] = if spec.allow_unsigned {
            &["cvd", "cud"]
        } else {
            &["cvd"]
        };
        let mut found = None;
        for extension in extensions {
            let file = format!("{name}.{extension}");
            let url = format!("{source}{file}");
            match download::download(http, &url, cache, None).await {
                Ok(stored) => {
                    found = Some((file, url, stored));
                    break;
                }
                Err(DownloadError::NotFound { .. }) => continue,
                Err(source) => {
                    return Err(CollectError::Download {
                        name: name.clone(),
                        source,
                    })
                }
            }
        }
        let Some((file, url, stored)) = found else {
            return Err(CollectError::Download {
                name: name.clone(),
                source: DownloadError::NotFound {
                    url: format!("{source}{name}.cvd"),
                },
            });
        };
        let sign = match download::download(http, &format!("{url}.sign"), cache, None).await {
            Ok(stored) => Some(stored),
            Err(DownloadError::NotFound { .. }) => None,
            Err(source) => {
                return Err(CollectError::Download {
                    name: name.clone(),
                    source,
                })
            }
        };
        // Validation reads the file under its own name, with its .sign beside it.
        let staged = staging.path().join(&file);
        stage(&cache.file_of(&stored.digest), &staged)?;
        if let Some(sign) = &sign {
            stage(
                &cache.file_of(&sign.digest),
                &staging.path().join(format!("{file}.sign")),
            )?;
        }
        let database = tokio::task::block_in_place(|| -> Result<Cvd, ClamavError> {
            let database = Cvd::read(&staged)?;
            database.verify(&options)?;
            Ok(database)
        })?;
        locked.push(LockedDatabase {
            file,
            url,
            version: database.version,
            signatures: database.signatures,
            functionality_level: database.functionality_level,
            build_time: database.build_time_secs,
            sha256: stored.digest,
            size: stored.size,
            sign_sha256: sign.as_ref().map(|s| s.digest.clone()),
            sign_size: sign.as_ref().map(|s| s.size),
        });
    }
    Ok(locked)
}

/// Every locked database file (and `.sign`), from the cache or downloaded again from its
/// recorded URL, each checked against its pinned digest.
pub async fn fetch(
    locked: &[LockedDatabase],
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<DatabaseFile>, CollectError> {
    let mut files = Vec::new();
    for database in locked {
        let mut wanted = vec![(
            database.file.clone(),
            database.url.clone(),
            database.sha256.clone(),
        )];
        if let Some(digest) = &database.sign_sha256 {
            wanted.push((
                format!("{}.sign", database.file),
                database.sign_url(),
                digest.clone(),
            ));
        }
        for (name, url, digest) in wanted {
            let stored = download::download(http, &url, cache, Some(&digest))
                .await
                .map_err(|source| CollectError::Download {
                    name: database.file.clone(),
                    source,
                })?;
            files.push(DatabaseFile {
                name,
                path: cache.file_of(&stored.digest),
                size: stored.size,
            });
        }
    }
    Ok(files)
}

/// Links (or copies) `from` to `to`.
fn stage(from: &Path, to: &Path) -> Result<(), CollectError> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .map_err(|e| CollectError::Io {
            path: to.display().to_string(),
            source: e,
        })
}
