//! The hyper service answering the read-only distribution API from the bundle, the accept
//! loop (one task per connection, optional TLS) and clean shutdown.

use super::catalog::{Catalog, Repository};
use super::connections::{
    capacity_for_open_files, open_files_limit, Connection, InFlight, Table, Timeouts,
};
use super::errors::{self, Code};
use super::routes::{self, ByteRange, Route};
use super::stall;
use super::{ServeError, ServeLog};
use bundle_file::archive::source::FileSource;
use bundle_file::stream::member_pieces;
use bundle_file::{Bundle, Located};
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use oci::{Digest, Pieces};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// What the service serves: the verified bundle, its catalog and where each blob lies.
pub struct Server {
    bundle: Arc<Bundle<FileSource>>,
    catalog: Catalog,
    blobs: HashMap<String, Located>,
    /// One permit per blob body being sent: what bounds memory whatever the number of clients.
    streams: Arc<Semaphore>,
    /// How long a connection's writes may stall before it is dropped.
    send_timeout: Duration,
    /// How long a connection may go without a request.
    timeouts: Timeouts,
    /// The open connections.
    connections: Arc<Table>,
    log: Arc<dyn ServeLog>,
}

/// What one server allows.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Blob bodies sent at once (each holds a few frames of memory); further blob requests
    /// wait their turn.
    pub max_streams: usize,
    /// A connection whose writes make no progress for this long is dropped (its client stopped
    /// reading or vanished), giving back its stream.
    pub send_timeout: Duration,
    /// How long a connection may take to send a complete request head (from its start, or
    /// from the previous response), and stay quiet between requests.
    pub timeouts: Timeouts,
    /// Connections open at once; when full, the one idle the longest is shed for a new one.
    /// `None`: as many as the process's open-file limit allows, less a reserve.
    pub max_connections: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_streams: 16,
            send_timeout: Duration::from_secs(60),
            timeouts: Timeouts {
                header: Duration::from_secs(20),
                idle: Duration::from_secs(60),
            },
            max_connections: None,
        }
    }
}

impl Server {
    /// A server for an already verified bundle, within `limits`: builds the catalog from
    /// `index.json`.
    pub fn new(
        bundle: Bundle<FileSource>,
        log: Arc<dyn ServeLog>,
        limits: Limits,
    ) -> Result<Server, ServeError> {
        let catalog = Catalog::build(&bundle)?;
        let blobs = bundle
            .members()
            .iter()
            .filter_map(|m| Some((oci::layout::blob_digest(&m.path)?.to_string(), m.clone())))
            .collect();
        Ok(Server {
            bundle: Arc::new(bundle),
            catalog,
            blobs,
            streams: Arc::new(Semaphore::new(limits.max_streams.max(1))),
            send_timeout: limits.send_timeout,
            timeouts: limits.timeouts,
            connections: Arc::new(Table::new(limits.max_connections.unwrap_or_else(|| {
                capacity_for_open_files(open_files_limit().unwrap_or(1024))
            }))),
            log,
        })
    }

    /// The catalog served.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// How many connections it keeps open at most.
    pub fn max_connections(&self) -> usize {
        self.connections.capacity()
    }
}

/// A response body: bytes in memory or chunks streamed from a blocking reader.
pub enum Body {
    /// The whole body (taken when sent).
    Full(Option<Bytes>),
    /// Pieces from a reader thread, their total length, and the permit they hold.
    Stream(Pieces, u64, OwnedSemaphorePermit),
}

impl Body {
    fn empty() -> Body {
        Body::Full(None)
    }

    fn bytes(bytes: impl Into<Bytes>) -> Body {
        Body::Full(Some(bytes.into()))
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx, _, _) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(_, len, _) => SizeHint::with_exact(*len),
        }
    }
}

fn error(code: Code, message: &str, detail: &str) -> Response<Body> {
    let mut response = Response::new(Body::bytes(errors::body(code, message, detail)));
    *response.status_mut() = StatusCode::from_u16(code.status()).expect("valid status");
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json(value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Body::bytes(
        serde_json::to_vec(value).expect("serialising JSON"),
    ));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Parses `n` and `last` from a query string.
fn pagination(query: Option<&str>) -> Result<(Option<usize>, Option<String>), ()> {
    let mut n = None;
    let mut last = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "n" => n = Some(value.parse::<usize>().map_err(|_| ())?),
            "last" => last = Some(value.to_string()),
            _ => {}
        }
    }
    Ok((n, last))
}

/// A page of `items` after `last`, at most `n`, and the `Link` to the next page.
fn page<'a>(
    items: impl Iterator<Item = &'a str>,
    n: Option<usize>,
    last: Option<&str>,
    path: &str,
) -> (Vec<String>, Option<String>) {
    let mut rest = items.filter(|item| last.is_none_or(|last| *item > last));
    let take = n.unwrap_or(usize::MAX);
    let page: Vec<String> = rest.by_ref().take(take).map(str::to_string).collect();
    let link = match (n, page.last()) {
        (Some(n), Some(final_item)) if rest.next().is_some() => {
            Some(format!("<{path}?n={n}&last={final_item}>; rel=\"next\""))
        }
        _ => None,
    };
    (page, link)
}

impl Server {
    fn repository(&self, name: &str) -> Option<&Repository> {
        self.catalog.repositories.get(name)
    }

    async fn respond(
        self: &Arc<Self>,
        method: &Method,
        path: &str,
        query: Option<&str>,
        range: Option<&str>,
    ) -> Response<Body> {
        let route = routes::parse(path);
        if route == Route::NotV2 {
            let mut response = Response::new(Body::bytes("404 page not found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            return response;
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = error(
                Code::Unsupported,
                "this registry is read-only",
                &format!("{method} is not supported"),
            );
            response
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let head = method == Method::HEAD;
        let mut response = match route {
            Route::Base | Route::NotV2 => json(&serde_json::json!({})),
            Route::Catalog => match pagination(query) {
                Err(()) => error(Code::PaginationNumberInvalid, "invalid n", ""),
                Ok((n, last)) => {
                    let (names, link) =
                        page(self.catalog.names(), n, last.as_deref(), "/v2/_catalog");
                    let mut r = json(&serde_json::json!({ "repositories": names }));
                    if let Some(link) = link {
                        r.headers_mut().insert("Link", header(&link));
                    }
                    r
                }
            },
            Route::Tags(name) => match (self.repository(&name), pagination(query)) {
                (None, _) => error(
                    Code::NameUnknown,
                    "repository name not known to registry",
                    &name,
                ),
                (_, Err(())) => error(Code::PaginationNumberInvalid, "invalid n", ""),
                (Some(repo), Ok((n, last))) => {
                    let path = format!("/v2/{name}/tags/list");
                    let (tags, link) = page(
                        repo.tags.keys().map(String::as_str),
                        n,
                        last.as_deref(),
                        &path,
                    );
                    let mut r = json(&serde_json::json!({ "name": name, "tags": tags }));
                    if let Some(link) = link {
                        r.headers_mut().insert("Link", header(&link));
                    }
                    r
                }
            },
            Route::Manifest(name, reference) => self.manifest(&name, &reference, head).await,
            Route::Blob(name, digest) => self.blob(&name, &digest, head, range).await,
            Route::Other => error(
                Code::Unsupported,
                "not supported by this read-only registry",
                path,
            ),
        };
        response.headers_mut().insert(
            "Docker-Distribution-API-Version",
            HeaderValue::from_static("registry/2.0"),
        );
        if !response.headers().contains_key(CONTENT_LENGTH) {
            if let Body::Full(bytes) = response.body() {
                let len = bytes.as_ref().map_or(0, |b| b.len());
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(len));
            }
        }
        if head {
            *response.body_mut() = Body::empty();
        }
        response
    }

    async fn manifest(self: &Arc<Self>, name: &str, reference: &str, head: bool) -> Response<Body> {
        let Some(repo) = self.repository(name) else {
            return error(
                Code::NameUnknown,
                "repository name not known to registry",
                name,
            );
        };
        let digest = if reference.contains(':') {
            reference
        } else {
            match repo.tags.get(reference) {
                Some(digest) => digest.as_str(),
                None => {
                    return error(
                        Code::ManifestUnknown,
                        "manifest unknown",
                        &format!("{name}:{reference}"),
                    )
                }
            }
        };
        let (Some(entry), Ok(parsed)) = (repo.manifests.get(digest), Digest::parse(digest)) else {
            return error(
                Code::ManifestUnknown,
                "manifest unknown",
                &format!("{name}@{reference}"),
            );
        };
        let body = if head {
            Body::empty()
        } else {
            let server = self.clone();
            let path = oci::blob_path(&parsed);
            match tokio::task::spawn_blocking(move || server.bundle.read_small(&path)).await {
                Ok(Ok(bytes)) => Body::bytes(bytes),
                Ok(Err(e)) => {
                    return error(
                        Code::Internal,
                        "reading the bundle failed",
                        &oci::error_chain(&e),
                    )
                }
                Err(e) => {
                    return error(Code::Internal, "reading the bundle failed", &e.to_string())
                }
            }
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, header(&entry.media_type));
        headers.insert("Docker-Content-Digest", header(&entry.digest));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(entry.size));
        headers.insert("ETag", header(&format!("\"{}\"", entry.digest)));
        response
    }

    async fn blob(
        self: &Arc<Self>,
        name: &str,
        digest: &str,
        head: bool,
        range: Option<&str>,
    ) -> Response<Body> {
        let Some(repo) = self.repository(name) else {
            return error(
                Code::NameUnknown,
                "repository name not known to registry",
                name,
            );
        };
        if Digest::parse(digest).is_err() {
            return error(
                Code::DigestInvalid,
                "provided digest is not a sha256 digest",
                digest,
            );
        }
        let member = match (repo.blobs.contains(digest), self.blobs.get(digest)) {
            (true, Some(member)) => member.clone(),
            _ => return error(Code::BlobUnknown, "blob unknown to registry", digest),
        };
        let size = member.size;
        let (status, start, len) = match routes::byte_range(range, size) {
            ByteRange::Whole => (StatusCode::OK, 0, size),
            ByteRange::Part { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
            ByteRange::Unsatisfiable => {
                let mut r = error(
                    Code::RangeInvalid,
                    "requested range not satisfiable",
                    &format!("blob is {size} bytes"),
                );
                r.headers_mut()
                    .insert(CONTENT_RANGE, header(&format!("bytes */{size}")));
                return r;
            }
        };
        let body = if head || len == 0 {
            Body::empty()
        } else {
            match self.stream(member, start, len).await {
                Some(body) => body,
                None => return error(Code::Internal, "no stream can be opened", digest),
            }
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert("Docker-Content-Digest", header(digest));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert("ETag", header(&format!("\"{digest}\"")));
        if status == StatusCode::PARTIAL_CONTENT {
            headers.insert(
                CONTENT_RANGE,
                header(&format!("bytes {start}-{}/{size}", start + len - 1)),
            );
        }
        response
    }

    /// Streams `len` bytes of `member` from `start`, a frame at a time from a reader thread,
    /// so memory stays bounded whatever the blob size, once a stream permit is free; `None`
    /// if no permit can be had (the semaphore was closed).
    async fn stream(self: &Arc<Self>, member: Located, start: u64, len: u64) -> Option<Body> {
        let permit = Arc::clone(&self.streams).acquire_owned().await.ok()?;
        let pieces = member_pieces(self.bundle.clone(), member, start, len);
        Some(Body::Stream(pieces, len, permit))
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
        in_flight: InFlight,
    ) -> Result<Response<Tracked>, Infallible> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().map(str::to_string);
        let range = request
            .headers()
            .get(hyper::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let response = self
            .respond(&method, &path, query.as_deref(), range.as_deref())
            .await;
        let length = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        self.log.info(&format!(
            "{peer} {method} {path}{} {} {length}",
            query.map(|q| format!("?{q}")).unwrap_or_default(),
            response.status().as_u16()
        ));
        Ok(response.map(|body| Tracked {
            body,
            _in_flight: in_flight,
        }))
    }
}

/// A TLS acceptor from PEM certificate chain and private key files (rustls on ring).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    fn tls<E: std::error::Error + Send + Sync + 'static>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> ServeError {
        let what = what.into();
        move |e| ServeError::Tls {
            what,
            source: Box::new(e),
        }
    }
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(tls(format!("reading certificates from {}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls {
            what: format!("{} holds no certificate", cert.display()),
            source: "no PEM CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(tls(format!(
        "reading the private key from {}",
        key.display()
    )))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls("TLS protocol versions"))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(tls("the TLS certificate and key do not fit together"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A response body that ends its request when dropped (once hyper has sent it, or the
/// connection went away).
pub struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

async fn connection<IO>(
    server: Arc<Server>,
    io: IO,
    peer: SocketAddr,
    state: Arc<Connection>,
    mut stop: watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (io, watchdog) = stall::watch(io, Arc::clone(&state));
    let send_timeout = server.send_timeout;
    let log = Arc::clone(&server.log);
    let service = hyper::service::service_fn(move |request| {
        server.clone().handle(request, peer, state.request())
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = watchdog.stalled(send_timeout) => {
            log.info(&format!("{peer} took nothing for {}s: connection dropped", send_timeout.as_secs()));
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A warning logged at most once a second, with how many were left out in between.
struct RateLimited {
    last: Option<std::time::Instant>,
    left_out: u64,
}

impl RateLimited {
    fn warn(&mut self, log: &dyn ServeLog, message: &str) {
        let now = std::time::Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < Duration::from_secs(1) => self.left_out += 1,
            _ => {
                let more = std::mem::take(&mut self.left_out);
                if more > 0 {
                    log.warn(&format!("{message} ({more} more like it left out)"));
                } else {
                    log.warn(message);
                }
                self.last = Some(now);
            }
        }
    }
}

/// Accepts connections on `listener` (each its own task, through `tls` when given) until
/// `shutdown` completes, then lets in-flight requests finish (for a while) and returns.
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut accept_errors = RateLimited {
        last: None,
        left_out: 0,
    };
    let mut refusals = RateLimited {
        last: None,
        left_out: 0,
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors: give one back by shedding the connection
                        // idle the longest, then accept again.
                        let shed = server.connections.shed_one();
                        accept_errors.warn(server.log.as_ref(), &format!(
                            "accept failed: {e}{}",
                            if shed { "; shed the longest-idle connection" } else { "" }
                        ));
                        tokio::time::sleep(Duration::from_millis(if shed { 5 } else { 50 })).await;
                        continue;
                    }
                };
                let Some(entry) = server.connections.admit() else {
                    refusals.warn(server.log.as_ref(), &format!(
                        "{peer} refused: {} connections open, all answering requests",
                        server.connections.capacity()
                    ));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                let tls = tls.clone();
                let stop = stop_rx.clone();
                tasks.spawn(async move {
                    let state = Arc::clone(entry.connection());
                    let timeouts = server.timeouts;
                    let log = Arc::clone(&server.log);
                    let served = async {
                        match tls {
                            None => connection(server, stream, peer, Arc::clone(&state), stop).await,
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(stream) => {
                                    connection(server, stream, peer, Arc::clone(&state), stop).await
                                }
                                Err(e) => log.info(&format!("{peer} TLS handshake failed: {e}")),
                            },
                        }
                    };
                    tokio::select! {
                        () = served => {}
                        () = state.expired(timeouts) => {
                            log.info(&format!("{peer} sent no complete request in time: connection closed"));
                        }
                        () = state.shed() => {
                            log.info(&format!("{peer} idle the longest: connection shed to make room"));
                        }
                    }
                    drop(entry);
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained =
        tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tasks.abort_all();
    }
}
