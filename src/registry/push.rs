//! The registry client for pushing: blob existence checks, cross-repository mounts, monolithic
//! and chunked uploads (restarted from scratch when they fail part-way, so bodies are read
//! again from their source), and manifests by digest or tag.

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};

use super::client::Client;
use super::error::RegistryError;
use super::reference::{Digest, Reference};
use super::request::{header_text, Call};
use super::transport::endpoint;

/// Default chunk size: blobs up to this size go up in one PUT; larger ones in PATCH chunks
/// of this size.
pub const CHUNK_SIZE: u64 = 8 << 20;

/// Whole-upload attempts (each a fresh upload session) before giving up.
const UPLOAD_ATTEMPTS: u32 = 4;

/// Where a blob's bytes come from: called with an offset and a length, it must return exactly
/// those bytes. It may block (it runs inside `block_in_place`); it is called again when an
/// upload restarts.
pub trait BlobSource: Send + Sync {
    /// `len` bytes from `offset`.
    fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>>;
}

/// How a blob reached the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// The registry already had it.
    Present,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

fn octet_stream() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

/// The path and query of an upload `Location` (absolute or relative).
fn location_path(location: &str) -> Option<String> {
    let base = Url::parse("http://registry.invalid/").ok()?;
    let url = base.join(location).ok()?;
    Some(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}

fn with_query(path: &str, pair: &str) -> String {
    if path.contains('?') {
        format!("{path}&{pair}")
    } else {
        format!("{path}?{pair}")
    }
}

impl Client {
    #[allow(clippy::too_many_arguments)]
    fn push_call<'a>(
        &self,
        reference: &'a Reference,
        what: &'a str,
        method: Method,
        path: String,
        headers: HeaderMap,
        body: Option<Bytes>,
        endpoint: &'a super::transport::Endpoint,
    ) -> Call<'a> {
        Call {
            endpoint,
            repository: &reference.repository,
            what,
            method,
            path,
            headers,
            body,
            push: true,
        }
    }

    /// Mounts blob `digest` from repository `from` into `reference`'s repository. `true` if
    /// the registry mounted it (201); `false` if it declined (202) and an upload is needed.
    pub async fn mount_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let endpoint = endpoint(&self.inner().config.registries, reference);
        let what = format!("blob {digest} of {}", reference.name());
        let path = format!(
            "/v2/{}/blobs/uploads/?mount={digest}&from={from}",
            reference.repository
        );
        let call = self.push_call(
            reference,
            &what,
            Method::POST,
            path,
            HeaderMap::new(),
            Some(Bytes::new()),
            &endpoint,
        );
        let response = self.inner().send(&call).await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            s if s.is_success() => Ok(false),
            _ => Err(self.inner().status_error(&call, response).await),
        }
    }

    /// Uploads blob `digest` of `size` bytes read from `source` (one PUT up to `chunk`
    /// bytes, PATCH chunks of `chunk` bytes above), restarting the whole upload when it fails.
    /// `progress` gets each chunk's byte count once it is accepted (once, even when the
    /// upload restarts).
    pub async fn upload_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        chunk: u64,
        source: &dyn BlobSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let chunk = chunk.max(1);
        // A restarted upload sends bytes again: report only what goes beyond the furthest
        // point any attempt reached.
        let reached = std::sync::atomic::AtomicU64::new(0);
        let advance = |position: u64| {
            let before = reached.fetch_max(position, std::sync::atomic::Ordering::Relaxed);
            if position > before {
                progress(position - before);
            }
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .upload_once(reference, digest, size, chunk, source, &advance)
                .await
            {
                Ok(()) => return Ok(()),
                Err(
                    e @ (RegistryError::Unauthorized { .. }
                    | RegistryError::Forbidden { .. }
                    | RegistryError::Config { .. }),
                ) => return Err(e),
                Err(e) if attempt >= UPLOAD_ATTEMPTS => return Err(e),
                Err(_) => {
                    tokio::time::sleep(self.inner().policy.delay(attempt, None)).await;
                }
            }
        }
    }

    /// One upload session; `progress` gets the position reached so far.
    #[allow(clippy::too_many_arguments)]
    async fn upload_once(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
        chunk: u64,
        source: &dyn BlobSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), RegistryError> {
        let inner = self.inner();
        let endpoint = endpoint(&inner.config.registries, reference);
        let what = format!("blob {digest} of {}", reference.name());
        let io = |source: std::io::Error| RegistryError::Io {
            registry: endpoint.label.clone(),
            what: what.clone(),
            source,
        };
        let protocol = |message: String| RegistryError::Protocol {
            registry: endpoint.label.clone(),
            what: what.clone(),
            message,
        };
        let start = self.push_call(
            reference,
            &what,
            Method::POST,
            format!("/v2/{}/blobs/uploads/", reference.repository),
            HeaderMap::new(),
            Some(Bytes::new()),
            &endpoint,
        );
        let response = inner.send(&start).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(inner.status_error(&start, response).await);
        }
        let next = |headers: &HeaderMap| {
            header_text(headers, LOCATION.as_str())
                .and_then(location_path)
                .ok_or_else(|| protocol("upload answer without a usable Location".to_string()))
        };
        let mut location = next(response.headers())?;
        let read = |offset: u64, len: usize| {
            tokio::task::block_in_place(|| source.read(offset, len)).map_err(io)
        };
        let final_body = if size <= chunk {
            Bytes::from(read(0, size as usize)?)
        } else {
            let mut offset = 0;
            while offset < size {
                let len = (size - offset).min(chunk);
                let data = Bytes::from(read(offset, len as usize)?);
                let mut headers = octet_stream();
                if let Ok(v) = HeaderValue::from_str(&format!("{}-{}", offset, offset + len - 1)) {
                    headers.insert(CONTENT_RANGE, v);
                }
                let call = self.push_call(
                    reference,
                    &what,
                    Method::PATCH,
                    location.clone(),
                    headers,
                    Some(data),
                    &endpoint,
                );
                let response = inner.send(&call).await?;
                if response.status() != StatusCode::ACCEPTED {
                    return Err(inner.status_error(&call, response).await);
                }
                location = next(response.headers())?;
                offset += len;
                progress(offset);
            }
            Bytes::new()
        };
        let body_len = final_body.len() as u64;
        let call = self.push_call(
            reference,
            &what,
            Method::PUT,
            with_query(&location, &format!("digest={digest}")),
            octet_stream(),
            Some(final_body),
            &endpoint,
        );
        let response = inner.send(&call).await?;
        if !response.status().is_success() {
            return Err(inner.status_error(&call, response).await);
        }
        if body_len > 0 {
            progress(size);
        }
        Ok(())
    }

    /// Puts a manifest or index under `reference`'s digest, or its tag if it has no digest.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<(), RegistryError> {
        let endpoint = endpoint(&self.inner().config.registries, reference);
        let what = format!("image {reference}");
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::Protocol {
                registry: endpoint.label.clone(),
                what: what.clone(),
                message: format!("bad media type {media_type:?}"),
            })?,
        );
        let path = format!(
            "/v2/{}/manifests/{}",
            reference.repository,
            reference.manifest_reference()
        );
        let call = self.push_call(
            reference,
            &what,
            Method::PUT,
            path,
            headers,
            Some(Bytes::from(bytes)),
            &endpoint,
        );
        let response = self.inner().send(&call).await?;
        if !response.status().is_success() {
            return Err(self.inner().status_error(&call, response).await);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_become_paths() {
        assert_eq!(
            location_path("http://h:5000/v2/a/blobs/uploads/u?_state=x").as_deref(),
            Some("/v2/a/blobs/uploads/u?_state=x")
        );
        assert_eq!(
            location_path("/v2/a/blobs/uploads/u").as_deref(),
            Some("/v2/a/blobs/uploads/u")
        );
        assert_eq!(with_query("/p?a=1", "digest=d"), "/p?a=1&digest=d");
        assert_eq!(with_query("/p", "digest=d"), "/p?digest=d");
    }
}
