//! An HTTP proxy for pushes: forwards every method with its request body to a real registry
//! and injects faults into requests chosen by method and path (5xx, resets before the
//! request reaches the registry, and resets after it did). Runs on a runtime of its own so
//! tests can block on a subprocess; stops on drop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

type Body = BoxBody<Bytes, std::io::Error>;

/// What to do to a matching request.
#[derive(Debug, Clone)]
pub enum PushFault {
    /// Answer with this status (not forwarded).
    Status(u16),
    /// Drop the connection with RST without forwarding.
    Reset,
    /// Forward, then drop the connection with RST instead of answering.
    ResetAfter,
    /// Forward untouched: a rule that lets the next one meet a later request.
    Pass,
    /// Answer with this status and an error body that echoes the request's `Authorization`
    /// header, as a careless registry or proxy might (checked before the gate).
    EchoAuthorization(u16),
    /// Answer 200 with `Content-Length: 1` and a `Docker-Content-Digest` of all zeros: a
    /// registry claiming content it does not have.
    ClaimPresent,
}

/// Bearer-token guard: `/token` hands out `tok.<base64url of the scope>` to `user`/`password`
/// (Basic), and writes need a token whose scope allows pushing to the repository.
#[derive(Debug, Clone)]
pub struct PushGate {
    pub user: String,
    pub password: String,
}

struct State {
    gate: Option<PushGate>,
    addr: Mutex<Option<SocketAddr>>,
    upstream: String,
    http: reqwest::Client,
    rules: Mutex<Vec<(String, String, PushFault)>>,
    /// (method, path, status; 0 for resets) of every request.
    seen: Mutex<Vec<(String, String, u16)>>,
}

/// The proxy, on its own runtime.
pub struct PushProxy {
    state: Arc<State>,
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl PushProxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on a free loopback port.
    pub fn start(upstream: &str) -> PushProxy {
        PushProxy::start_gated(upstream, None)
    }

    /// Starts a proxy to `upstream` that demands bearer tokens from its own `/token`.
    pub fn start_gated(upstream: &str, gate: Option<PushGate>) -> PushProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State {
            gate,
            addr: Mutex::new(None),
            upstream: upstream.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        *state.addr.lock().unwrap() = Some(addr);
        runtime.spawn(serve(listener, state.clone()));
        PushProxy {
            state,
            addr,
            runtime: Some(runtime),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `fault` for the next `method` request whose path contains `pattern`.
    pub fn fail(&self, method: &str, pattern: &str, fault: PushFault) {
        self.state
            .rules
            .lock()
            .unwrap()
            .push((method.to_string(), pattern.to_string(), fault));
    }

    /// Faults not met yet.
    pub fn pending(&self) -> usize {
        self.state.rules.lock().unwrap().len()
    }

    /// Every request seen: method, path and query, status (0 for a reset).
    pub fn seen(&self) -> Vec<(String, String, u16)> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for PushProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    super::fault_proxy::serve_resettable(listener, state, handle).await
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    reset: Arc<AtomicBool>,
) -> Result<Response<Body>, std::io::Error> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let record = |status: u16| {
        state
            .seen
            .lock()
            .unwrap()
            .push((method.to_string(), path.clone(), status));
    };
    let fault = {
        let mut rules = state.rules.lock().unwrap();
        rules
            .iter()
            .position(|(m, pattern, _)| *m == method.as_str() && path.contains(pattern.as_str()))
            .map(|i| rules.remove(i).2)
    };
    if let Some(PushFault::EchoAuthorization(code)) = &fault {
        record(*code);
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)");
        let message = format!("denied for Authorization: {authorization}");
        let body = serde_json::json!({"errors": [{"code": "DENIED", "message": message}]});
        return Ok(Response::builder()
            .status(*code)
            .header("content-type", "application/json")
            .body(full(serde_json::to_vec(&body).unwrap()))
            .unwrap());
    }
    if let Some(PushFault::ClaimPresent) = &fault {
        record(200);
        return Ok(Response::builder()
            .status(200)
            .header("content-length", "1")
            .header(
                "docker-content-digest",
                format!("sha256:{}", "0".repeat(64)),
            )
            .body(full(Bytes::new()))
            .unwrap());
    }
    if let Some(gate) = &state.gate {
        if let Some(denied) = guard(&state, gate, &request, &path) {
            record(denied.status().as_u16());
            return Ok(denied);
        }
    }
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    match &fault {
        Some(PushFault::Status(code)) => {
            record(*code);
            let body =
                serde_json::json!({"errors": [{"code": "UNAVAILABLE", "message": "injected"}]});
            return Ok(Response::builder()
                .status(*code)
                .header("content-type", "application/json")
                .body(full(serde_json::to_vec(&body).unwrap()))
                .unwrap());
        }
        Some(PushFault::Reset) => {
            record(0);
            reset.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("injected reset"));
        }
        _ => {}
    }
    let mut forward = state
        .http
        .request(method.clone(), format!("{}{path}", state.upstream));
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
            forward = forward.header(name, value);
        }
    }
    let upstream = forward
        .body(body)
        .send()
        .await
        .map_err(std::io::Error::other)?;
    let status = upstream.status();
    if let Some(PushFault::ResetAfter) = fault {
        record(0);
        reset.store(true, Ordering::SeqCst);
        return Err(std::io::Error::other("injected reset after forwarding"));
    }
    record(status.as_u16());
    let response = super::fault_proxy::response_head(&upstream);
    let body = upstream.bytes().await.map_err(std::io::Error::other)?;
    response.body(full(body)).map_err(std::io::Error::other)
}

fn json_error(status: u16, code: &str) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": code}]});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

/// The gate: answers `/token`, and a 401 with a challenge to requests without a token that
/// covers them. `None` lets the request through.
fn guard(
    state: &State,
    gate: &PushGate,
    request: &Request<Incoming>,
    path: &str,
) -> Option<Response<Body>> {
    use base64::Engine as _;
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if request.uri().path() == "/token" {
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", gate.user, gate.password))
        );
        if authorization != expected {
            return Some(json_error(401, "UNAUTHORIZED"));
        }
        let scope = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|kv| kv.strip_prefix("scope="))
            .unwrap_or_default()
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%2F", "/");
        let token = format!(
            "tok.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&scope)
        );
        let body = serde_json::json!({"token": token, "expires_in": 300});
        return Some(
            Response::builder()
                .header("content-type", "application/json")
                .body(full(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
    }
    let repository = ["/manifests/", "/blobs/"]
        .iter()
        .find_map(|m| path.find(m).map(|i| path["/v2/".len()..i].to_string()))
        .unwrap_or_default();
    let write = !matches!(request.method().as_str(), "GET" | "HEAD");
    let needed = if write {
        format!("repository:{repository}:pull,push")
    } else {
        format!("repository:{repository}:pull")
    };
    let granted = authorization
        .strip_prefix("Bearer tok.")
        .and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
        })
        .and_then(|scope| String::from_utf8(scope).ok())
        .unwrap_or_default();
    let granted = granted.as_str();
    let ok = if repository.is_empty() {
        !granted.is_empty()
    } else if write {
        granted == needed
    } else {
        granted.starts_with(&format!("repository:{repository}:pull"))
    };
    if ok {
        return None;
    }
    let addr = state.addr.lock().unwrap().unwrap();
    let mut response = json_error(401, "UNAUTHORIZED");
    let challenge =
        format!("Bearer realm=\"http://{addr}/token\",service=\"push-proxy\",scope=\"{needed}\"");
    response
        .headers_mut()
        .insert("www-authenticate", challenge.parse().unwrap());
    Some(response)
}
