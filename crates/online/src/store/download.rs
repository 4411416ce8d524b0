//! Downloads of plain files (tool archives, signature databases) into the blob cache:
//! `http://`, `https://` or `file://` URLs, streamed and hashed as they arrive, checked
//! against the digest the lock pins when there is one, and not fetched again when the cache
//! already holds that digest.

use super::cache::{BlobCache, StoreError};
use futures_util::StreamExt as _;
use oci::Digest;
use std::io::Write as _;

/// Why a download failed, naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server could not be reached or answered with an error status.
    #[error("downloading {url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered 404, or the `file://` path does not exist.
    #[error("{url}: not found")]
    NotFound {
        /// The URL.
        url: String,
    },
    /// A `file://` URL that cannot be read.
    #[error("reading {url}")]
    File {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The content is not what the lock pins.
    #[error("{url}: content hashes to {actual}, the lock pins {expected}")]
    DigestMismatch {
        /// The URL.
        url: String,
        /// The pinned digest.
        expected: Digest,
        /// What arrived.
        actual: Digest,
    },
    /// The HTTP client cannot be set up (a CA file, TLS).
    #[error("setting up the HTTP client: {0}")]
    Client(String),
    /// A URL scheme other than http, https and file.
    #[error("{0}: only http://, https:// and file:// URLs are supported")]
    Scheme(String),
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An HTTP client for downloads: system roots plus `ca_files`, redirects followed (release
/// files often live behind one), time-outs on connecting and reading.
pub fn http_client(ca_files: &[std::path::PathBuf]) -> Result<reqwest::Client, DownloadError> {
    let config_error = DownloadError::Client;
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("bundle/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(120));
    for root in registry::ca_roots(ca_files).map_err(config_error)? {
        builder = builder.add_root_certificate(root);
    }
    builder
        .build()
        .map_err(|e| DownloadError::Client(oci::error_chain(&e)))
}

/// A file in the cache: its digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// sha256 of the content, the cache key.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Whether it was already cached (nothing downloaded).
    pub cached: bool,
}

/// Fetches `url` into `cache`. With `expected`, a cached copy is used when present and
/// anything else is refused with [`DownloadError::DigestMismatch`].
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    cache: &BlobCache,
    expected: Option<&Digest>,
) -> Result<Stored, DownloadError> {
    if let Some(digest) = expected {
        let cache_copy = cache.clone();
        let wanted = digest.clone();
        let cached = tokio::task::spawn_blocking(move || cache_copy.verify(&wanted, None))
            .await
            .map_err(|e| http_error(url, e.to_string()))??;
        if cached {
            let path = cache.file_of(digest);
            let size = std::fs::metadata(&path)
                .map_err(|source| DownloadError::File {
                    url: path.display().to_string(),
                    source,
                })?
                .len();
            return Ok(Stored {
                digest: digest.clone(),
                size,
                cached: true,
            });
        }
    }
    let mut incoming = cache.incoming()?;
    if let Some(path) = url.strip_prefix("file://") {
        let file_error = |source| DownloadError::File {
            url: url.to_string(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                DownloadError::NotFound {
                    url: url.to_string(),
                }
            } else {
                file_error(e)
            }
        })?;
        std::io::copy(&mut file, &mut incoming).map_err(file_error)?;
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| http_error(url, oci::error_chain(&e)))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(DownloadError::NotFound {
                url: url.to_string(),
            });
        }
        if !status.is_success() {
            return Err(http_error(url, format!("the server answered {status}")));
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| http_error(url, oci::error_chain(&e)))?;
            incoming
                .write_all(&chunk)
                .map_err(|source| DownloadError::File {
                    url: url.to_string(),
                    source,
                })?;
        }
    } else {
        return Err(DownloadError::Scheme(url.to_string()));
    }
    let actual = incoming.digest();
    if let Some(expected) = expected {
        if actual != *expected {
            return Err(DownloadError::DigestMismatch {
                url: url.to_string(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    let (digest, size) = incoming.commit()?;
    Ok(Stored {
        digest,
        size,
        cached: false,
    })
}

fn http_error(url: &str, message: String) -> DownloadError {
    DownloadError::Http {
        url: url.to_string(),
        message,
    }
}
