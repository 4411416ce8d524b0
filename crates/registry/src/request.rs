//! One registry request from start to answer: authentication (bearer tokens, Basic),
//! redirects (credentials stay on the registry's own origin), retries of transient failures,
//! and turning error answers into [`RegistryError`]s that name registry and content.

use std::time::SystemTime;

use futures_util::StreamExt as _;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;

use super::auth::{basic_header, parse_challenges, Challenge, TokenResponse};
use super::client::Inner;
use super::credentials::Auth;
use super::error::RegistryError;
use super::retry::{parse_retry_after, permanent_transport_error, retryable_status};
use super::transport::{host_is_insecure, Endpoint};
use oci::error_chain as chain;

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 10;
/// How much of an error answer's body is read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One request to a registry, described well enough to repeat it and to name it in errors.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// Where it goes.
    pub endpoint: &'a Endpoint,
    /// The repository as the endpoint knows it (under a mirror's path prefix, if any), for
    /// paths, token scopes and errors.
    pub repository: String,
    /// What is asked for, for errors: `image ...` or `blob ... of ...`.
    pub what: &'a str,
    /// GET or HEAD.
    pub method: Method,
    /// Path and query, starting with `/v2/`.
    pub path: String,
    /// Extra headers (`Accept`, `Range`).
    pub headers: HeaderMap,
    /// Request body, made again for every attempt (pushes only).
    pub body: Option<RequestBody<'a>>,
    /// Whether the token scope must allow pushing (`pull,push`).
    pub push: bool,
}

/// A push's request body, sent again on every attempt, redirect or authentication retry.
pub(crate) enum RequestBody<'a> {
    /// Bytes in memory, replayed as they are.
    Bytes(bytes::Bytes),
    /// A fresh stream from the function each time.
    Stream(&'a (dyn Fn() -> reqwest::Body + Sync)),
}

impl RequestBody<'_> {
    fn make(&self) -> reqwest::Body {
        match self {
            RequestBody::Bytes(bytes) => bytes.clone().into(),
            RequestBody::Stream(make) => make(),
        }
    }
}

impl std::fmt::Debug for RequestBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestBody::Bytes(bytes) => write!(f, "{} bytes", bytes.len()),
            RequestBody::Stream(_) => f.write_str("a stream"),
        }
    }
}

impl Call<'_> {
    /// The pull scope asked of token services.
    fn scope(&self) -> String {
        if self.push {
            return format!("repository:{}:pull,push", self.repository);
        }
        format!("repository:{}:pull", self.repository)
    }
}

/// The OCI error body, `{"errors":[{"code","message"}]}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The error codes and a readable message from an error answer's body.
/// Credentials the registry may have echoed are redacted from the text.
pub(crate) fn decode_error_body(status: StatusCode, body: &[u8]) -> (Vec<String>, String) {
    let (codes, text) = decode_error_text(status, body);
    (codes, crate::redact_credentials(&text))
}

fn decode_error_text(status: StatusCode, body: &[u8]) -> (Vec<String>, String) {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        if !parsed.errors.is_empty() {
            let codes = parsed.errors.iter().map(|e| e.code.clone()).collect();
            let text = parsed
                .errors
                .iter()
                .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{}: {}", e.code, e.message),
                    (false, true) => e.code.clone(),
                    _ => e.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ");
            return (codes, format!("HTTP {status}, {text}"));
        }
    }
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        (Vec::new(), format!("HTTP {status}"))
    } else {
        (Vec::new(), format!("HTTP {status}, {text}"))
    }
}

/// Reads at most `limit` bytes of a body, ignoring a failure part-way (for error messages).
async fn read_error_body(response: Response) -> Vec<u8> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ERROR_BODY_LIMIT {
            break;
        }
    }
    body
}

/// `scheme://host:port` of a URL, to tell whether a redirect leaves the registry's origin.
fn origin(url: &Url) -> (String, Option<String>, Option<u16>) {
    (
        url.scheme().to_string(),
        url.host_str().map(str::to_string),
        url.port_or_known_default(),
    )
}

/// `host[:port]` of a URL as registries are named.
fn host_port(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => String::new(),
    }
}

impl Inner {
    /// Sends `call`, authenticating when challenged and following redirects. Returns any
    /// answer other than a 401 that authentication could not cure; transient failures are
    /// retried and become [`RegistryError::TooManyAttempts`] or
    /// [`RegistryError::Unreachable`] when they persist.
    pub async fn send(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let base = self.transport.base_url(call.endpoint).await;
        let url =
            Url::parse(&format!("{base}{}", call.path)).map_err(|e| RegistryError::Protocol {
                registry: call.endpoint.label.clone(),
                what: call.what.to_string(),
                message: format!("cannot form a URL from {base}{}: {e}", call.path),
            })?;
        let host = &call.endpoint.host;
        let scope = call.scope();
        let mut authorization = match self.auth.token(host, &call.repository, &scope) {
            Some(token) => Some(format!("Bearer {token}")),
            None if self.auth.wants_basic(host) => {
                self.login(host).await?.as_ref().map(basic_header)
            }
            None => None,
        };
        let mut fresh = false;
        loop {
            let response = self.follow(call, &url, authorization.as_deref()).await?;
            if response.status() != StatusCode::UNAUTHORIZED
                || origin(response.url()) != origin(&url)
            {
                return Ok(response);
            }
            let challenges: Vec<Challenge> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            let status = response.status();
            let (_, said) = decode_error_body(status, &read_error_body(response).await);
            if fresh {
                return Err(self.unauthorized(call, &said).await);
            }
            self.auth.drop_token(host, &call.repository, &scope);
            authorization = Some(self.authorize(call, &challenges, &said).await?);
            fresh = true;
        }
    }

    /// The `Unauthorized` error for `call`, saying whether credentials were sent.
    async fn unauthorized(&self, call: &Call<'_>, said: &str) -> RegistryError {
        let host = &call.endpoint.host;
        let message = match self.login(host).await {
            Ok(Some(auth)) => format!(
                "the credentials for {host} (user {}) were not accepted ({said})",
                auth.username
            ),
            Ok(None) => format!(
                "authentication required and no credentials are configured for {host} ({said})"
            ),
            Err(e) => format!("{said}; and {e}"),
        };
        RegistryError::Unauthorized {
            registry: call.endpoint.label.clone(),
            repository: call.repository.to_string(),
            message,
        }
    }

    /// Answers a 401's challenges: a bearer token from the token service (with credentials
    /// if there are any), or Basic credentials. Returns the `Authorization` value to send.
    async fn authorize(
        &self,
        call: &Call<'_>,
        challenges: &[Challenge],
        said: &str,
    ) -> Result<String, RegistryError> {
        let host = &call.endpoint.host;
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            Challenge::Basic => None,
        });
        if let Some((realm, service, challenge_scope)) = bearer {
            let login = self.login(host).await?;
            let scope = challenge_scope.clone().unwrap_or_else(|| call.scope());
            let (token, lifetime) = self
                .fetch_token(call, realm, service.as_deref(), &scope, login.as_ref())
                .await?;
            self.auth.store_token(
                host,
                &call.repository,
                &call.scope(),
                token.clone(),
                lifetime,
            );
            return Ok(format!("Bearer {token}"));
        }
        if challenges.contains(&Challenge::Basic) {
            return match self.login(host).await? {
                Some(auth) => {
                    self.auth.set_basic(host);
                    Ok(basic_header(&auth))
                }
                None => Err(self.unauthorized(call, said).await),
            };
        }
        Err(RegistryError::Unauthorized {
            registry: call.endpoint.label.clone(),
            repository: call.repository.to_string(),
            message: format!("{said}, with no authentication challenge this client can answer"),
        })
    }

    /// Gets a bearer token from `realm` for `scope`.
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        login: Option<&Auth>,
    ) -> Result<(String, std::time::Duration), RegistryError> {
        let protocol = |message: String| RegistryError::Protocol {
            registry: call.endpoint.label.clone(),
            what: call.what.to_string(),
            message,
        };
        let mut url = Url::parse(realm)
            .map_err(|e| protocol(format!("token realm {realm:?} is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let realm_host = host_port(&url);
        let insecure = (call.endpoint.insecure && realm_host == call.endpoint.host)
            || host_is_insecure(&self.config.registries, &realm_host);
        let client = self.transport.client(insecure);
        let response = self
            .attempt(call, || {
                let request = client.get(url.clone());
                match login {
                    Some(auth) => request.header(AUTHORIZATION, basic_header(auth)),
                    None => request,
                }
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            let (_, said) = decode_error_body(status, &read_error_body(response).await);
            let said = format!("token service {realm} answered {said}");
            return Err(match status {
                StatusCode::UNAUTHORIZED => self.unauthorized(call, &said).await,
                StatusCode::FORBIDDEN => RegistryError::Forbidden {
                    registry: call.endpoint.label.clone(),
                    repository: call.repository.to_string(),
                    message: said,
                },
                _ => protocol(said),
            });
        }
        let body = read_error_body(response).await;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| protocol(format!("token service {realm} answered bad JSON: {e}")))?;
        parsed
            .into_token()
            .ok_or_else(|| protocol(format!("token service {realm} answered without a token")))
    }

    /// The login for `host`, looked up once per client (credential helpers are slow).
    pub async fn login(&self, host: &str) -> Result<Option<Auth>, RegistryError> {
        let key = super::credentials::registry_key(host);
        let cached = self
            .logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some(found) = cached {
            return Ok(found);
        }
        let credentials = self.config.credentials.clone();
        let lookup_key = key.clone();
        let found = tokio::task::spawn_blocking(move || credentials.lookup(&lookup_key))
            .await
            .map_err(|e| RegistryError::Credentials {
                message: format!("credential lookup for registry {key} did not finish: {e}"),
            })??;
        self.logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, found.clone());
        Ok(found)
    }

    /// Sends `call` to `url`, following redirects. `authorization` goes only to the
    /// registry's own origin: a CDN or object store a blob redirects to never sees it.
    async fn follow(
        &self,
        call: &Call<'_>,
        url: &Url,
        authorization: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let home = origin(url);
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_origin = origin(&current) == home;
            let insecure = if same_origin {
                call.endpoint.insecure
            } else {
                host_is_insecure(&self.config.registries, &host_port(&current))
            };
            let client = self.transport.client(insecure);
            let target = current.clone();
            let response = self
                .attempt(call, || {
                    let mut request = client
                        .request(call.method.clone(), target.clone())
                        .headers(call.headers.clone());
                    if let (true, Some(value)) = (same_origin, authorization) {
                        request = request.header(AUTHORIZATION, value);
                    }
                    if let Some(body) = &call.body {
                        request = request.body(body.make());
                    }
                    request
                })
                .await?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| current.join(l).ok());
            match location {
                Some(next) => current = next,
                None => return Ok(response),
            }
        }
        Err(RegistryError::Protocol {
            registry: call.endpoint.label.clone(),
            what: call.what.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Sends the request `build` makes, again after a delay on connection failures, resets,
    /// 5xx and 429 (honouring `Retry-After`), up to the retry budget.
    pub async fn attempt(
        &self,
        call: &Call<'_>,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let max = self.policy.max_attempts.max(1);
        let mut failed = 0;
        loop {
            match build().send().await {
                Ok(response) if retryable_status(response.status()) => {
                    failed += 1;
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let status = response.status();
                    if failed >= max {
                        let (_, said) = decode_error_body(status, &read_error_body(response).await);
                        return Err(self.too_many(call, failed, said));
                    }
                    drop(response);
                    let reason = match retry_after {
                        Some(wait) => format!("HTTP {status}, Retry-After {}s", wait.as_secs()),
                        None => format!("HTTP {status}"),
                    };
                    let at = (call.endpoint.label.as_str(), call.what);
                    self.pause(at, (failed, max), retry_after, reason).await;
                }
                Ok(response) => return Ok(response),
                Err(error) => {
                    failed += 1;
                    // A registry that refuses connections (or cannot be reached at all) is
                    // likely down: it gets the shorter budget; one that answers gets all.
                    let budget = if error.is_connect() {
                        self.policy.max_connect_attempts.min(max)
                    } else {
                        max
                    };
                    let unreachable = error.is_connect() || error.is_timeout();
                    if permanent_transport_error(&error) || (failed >= budget && unreachable) {
                        return Err(RegistryError::Unreachable {
                            registry: call.endpoint.label.clone(),
                            what: call.what.to_string(),
                            source: error,
                        });
                    }
                    self.retry_or_give_up(call, (failed, budget), chain(&error))
                        .await?;
                }
            }
        }
    }

    /// The error for a transient failure that outlasted the retry budget.
    pub fn too_many(&self, call: &Call<'_>, attempts: u32, last: String) -> RegistryError {
        RegistryError::TooManyAttempts {
            registry: call.endpoint.label.clone(),
            what: call.what.to_string(),
            attempts,
            last,
        }
    }

    /// Turns an unsuccessful final answer into an error naming registry and content.
    pub async fn status_error(&self, call: &Call<'_>, response: Response) -> RegistryError {
        let status = response.status();
        let (codes, said) = decode_error_body(status, &read_error_body(response).await);
        let unknown = codes.iter().any(|c| {
            matches!(
                c.as_str(),
                "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN" | "NAME_UNKNOWN"
            )
        });
        let registry = call.endpoint.label.clone();
        let repository = call.repository.to_string();
        match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(call, &said).await,
            StatusCode::FORBIDDEN => RegistryError::Forbidden {
                registry,
                repository,
                message: said,
            },
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                what: call.what.to_string(),
                registry,
                message: said,
            },
            _ if unknown => RegistryError::NotFound {
                what: call.what.to_string(),
                registry,
                message: said,
            },
            _ => RegistryError::Protocol {
                registry,
                what: call.what.to_string(),
                message: said,
            },
        }
    }
}

/// A header value, or nothing if it is not text.
pub(crate) fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_decoded() {
        let (codes, text) = decode_error_body(
            StatusCode::NOT_FOUND,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#,
        );
        assert_eq!(codes, vec!["MANIFEST_UNKNOWN"]);
        assert_eq!(
            text,
            "HTTP 404 Not Found, MANIFEST_UNKNOWN: manifest unknown"
        );
        let (codes, text) = decode_error_body(StatusCode::BAD_GATEWAY, b"<html>\nbad\n</html>");
        assert!(codes.is_empty());
        assert_eq!(text, "HTTP 502 Bad Gateway, <html>bad</html>");
        let (_, text) = decode_error_body(StatusCode::SERVICE_UNAVAILABLE, b"");
        assert_eq!(text, "HTTP 503 Service Unavailable");
    }

    #[test]
    fn origins_and_hosts() {
        let a = Url::parse("https://r.example/v2/x").unwrap();
        let b = Url::parse("https://r.example:443/other").unwrap();
        let c = Url::parse("https://cdn.example/blob").unwrap();
        let d = Url::parse("http://r.example/v2/x").unwrap();
        assert_eq!(origin(&a), origin(&b));
        assert_ne!(origin(&a), origin(&c));
        assert_ne!(origin(&a), origin(&d));
        assert_eq!(
            host_port(&Url::parse("http://127.0.0.1:5000/v2/").unwrap()),
            "127.0.0.1:5000"
        );
    }
}
