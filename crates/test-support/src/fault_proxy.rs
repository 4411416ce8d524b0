//! An HTTP proxy in front of a real registry that injects faults on request (5xx, resets,
//! 429 with `Retry-After`, cut, stalled and corrupted bodies, redirects to another host),
//! optionally guarding `/v2/` with bearer tokens from its own `/token` endpoint, and records
//! every request it saw. [`Proxy`] runs on the caller's tokio runtime; [`Background`] brings
//! its own, for tests that drive subprocesses from plain `#[test]` functions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// A response with the status and headers of `upstream`, less the hop-by-hop ones.
pub fn response_head(upstream: &reqwest::Response) -> hyper::http::response::Builder {
    let mut response = Response::builder().status(upstream.status().as_u16());
    for (name, value) in upstream.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "keep-alive"
        ) {
            response = response.header(name, value);
        }
    }
    response
}

type Body = BoxBody<Bytes, std::io::Error>;
type Failure = std::io::Error;

/// What to do to the next matching GET instead of forwarding it faithfully.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and an OCI error body.
    Status(u16),
    /// Answer 429 with this `Retry-After`.
    TooMany(&'static str),
    /// Drop the connection (RST) without answering.
    Reset,
    /// Forward, but break the connection half-way through the body.
    CutBody,
    /// Forward the first half of the body, then hang (for a minute, or until the client
    /// goes away): a download that never finishes, for interrupting a build half-way.
    Stall,
    /// Forward with one byte of the body flipped.
    Corrupt,
    /// Redirect (307) to the same path on this base URL.
    Redirect(String),
}

/// Bearer-token guard: `/token` hands `token` to `user`/`password` (Basic).
#[derive(Debug, Clone)]
pub struct Gate {
    pub user: String,
    pub password: String,
    pub token: String,
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub range: Option<String>,
    pub status: u16,
}

struct State {
    upstream: String,
    addr: SocketAddr,
    http: reqwest::Client,
    rules: Mutex<Vec<(String, Fault)>>,
    seen: Mutex<Vec<Seen>>,
    gate: Option<Gate>,
}

pub struct Proxy {
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port, forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, gate: Option<Gate>) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            addr: listener.local_addr().unwrap(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rules: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            gate,
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Proxy { state, task }
    }

    pub fn host(&self) -> String {
        self.state.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.state.addr)
    }

    /// Queues `fault` for the next GET whose path contains `pattern`.
    pub fn fail(&self, pattern: &str, fault: Fault) {
        self.state
            .rules
            .lock()
            .unwrap()
            .push((pattern.to_string(), fault));
    }

    /// Faults not met yet.
    pub fn pending(&self) -> usize {
        self.state.rules.lock().unwrap().len()
    }

    /// Every request seen so far (except TLS probes, which never parse as HTTP).
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// A [`Proxy`] on a runtime of its own, for tests without one: the proxy keeps serving
/// while the test blocks on a subprocess. Both stop on drop.
pub struct Background {
    proxy: Option<Proxy>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Background {
    /// Starts a proxy to `upstream` (`http://host:port`) without a token gate.
    pub fn start(upstream: &str) -> Background {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let proxy = runtime.block_on(Proxy::start(upstream, None));
        Background {
            proxy: Some(proxy),
            runtime: Some(runtime),
        }
    }
}

impl std::ops::Deref for Background {
    type Target = Proxy;

    fn deref(&self) -> &Proxy {
        self.proxy.as_ref().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Abort the accept loop inside the runtime, then drop connections and stalls with it.
        if let Some(runtime) = self.runtime.take() {
            let guard = runtime.enter();
            drop(self.proxy.take());
            drop(guard);
            runtime.shutdown_background();
        }
    }
}

async fn serve(listener: tokio::net::TcpListener, state: Arc<State>) {
    serve_resettable(listener, state, handle).await
}

/// Accepts connections on `listener` and answers each request with `handle(state, request,
/// reset)`; a handler that sets `reset` gets its connection closed with a TCP RST.
pub async fn serve_resettable<S, F, Fut>(
    listener: tokio::net::TcpListener,
    state: Arc<S>,
    handle: F,
) where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request<Incoming>, Arc<AtomicBool>) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Body>, Failure>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            // Keep a second handle on the socket to close it with RST on a Reset fault.
            let Ok(std_stream) = stream.into_std() else {
                return;
            };
            let Ok(keep) = std_stream.try_clone() else {
                return;
            };
            let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
                return;
            };
            let reset = Arc::new(AtomicBool::new(false));
            let flag = reset.clone();
            let service = service_fn(move |request| handle(state.clone(), request, flag.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if reset.load(Ordering::SeqCst) {
                let _ = socket2::SockRef::from(&keep).set_linger(Some(Duration::ZERO));
            }
            drop(keep);
        });
    }
}

fn boxed(error: impl std::error::Error + Send + Sync + 'static) -> Failure {
    std::io::Error::other(error)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn error_response(status: u16, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
    reset: Arc<AtomicBool>,
) -> Result<Response<Body>, Failure> {
    let method = request.method().clone();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorization = header("authorization");
    let range = header("range");
    let record = |status: u16| {
        state.seen.lock().unwrap().push(Seen {
            method: method.to_string(),
            path: path.clone(),
            authorization: authorization.clone(),
            range: range.clone(),
            status,
        });
    };

    if let Some(gate) = &state.gate {
        if request.uri().path() == "/token" {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", gate.user, gate.password))
            );
            if authorization.as_deref() == Some(expected.as_str()) {
                record(200);
                let body = serde_json::json!({"token": gate.token, "expires_in": 300});
                return Ok(Response::builder()
                    .header("content-type", "application/json")
                    .body(full(serde_json::to_vec(&body).unwrap()))
                    .unwrap());
            }
            record(401);
            return Ok(error_response(401, "UNAUTHORIZED", "bad login"));
        }
        let bearer = format!("Bearer {}", gate.token);
        if authorization.as_deref() != Some(bearer.as_str()) {
            record(401);
            let repository = ["/manifests/", "/blobs/"]
                .iter()
                .find_map(|m| path.find(m).map(|i| path["/v2/".len()..i].to_string()))
                .unwrap_or_default();
            let mut response = error_response(401, "UNAUTHORIZED", "authentication required");
            let challenge = format!(
                "Bearer realm=\"http://{}/token\",service=\"fake-registry\",scope=\"repository:{repository}:pull\"",
                state.addr
            );
            response
                .headers_mut()
                .insert("www-authenticate", challenge.parse().unwrap());
            return Ok(response);
        }
    }

    let fault = if method == Method::GET {
        let mut rules = state.rules.lock().unwrap();
        rules
            .iter()
            .position(|(pattern, _)| path.contains(pattern.as_str()))
            .map(|i| rules.remove(i).1)
    } else {
        None
    };
    match &fault {
        Some(Fault::Status(code)) => {
            record(*code);
            return Ok(error_response(*code, "UNAVAILABLE", "injected failure"));
        }
        Some(Fault::TooMany(after)) => {
            record(429);
            let mut response = error_response(429, "TOOMANYREQUESTS", "slow down");
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
            return Ok(response);
        }
        Some(Fault::Reset) => {
            record(0);
            reset.store(true, Ordering::SeqCst);
            return Err(std::io::Error::other("injected reset"));
        }
        Some(Fault::Redirect(base)) => {
            record(307);
            return Ok(Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", format!("{base}{path}"))
                .body(full(Bytes::new()))
                .unwrap());
        }
        _ => {}
    }

    let mut forward = state
        .http
        .request(method.clone(), format!("{}{path}", state.upstream));
    for (name, value) in request.headers() {
        let guarded = state.gate.is_some() && name.as_str() == "authorization";
        if !guarded && !matches!(name.as_str(), "host" | "connection") {
            forward = forward.header(name, value);
        }
    }
    let upstream = forward.send().await.map_err(boxed)?;
    let status = upstream.status();
    record(status.as_u16());
    let response = response_head(&upstream);
    let mut body = upstream.bytes().await.map_err(boxed)?.to_vec();
    match fault {
        Some(Fault::Corrupt) if !body.is_empty() => {
            let middle = body.len() / 2;
            body[middle] ^= 0x20;
            response.body(full(body)).map_err(boxed)
        }
        Some(Fault::CutBody) => {
            let half = Bytes::from(body[..body.len() / 2].to_vec());
            // Let the first half reach the client before the connection breaks.
            let frames = futures_util::stream::iter(vec![Ok(Frame::data(half))]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Err(std::io::Error::other("injected cut"))
                }),
            );
            response
                .body(BodyExt::boxed(StreamBody::new(frames)))
                .map_err(boxed)
        }
        Some(Fault::Stall) => {
            let half = Bytes::from(body[..body.len() / 2].to_vec());
            let frames = futures_util::stream::iter(vec![Ok(Frame::data(half))]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Err(std::io::Error::other("injected stall"))
                }),
            );
            response
                .body(BodyExt::boxed(StreamBody::new(frames)))
                .map_err(boxed)
        }
        _ => response.body(full(body)).map_err(boxed),
    }
}
