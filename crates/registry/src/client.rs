//! The registry client for pulling: manifests and indexes (digest-checked, size-limited),
//! blobs streamed to any writer while they are hashed (resumed with `Range` after a broken
//! connection), and the HEAD requests that say whether something exists.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use reqwest::{Method, Response, StatusCode};
use sha2::Digest as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::auth::AuthCache;
use super::config::ClientConfig;
use super::credentials::Auth;
use super::error::RegistryError;
use super::request::{header_text, Call};
use super::retry::RetryPolicy;
use super::transport::{endpoint, Endpoint, Transport};
use oci::{error_chain as chain, media, Digest, Reference, MAX_MANIFEST_SIZE};

/// A manifest or index as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// One of the four types in [`media::MANIFEST_TYPES`].
    pub media_type: String,
    /// SHA-256 of `bytes`, checked against the reference's digest and the registry's
    /// `Docker-Content-Digest` header.
    pub digest: Digest,
    /// The exact bytes served (at most [`MAX_MANIFEST_SIZE`]).
    pub bytes: Vec<u8>,
}

/// An async client for OCI registries. Cheap to clone: clones share connections, bearer
/// tokens (cached per registry, repository and scope) and looked-up credentials.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// What clones of a [`Client`] share.
pub(crate) struct Inner {
    pub config: ClientConfig,
    pub policy: RetryPolicy,
    pub transport: Transport,
    pub auth: AuthCache,
    pub logins: Mutex<HashMap<String, Option<Auth>>>,
}

impl Inner {
    /// After `failed` of `max` attempts of `call` failed for `reason`: the error when the
    /// budget is spent, else a pause (reported) before the next attempt.
    pub(crate) async fn retry_or_give_up(
        &self,
        call: &crate::request::Call<'_>,
        (failed, max): (u32, u32),
        reason: String,
    ) -> Result<(), RegistryError> {
        if failed >= max {
            return Err(self.too_many(call, failed, reason));
        }
        self.pause(
            (call.endpoint.label.as_str(), call.what),
            (failed, max),
            None,
            reason,
        )
        .await;
        Ok(())
    }

    /// Tells the observer about a retry of `what` at `registry` after `failed` of `max`
    /// attempts failed for `reason`, then waits the policy's delay (`Retry-After` when the
    /// registry gave one).
    pub(crate) async fn pause(
        &self,
        (registry, what): (&str, &str),
        (failed, max): (u32, u32),
        retry_after: Option<std::time::Duration>,
        reason: String,
    ) {
        let wait = self.policy.delay(failed, retry_after);
        if let Some(observer) = &self.config.retry_observer {
            observer.retrying(&crate::Retry {
                registry: registry.to_string(),
                what: what.to_string(),
                failed,
                max_attempts: max,
                reason,
                wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            });
        }
        tokio::time::sleep(wait).await;
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("registries", &self.inner.config.registries)
            .field("max_attempts", &self.inner.policy.max_attempts)
            .finish_non_exhaustive()
    }
}

/// How a body read ended badly.
enum BodyError {
    /// The connection broke: worth another attempt.
    Network(reqwest::Error),
    /// More than the limit: not worth another attempt.
    TooLarge,
}

async fn read_limited(response: Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Network)?;
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `Content-Length` header itself (reqwest reports 0 for any HEAD answer).
fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_text(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.trim().parse().ok())
}

/// The `mediaType` field of a manifest's JSON, for registries that send a vague
/// `Content-Type`.
fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Declared {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Declared>(bytes).ok()?.media_type
}

impl Client {
    /// A client with its own connection pools. Fails if a CA file cannot be read.
    pub fn new(config: ClientConfig) -> Result<Self, RegistryError> {
        for (name, settings) in &config.registries {
            if let Some(mirror) = &settings.mirror {
                let (host, prefix) = crate::transport::split_mirror(mirror);
                let component_ok = |c: &str| {
                    !c.is_empty()
                        && c.bytes().all(|b| {
                            b.is_ascii_lowercase()
                                || b.is_ascii_digit()
                                || matches!(b, b'.' | b'_' | b'-')
                        })
                };
                if host.is_empty()
                    || mirror.contains("://")
                    || mirror.contains(char::is_whitespace)
                    || !prefix.is_none_or(|p| p.split('/').all(component_ok))
                {
                    return Err(RegistryError::Config {
                        message: format!(
                            "mirror {mirror:?} of registry {name} must be host[:port] with an \
                             optional /path prefix of lower-case components"
                        ),
                    });
                }
            }
        }
        let transport = Transport::new(&config)?;
        let policy = RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            max_connect_attempts: config.max_connect_attempts.max(1),
            base: config.base_backoff,
            max: config.max_backoff,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                policy,
                transport,
                auth: AuthCache::default(),
                logins: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What clones share, for the push half of the client.
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    fn endpoint(&self, reference: &Reference) -> Endpoint {
        endpoint(&self.inner.config.registries, reference)
    }

    /// Fetches the manifest or index `reference` names (by digest if it has one, else by
    /// tag), accepting OCI and Docker manifests and indexes. The digest is computed from the
    /// bytes; it must equal the reference's digest and the `Docker-Content-Digest` header
    /// when there is one.
    pub async fn get_manifest(
        &self,
        reference: &Reference,
    ) -> Result<FetchedManifest, RegistryError> {
        let endpoint = self.endpoint(reference);
        let what = format!("image {reference}");
        let call = manifest_call(&endpoint, reference, &what, Method::GET);
        let inner = &self.inner;
        let protocol = |message: String| RegistryError::Protocol {
            registry: endpoint.label.clone(),
            what: what.clone(),
            message,
        };
        let mut failed = 0;
        let (content_type, header_digest, bytes) = loop {
            let response = inner.send(&call).await?;
            if !response.status().is_success() {
                return Err(inner.status_error(&call, response).await);
            }
            let headers = response.headers();
            let content_type =
                header_text(headers, CONTENT_TYPE.as_str()).map(|t| media::essence(t).to_string());
            let header_digest = header_text(headers, "docker-content-digest").map(str::to_string);
            if content_length(headers).is_some_and(|n| n > MAX_MANIFEST_SIZE) {
                return Err(protocol(format!(
                    "manifest is larger than {MAX_MANIFEST_SIZE} bytes"
                )));
            }
            match read_limited(response, MAX_MANIFEST_SIZE).await {
                Ok(bytes) => break (content_type, header_digest, bytes),
                Err(BodyError::TooLarge) => {
                    return Err(protocol(format!(
                        "manifest is larger than {MAX_MANIFEST_SIZE} bytes"
                    )))
                }
                Err(BodyError::Network(e)) => {
                    failed += 1;
                    let budget = (failed, inner.policy.max_attempts);
                    inner.retry_or_give_up(&call, budget, chain(&e)).await?;
                }
            }
        };
        let media_type = match content_type {
            Some(t) if media::is_index(&t) || media::is_manifest(&t) => t,
            other => match declared_media_type(&bytes) {
                Some(t) if media::is_index(&t) || media::is_manifest(&t) => t,
                _ => {
                    return Err(protocol(format!(
                        "unsupported manifest media type {}",
                        other.as_deref().unwrap_or("(none)")
                    )))
                }
            },
        };
        let digest = Digest::of(&bytes);
        if let Some(expected) = &reference.digest {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: endpoint.label.clone(),
                    what: what.clone(),
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        if let Some(announced) = header_digest_of(&header_digest, &protocol)? {
            if announced != digest {
                return Err(RegistryError::DigestMismatch {
                    registry: endpoint.label.clone(),
                    what: format!("{what} (Docker-Content-Digest header)"),
                    expected: announced.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        Ok(FetchedManifest {
            media_type,
            digest,
            bytes,
        })
    }

    /// Whether the manifest `reference` names exists: its media type, digest and size, or
    /// `None` if the registry does not have it. Falls back to a GET if the registry's HEAD
    /// answer lacks the digest or size.
    pub async fn head_manifest(
        &self,
        reference: &Reference,
    ) -> Result<Option<(String, Digest, u64)>, RegistryError> {
        let endpoint = self.endpoint(reference);
        let what = format!("image {reference}");
        let call = manifest_call(&endpoint, reference, &what, Method::HEAD);
        let inner = &self.inner;
        let response = inner.send(&call).await?;
        if !response.status().is_success() {
            return match inner.status_error(&call, response).await {
                RegistryError::NotFound { .. } => Ok(None),
                other => Err(other),
            };
        }
        let protocol = |message: String| RegistryError::Protocol {
            registry: endpoint.label.clone(),
            what: what.clone(),
            message,
        };
        let headers = response.headers();
        let media_type = header_text(headers, CONTENT_TYPE.as_str())
            .map(|t| media::essence(t).to_string())
            .filter(|t| media::is_index(t) || media::is_manifest(t));
        let digest = header_digest_of(
            &header_text(headers, "docker-content-digest").map(str::to_string),
            &protocol,
        )?;
        let size = content_length(headers);
        match (media_type, digest, size) {
            (Some(media_type), Some(digest), Some(size)) => {
                if let Some(expected) = &reference.digest {
                    if *expected != digest {
                        return Err(RegistryError::DigestMismatch {
                            registry: endpoint.label.clone(),
                            what: format!("{what} (Docker-Content-Digest header)"),
                            expected: expected.to_string(),
                            actual: digest.to_string(),
                        });
                    }
                }
                Ok(Some((media_type, digest, size)))
            }
            _ => {
                let fetched = match self.get_manifest(reference).await {
                    Ok(fetched) => fetched,
                    Err(RegistryError::NotFound { .. }) => return Ok(None),
                    Err(other) => return Err(other),
                };
                let size = fetched.bytes.len() as u64;
                Ok(Some((fetched.media_type, fetched.digest, size)))
            }
        }
    }

    /// Streams blob `digest` of `reference`'s repository into `out`, hashing as it goes, and
    /// returns its size. `progress` is called with the number of bytes received so far.
    /// A broken download is resumed with a `Range` request; redirects to other hosts (object
    /// stores, CDNs) are followed without our credentials. Fails with
    /// [`RegistryError::DigestMismatch`] or [`RegistryError::SizeMismatch`] when the content
    /// is not what was asked for; `out` then holds the bad bytes, for the caller to discard.
    pub async fn get_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        expected_size: Option<u64>,
        out: &mut (impl AsyncWrite + Unpin),
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, RegistryError> {
        let endpoint = self.endpoint(reference);
        let what = format!("blob {digest} of {}", reference.name());
        let inner = &self.inner;
        let size_mismatch = |expected: u64, actual: u64| RegistryError::SizeMismatch {
            registry: endpoint.label.clone(),
            what: what.clone(),
            expected,
            actual,
        };
        let protocol = |message: String| RegistryError::Protocol {
            registry: endpoint.label.clone(),
            what: what.clone(),
            message,
        };
        let mut hasher = sha2::Sha256::new();
        let mut received: u64 = 0;
        let mut failed = 0;
        loop {
            let mut headers = HeaderMap::new();
            if received > 0 {
                if let Ok(value) = HeaderValue::from_str(&format!("bytes={received}-")) {
                    headers.insert(RANGE, value);
                }
            }
            let call = blob_call(&endpoint, reference, digest, &what, Method::GET, headers);
            let response = inner.send(&call).await?;
            let mut skip = 0;
            match response.status() {
                StatusCode::OK => {
                    skip = received;
                    if let (Some(announced), Some(expected)) =
                        (content_length(response.headers()), expected_size)
                    {
                        if announced != expected {
                            return Err(size_mismatch(expected, announced));
                        }
                    }
                }
                StatusCode::PARTIAL_CONTENT if received > 0 => {
                    let start = header_text(response.headers(), CONTENT_RANGE.as_str())
                        .and_then(|v| v.trim().strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    if start != Some(received) {
                        return Err(protocol(format!(
                            "asked to resume at byte {received}, got Content-Range {:?}",
                            header_text(response.headers(), CONTENT_RANGE.as_str())
                        )));
                    }
                }
                _ => return Err(inner.status_error(&call, response).await),
            }
            let mut stream = response.bytes_stream();
            let mut broken = None;
            while let Some(chunk) = stream.next().await {
                let mut bytes = match chunk {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                };
                if skip > 0 {
                    let n = skip.min(bytes.len() as u64);
                    let _ = bytes.split_to(n as usize);
                    skip -= n;
                }
                if bytes.is_empty() {
                    continue;
                }
                received += bytes.len() as u64;
                if let Some(expected) = expected_size {
                    if received > expected {
                        return Err(size_mismatch(expected, received));
                    }
                }
                hasher.update(&bytes);
                out.write_all(&bytes)
                    .await
                    .map_err(|source| RegistryError::Io {
                        registry: endpoint.label.clone(),
                        what: what.clone(),
                        source,
                    })?;
                progress(received);
            }
            match broken {
                None if skip > 0 => {
                    return Err(protocol(format!(
                        "the registry served fewer bytes than the {received} already received"
                    )))
                }
                None => break,
                Some(e) => {
                    failed += 1;
                    let budget = (failed, inner.policy.max_attempts);
                    inner.retry_or_give_up(&call, budget, chain(&e)).await?;
                }
            }
        }
        out.flush().await.map_err(|source| RegistryError::Io {
            registry: endpoint.label.clone(),
            what: what.clone(),
            source,
        })?;
        if let Some(expected) = expected_size {
            if received != expected {
                return Err(size_mismatch(expected, received));
            }
        }
        let actual = Digest::from_sha256(&hasher.finalize());
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                registry: endpoint.label.clone(),
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(received)
    }

    /// The size of blob `digest` in `reference`'s repository, or `None` if it is not there.
    pub async fn head_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let endpoint = self.endpoint(reference);
        let what = format!("blob {digest} of {}", reference.name());
        let call = blob_call(
            &endpoint,
            reference,
            digest,
            &what,
            Method::HEAD,
            HeaderMap::new(),
        );
        let response = self.inner.send(&call).await?;
        if !response.status().is_success() {
            return match self.inner.status_error(&call, response).await {
                RegistryError::NotFound { .. } => Ok(None),
                other => Err(other),
            };
        }
        let protocol = |message: String| RegistryError::Protocol {
            registry: endpoint.label.clone(),
            what: what.clone(),
            message,
        };
        let said = header_text(response.headers(), "docker-content-digest").map(str::to_string);
        if let Some(other) = header_digest_of(&said, &protocol)? {
            if other != *digest {
                return Err(protocol(format!(
                    "the registry answers for it with the content of {other}"
                )));
            }
        }
        match content_length(response.headers()) {
            Some(size) => Ok(Some(size)),
            None => Err(protocol("HEAD answer without Content-Length".to_string())),
        }
    }

    /// Whether the repository of `reference` holds blob `digest` of `size` bytes: a HEAD whose
    /// answer names this digest (when it names one, as the distribution specification lets
    /// registries do) and this size. A registry that claims the blob with another digest or
    /// size is an error, never a blob counted as present.
    pub async fn has_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<bool, RegistryError> {
        match self.head_blob(reference, digest).await? {
            None => Ok(false),
            Some(found) if found == size => Ok(true),
            Some(found) => Err(RegistryError::SizeMismatch {
                registry: self.endpoint(reference).label,
                what: format!("blob {digest} of {}", reference.name()),
                expected: size,
                actual: found,
            }),
        }
    }
}

/// The `Docker-Content-Digest` value as a digest; `None` if absent or of another algorithm.
fn header_digest_of(
    value: &Option<String>,
    protocol: &dyn Fn(String) -> RegistryError,
) -> Result<Option<Digest>, RegistryError> {
    match value.as_deref().map(str::trim) {
        Some(text) if text.starts_with("sha256:") => Digest::parse(text)
            .map(Some)
            .map_err(|e| protocol(format!("bad Docker-Content-Digest header: {e}"))),
        _ => Ok(None),
    }
}

fn manifest_call<'a>(
    endpoint: &'a Endpoint,
    reference: &'a Reference,
    what: &'a str,
    method: Method,
) -> Call<'a> {
    let mut headers = HeaderMap::new();
    if let Ok(accept) = HeaderValue::from_str(&media::MANIFEST_TYPES.join(", ")) {
        headers.insert(ACCEPT, accept);
    }
    let repository = endpoint.repository(&reference.repository);
    Call {
        endpoint,
        path: format!(
            "/v2/{repository}/manifests/{}",
            reference.manifest_reference()
        ),
        repository,
        what,
        method,
        headers,
        body: None,
        push: false,
    }
}

fn blob_call<'a>(
    endpoint: &'a Endpoint,
    reference: &'a Reference,
    digest: &Digest,
    what: &'a str,
    method: Method,
    headers: HeaderMap,
) -> Call<'a> {
    let repository = endpoint.repository(&reference.repository);
    Call {
        endpoint,
        path: format!("/v2/{repository}/blobs/{digest}"),
        repository,
        what,
        method,
        headers,
        body: None,
        push: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// Callers spawn pulls on tokio's multi-threaded runtime: the futures must be `Send`.
    #[test]
    fn futures_are_send() {
        let client = Client::new(ClientConfig::default()).unwrap();
        let r = Reference::parse("127.0.0.1:1/x/y:z").unwrap();
        let d = Digest::of(b"");
        let mut out = Vec::new();
        let progress = |_: u64| {};
        is_send(&client.get_manifest(&r));
        is_send(&client.head_manifest(&r));
        is_send(&client.head_blob(&r, &d));
        is_send(&client.get_blob(&r, &d, None, &mut out, &progress));
    }

    #[test]
    fn bad_mirror_and_ca_files_are_config_errors() {
        let mut config = ClientConfig::default();
        config.registries.insert(
            "docker.io".into(),
            super::super::RegistrySettings {
                insecure: false,
                mirror: Some("http://mirror/path".into()),
            },
        );
        assert!(matches!(
            Client::new(config),
            Err(RegistryError::Config { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.crt");
        std::fs::write(&not_pem, "not a certificate").unwrap();
        for ca in [not_pem, dir.path().join("missing.crt")] {
            let config = ClientConfig {
                ca_files: vec![ca.clone()],
                ..ClientConfig::default()
            };
            match Client::new(config) {
                Err(e @ RegistryError::Config { .. }) => {
                    assert!(e.to_string().contains(&ca.display().to_string()), "{e}")
                }
                other => panic!("expected Config error, got {other:?}"),
            }
        }
    }
}
