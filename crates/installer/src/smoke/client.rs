//! [`MatrixClient`]: the few client-server and admin API calls the smoke test needs.

use super::error::MatrixError;
use super::registration::registration_mac;
use super::sync::SyncBatch;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a request that does not long-poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Times a rate-limited request is sent again.
const RATE_LIMIT_RETRIES: u32 = 5;
/// Longest wait for a rate limit, whatever the server asks.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(10);

/// A client of one homeserver, logged in as one user once [`MatrixClient::login`] returned it.
#[derive(Clone)]
pub struct MatrixClient {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    user_id: Option<String>,
}

impl std::fmt::Debug for MatrixClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatrixClient")
            .field("base", &self.base)
            .field("user_id", &self.user_id)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl MatrixClient {
    /// A client for the homeserver at `base_url`, trusting `ca_file` (PEM) besides the system
    /// roots.
    pub fn new(base_url: &str, ca_file: Option<&Path>) -> Result<Self, MatrixError> {
        let base = base_url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(MatrixError::Config(format!(
                "base URL {base_url:?} must start with http:// or https://"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!(
                "messenger-installer-smoke/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(path) = ca_file {
            let pem = oci::files::read_capped(path, oci::files::INPUT_FILE_LIMIT).map_err(|e| {
                MatrixError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                MatrixError::Config(format!("CA file {} is not PEM: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(MatrixError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| MatrixError::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(MatrixClient {
            http,
            base,
            token: None,
            user_id: None,
        })
    }

    /// The homeserver's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The logged-in user's ID.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// This client acting as `user` (a registration's token), on this client's homeserver
    /// URL (registrations go to the admin host; the user then talks to the client host).
    pub fn acting_as(&self, user: &MatrixClient) -> MatrixClient {
        MatrixClient {
            token: user.token.clone(),
            user_id: user.user_id.clone(),
            ..self.clone()
        }
    }

    /// Registers a (non-admin) user through the shared-secret admin API; returns a client
    /// acting as that user with the access token the registration gave (no login: logins are
    /// rate-limited per address, and the smoke test logs in once).
    pub async fn register(
        &self,
        shared_secret: &[u8],
        user: &str,
        password: &str,
    ) -> Result<MatrixClient, MatrixError> {
        let path = "/_synapse/admin/v1/register";
        let nonce = self.call(Method::GET, path, None).await?;
        let nonce = field(&nonce, "nonce", Method::GET, path)?;
        let mac = registration_mac(shared_secret, &nonce, user, password, false);
        let body = json!({
            "nonce": nonce, "username": user, "password": password, "admin": false, "mac": mac,
        });
        let done = self.call(Method::POST, path, Some(body)).await?;
        Ok(MatrixClient {
            token: Some(field(&done, "access_token", Method::POST, path)?),
            user_id: Some(field(&done, "user_id", Method::POST, path)?),
            ..self.clone()
        })
    }

    /// Logs in with a password; returns a client acting as that user.
    pub async fn login(&self, user: &str, password: &str) -> Result<MatrixClient, MatrixError> {
        let path = "/_matrix/client/v3/login";
        let body = json!({
            "type": "m.login.password",
            "identifier": { "type": "m.id.user", "user": user },
            "password": password,
            "initial_device_display_name": "installer smoke",
        });
        let done = self.call(Method::POST, path, Some(body)).await?;
        Ok(MatrixClient {
            token: Some(field(&done, "access_token", Method::POST, path)?),
            user_id: Some(field(&done, "user_id", Method::POST, path)?),
            ..self.clone()
        })
    }

    /// Creates a private room; returns its ID.
    pub async fn create_room(&self, name: &str) -> Result<String, MatrixError> {
        let path = "/_matrix/client/v3/createRoom";
        let body = json!({ "name": name, "preset": "private_chat" });
        let done = self.call(Method::POST, path, Some(body)).await?;
        field(&done, "room_id", Method::POST, path)
    }

    /// Invites `user_id` into `room_id`.
    pub async fn invite(&self, room_id: &str, user_id: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", segment(room_id));
        self.call(Method::POST, &path, Some(json!({ "user_id": user_id })))
            .await
            .map(drop)
    }

    /// Joins `room_id`.
    pub async fn join(&self, room_id: &str) -> Result<(), MatrixError> {
        let path = format!("/_matrix/client/v3/rooms/{}/join", segment(room_id));
        self.call(Method::POST, &path, Some(json!({})))
            .await
            .map(drop)
    }

    /// Sends a text message; returns its event ID. Resending with the same `txn_id` is
    /// idempotent.
    pub async fn send_text(
        &self,
        room_id: &str,
        txn_id: &str,
        body: &str,
    ) -> Result<String, MatrixError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            segment(room_id),
            segment(txn_id)
        );
        let content = json!({ "msgtype": "m.text", "body": body });
        let done = self.call(Method::PUT, &path, Some(content)).await?;
        field(&done, "event_id", Method::PUT, &path)
    }

    /// One `/sync`: from `since` (or from the start), waiting up to `timeout` for news.
    pub async fn sync(
        &self,
        since: Option<&str>,
        timeout: Duration,
    ) -> Result<SyncBatch, MatrixError> {
        let path = "/_matrix/client/v3/sync";
        let mut query = vec![
            ("timeout", timeout.as_millis().to_string()),
            (
                "filter",
                r#"{"room":{"timeline":{"limit":100}}}"#.to_string(),
            ),
        ];
        if let Some(since) = since {
            query.push(("since", since.to_string()));
        }
        let request = self
            .request(Method::GET, path)
            .query(&query)
            .timeout(timeout + REQUEST_TIMEOUT);
        let value = self
            .send(request, Method::GET, path)
            .await?
            .json_value()
            .await?;
        SyncBatch::parse(&value).map_err(|detail| MatrixError::Response {
            method: Method::GET,
            path: path.to_string(),
            detail,
        })
    }

    /// Uploads a file to the media repository; returns its `mxc://` URI.
    pub async fn upload(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
        filename: &str,
    ) -> Result<String, MatrixError> {
        let path = "/_matrix/media/v3/upload";
        let request = self
            .request(Method::POST, path)
            .query(&[("filename", filename)])
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        let done = self
            .send(request, Method::POST, path)
            .await?
            .json_value()
            .await?;
        field(&done, "content_uri", Method::POST, path)
    }

    /// Downloads an `mxc://` URI through the authenticated media API.
    pub async fn download(&self, mxc: &str) -> Result<Vec<u8>, MatrixError> {
        let Some((server, media_id)) = mxc.strip_prefix("mxc://").and_then(|r| r.split_once('/'))
        else {
            return Err(MatrixError::Config(format!("{mxc:?} is not an mxc:// URI")));
        };
        let path = format!(
            "/_matrix/client/v1/media/download/{}/{}",
            segment(server),
            segment(media_id)
        );
        let response = self
            .send(self.request(Method::GET, &path), Method::GET, &path)
            .await?;
        let bytes = response
            .inner
            .bytes()
            .await
            .map_err(|source| MatrixError::Transport {
                method: Method::GET,
                path: path.clone(),
                detail: oci::error_chain(&source),
            })?;
        Ok(bytes.to_vec())
    }

    /// A JSON request; the JSON answer.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, MatrixError> {
        let mut request = self.request(method.clone(), path).timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request, method, path).await?.json_value().await
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request; a non-success status becomes [`MatrixError::Http`]. A rate-limited
    /// request (429) is sent again after the wait the server asks for, a few times.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        method: Method,
        path: &str,
    ) -> Result<Answer, MatrixError> {
        let mut attempt = 0;
        loop {
            // Bodies here are in memory, so a request can always be cloned.
            let retry = request.try_clone();
            let response = request
                .send()
                .await
                .map_err(|source| MatrixError::Transport {
                    method: method.clone(),
                    path: path.to_string(),
                    detail: oci::error_chain(&source),
                })?;
            let status = response.status();
            if status.is_success() {
                return Ok(Answer {
                    inner: response,
                    method,
                    path: path.to_string(),
                });
            }
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let wait = body.get("retry_after_ms").and_then(Value::as_u64);
            if let (StatusCode::TOO_MANY_REQUESTS, Some(again), true) =
                (status, retry, attempt < RATE_LIMIT_RETRIES)
            {
                let wait = Duration::from_millis(wait.unwrap_or(1000)).min(MAX_RATE_LIMIT_WAIT);
                tokio::time::sleep(wait).await;
                attempt += 1;
                request = again;
                continue;
            }
            let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
            return Err(MatrixError::Http {
                method,
                path: path.to_string(),
                status: status.as_u16(),
                errcode: text("errcode"),
                message: text("error"),
            });
        }
    }
}

/// A successful response, with what is needed to name it in errors.
struct Answer {
    inner: reqwest::Response,
    method: Method,
    path: String,
}

impl Answer {
    async fn json_value(self) -> Result<Value, MatrixError> {
        let Answer {
            inner,
            method,
            path,
        } = self;
        inner.json().await.map_err(|e| MatrixError::Response {
            method,
            path,
            detail: format!("not JSON: {e}"),
        })
    }
}

/// A string field of a JSON answer.
fn field(value: &Value, key: &str, method: Method, path: &str) -> Result<String, MatrixError> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| MatrixError::Response {
            method,
            path: path.to_string(),
            detail: format!("no string {key:?}"),
        })
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("!room:example.org"), "%21room%3Aexample.org");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn debug_output_hides_the_access_token() {
        let client = MatrixClient {
            token: Some("syt_secret".into()),
            ..MatrixClient::new("http://127.0.0.1:1", None).unwrap()
        };
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("syt_secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn base_url_needs_a_scheme() {
        assert!(MatrixClient::new("matrix.example.org", None).is_err());
        assert!(MatrixClient::new("https://matrix.example.org/", None).is_ok());
    }
}
