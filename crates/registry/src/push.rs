//! The registry client for pushing: blob existence checks, cross-repository mounts, monolithic
//! and chunked uploads (restarted from scratch when they fail part-way, so bodies are read
//! again from their source), and manifests by digest or tag.
//!
//! Bodies larger than 1 MiB are streamed from their source as the registry takes them,
//! so neither the chunk size nor the blob size costs memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION,
};
use reqwest::{Method, StatusCode, Url};

use super::client::Client;
use super::error::RegistryError;
use super::request::{header_text, Call, RequestBody};
use super::transport::endpoint;
use oci::{error_chain as chain, Pieces};
use oci::{Digest, Reference};

/// Default chunk size: blobs up to this size go up in one PUT; larger ones in PATCH chunks
/// of this size. Every request costs a registry a round of bookkeeping (and, for a
/// filesystem-backed one, an fsync), so chunks are large.
pub const CHUNK_SIZE: u64 = 64 << 20;

/// Bodies up to this size are read into memory and replayed on retries; larger ones are
/// streamed, read again from the source for every attempt.
const BUFFERED: u64 = 1 << 20;

/// How often a streaming request reports the bytes it has sent.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Whole-upload attempts (each a fresh upload session) before giving up.
const UPLOAD_ATTEMPTS: u32 = 4;

/// Where a blob's bytes come from. Called again for every attempt; called inside a tokio
/// runtime.
pub trait BlobSource: Send + Sync {
    /// The blob's bytes `[offset, offset + len)`, in order.
    fn pieces(&self, offset: u64, len: u64) -> Pieces;
}

/// Bytes in memory are a source too.
impl BlobSource for Bytes {
    fn pieces(&self, offset: u64, len: u64) -> Pieces {
        oci::pieces_of(self, offset, len)
    }
}

/// Reads a whole (small) range into memory.
async fn collect(mut pieces: Pieces, len: u64) -> std::io::Result<Bytes> {
    let mut parts: Vec<Bytes> = Vec::new();
    while let Some(piece) = pieces.recv().await {
        parts.push(piece?);
    }
    let bytes = match parts.len() {
        1 => parts.swap_remove(0),
        _ => Bytes::from(parts.concat()),
    };
    if bytes.len() as u64 != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("the blob source gave {} bytes of {len}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// A request body streaming `pieces`, counting in `sent` the bytes handed on.
fn streamed(pieces: Pieces, sent: Arc<AtomicU64>) -> reqwest::Body {
    let state = (pieces, sent);
    reqwest::Body::wrap_stream(futures_util::stream::unfold(
        state,
        |(mut pieces, sent)| async move {
            let piece = pieces.recv().await?;
            if let Ok(piece) = &piece {
                sent.fetch_add(piece.len() as u64, Ordering::Relaxed);
            }
            Some((piece, (pieces, sent)))
        },
    ))
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
        body: Option<RequestBody<'a>>,
        endpoint: &'a super::transport::Endpoint,
    ) -> Call<'a> {
        Call {
            endpoint,
            repository: endpoint.repository(&reference.repository),
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
            "/v2/{}/blobs/uploads/?mount={digest}&from={}",
            endpoint.repository(&reference.repository),
            endpoint.repository(from)
        );
        let call = self.push_call(
            reference,
            &what,
            Method::POST,
            path,
            HeaderMap::new(),
            Some(RequestBody::Bytes(Bytes::new())),
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
    /// `progress` gets byte counts as the body goes out (each byte once, even when the upload
    /// restarts).
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
                // Refusals, and a registry that cannot be reached at all (its requests had
                // their own retries), are not worth a new upload session.
                Err(
                    e @ (RegistryError::Unauthorized { .. }
                    | RegistryError::Forbidden { .. }
                    | RegistryError::Config { .. }
                    | RegistryError::Unreachable { .. }),
                ) => return Err(e),
                Err(e) if attempt >= UPLOAD_ATTEMPTS => return Err(e),
                Err(e) => {
                    let what = format!("upload of blob {digest}");
                    let at = (reference.registry.as_str(), what.as_str());
                    self.inner()
                        .pause(at, (attempt, UPLOAD_ATTEMPTS), None, chain(&e))
                        .await;
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
            format!(
                "/v2/{}/blobs/uploads/",
                endpoint.repository(&reference.repository)
            ),
            HeaderMap::new(),
            Some(RequestBody::Bytes(Bytes::new())),
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
        // One request's body: `[offset, offset + len)` of the blob.
        let send = |method: Method, path: String, offset: u64, len: u64| {
            let mut headers = octet_stream();
            headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
            if method == Method::PATCH {
                if let Ok(v) = HeaderValue::from_str(&format!("{}-{}", offset, offset + len - 1)) {
                    headers.insert(CONTENT_RANGE, v);
                }
            }
            // Bytes of this request's body handed to the connection so far, by this attempt.
            let sent = Arc::new(AtomicU64::new(0));
            let make = {
                let sent = Arc::clone(&sent);
                move || {
                    sent.store(0, Ordering::Relaxed);
                    streamed(source.pieces(offset, len), Arc::clone(&sent))
                }
            };
            let endpoint = &endpoint;
            let what = &what;
            async move {
                let body = if len == 0 {
                    RequestBody::Bytes(Bytes::new())
                } else if len <= BUFFERED {
                    RequestBody::Bytes(collect(source.pieces(offset, len), len).await.map_err(io)?)
                } else {
                    RequestBody::Stream(&make)
                };
                let call =
                    self.push_call(reference, what, method, path, headers, Some(body), endpoint);
                let response = {
                    let request = inner.send(&call);
                    tokio::pin!(request);
                    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
                    loop {
                        tokio::select! {
                            response = &mut request => break response?,
                            _ = tick.tick() => progress(offset + sent.load(Ordering::Relaxed)),
                        }
                    }
                };
                let expected = if call.method == Method::PATCH {
                    response.status() == StatusCode::ACCEPTED
                } else {
                    response.status().is_success()
                };
                if !expected {
                    return Err(inner.status_error(&call, response).await);
                }
                Ok(response)
            }
        };
        if size <= chunk {
            let path = with_query(&location, &format!("digest={digest}"));
            send(Method::PUT, path, 0, size).await?;
            progress(size);
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let len = (size - offset).min(chunk);
            let response = send(Method::PATCH, location.clone(), offset, len).await?;
            location = next(response.headers())?;
            offset += len;
            progress(offset);
        }
        send(
            Method::PUT,
            with_query(&location, &format!("digest={digest}")),
            size,
            0,
        )
        .await?;
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
            endpoint.repository(&reference.repository),
            reference.manifest_reference()
        );
        let call = self.push_call(
            reference,
            &what,
            Method::PUT,
            path,
            headers,
            Some(RequestBody::Bytes(Bytes::from(bytes))),
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

    fn pieces_of(parts: &[&'static [u8]]) -> Pieces {
        let (tx, rx) = tokio::sync::mpsc::channel(parts.len().max(1));
        for part in parts {
            tx.try_send(Ok(Bytes::from_static(part))).unwrap();
        }
        rx
    }

    #[tokio::test]
    async fn small_bodies_are_collected_whole_or_refused_when_short() {
        let one = collect(pieces_of(&[b"abcdef"]), 6).await.unwrap();
        assert_eq!(&one[..], b"abcdef");
        let three = collect(pieces_of(&[b"ab", b"cd", b"ef"]), 6).await.unwrap();
        assert_eq!(&three[..], b"abcdef");
        let short = collect(pieces_of(&[b"ab", b"cd"]), 6).await.unwrap_err();
        assert!(short.to_string().contains("gave 4 bytes of 6"), "{short}");
        let ranged = collect(Bytes::from_static(b"0123456789").pieces(3, 4), 4).await;
        assert_eq!(&ranged.unwrap()[..], b"3456");
    }

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
