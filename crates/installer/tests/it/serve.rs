//! `installer serve`: a read-only registry answered from the bundle file, pulled from with real
//! clients (skopeo, and reqwest for ranges, HEAD and error bodies).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;
use test_support::images::{self, sha256, SampleImage};
use test_support::ports::reserved_port;
use test_support::registry::{TestCa, TestRegistry};
use test_support::serve::Serve;
use test_support::{bundle, p, require, test_key};

const SYNAPSE: &str = "docker.io/matrixdotorg/synapse:v1.142.0";
const APP: &str = "127.0.0.1:5000/team/app:v1";
/// The app's one layer: six frames, more than a client that stops reading and the kernel's
/// socket buffers take in.
const APP_LAYER: usize = 12_000_000;

/// A signed bundle holding a multi-arch image and a single-platform one.
struct Fixture {
    _dir: tempfile::TempDir,
    bundle: PathBuf,
    public: PathBuf,
    synapse: SampleImage,
    app: SampleImage,
}

/// Stages two sample layouts into one OCI layout whose `index.json` names both images.
fn stage_images(dir: &Path, refs: &[&str]) -> (SampleImage, SampleImage) {
    let synapse = images::multi_arch(&dir.join("src-a"), "v1.142.0", 11);
    let app = images::single(&dir.join("src-b"), "v1", 21, APP_LAYER);
    let stage = dir.join("stage");
    std::fs::create_dir_all(stage.join("blobs/sha256")).unwrap();
    for src in [&synapse.layout, &app.layout] {
        for entry in std::fs::read_dir(src.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                stage.join("blobs/sha256").join(entry.file_name()),
            )
            .unwrap();
        }
    }
    std::fs::write(
        stage.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let descriptor = |image: &SampleImage, reference: &str| {
        let (media_type, digest, size) = match &image.index {
            Some(index) => (&index.media_type, &index.digest, index.bytes.len()),
            None => {
                let m = &image.images[0].manifest;
                (&m.media_type, &m.digest, m.bytes.len())
            }
        };
        serde_json::json!({
            "mediaType": media_type, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": reference},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [descriptor(&synapse, refs[0]), descriptor(&app, refs[1])],
    });
    std::fs::write(
        stage.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    (synapse, app)
}

fn pack(dir: &Path, name: &str) -> PathBuf {
    let (_, secret) = test_key("serve-test");
    bundle(
        &["pack", "stage", "-o", name, "--sign-key", p(&secret)],
        dir,
    )
    .ok();
    dir.join(name)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (synapse, app) = stage_images(dir.path(), &[SYNAPSE, APP]);
        let bundle = pack(dir.path(), "b.tar.zst");
        let (public, _) = test_key("serve-test");
        Fixture {
            _dir: dir,
            bundle,
            public,
            synapse,
            app,
        }
    })
}

fn skopeo(args: &[&str]) -> std::process::Output {
    require("skopeo", "skopeo");
    Command::new("skopeo")
        .args(["--insecure-policy", "--command-timeout", "300s"])
        .args(args)
        .output()
        .expect("run skopeo")
}

fn skopeo_ok(args: &[&str]) -> Vec<u8> {
    let out = skopeo(args);
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One HTTP request: (status, headers, body).
fn http(
    method: &str,
    url: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), url);
        if let Some(range) = range {
            request = request.header("Range", range);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        (status, headers, body)
    })
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    v["errors"][0]["code"].as_str().unwrap().to_string()
}

#[test]
fn skopeo_pulls_exact_bytes_from_the_bundle() {
    let f = fixture();
    let server = Serve::start(&f.bundle, &f.public, None);
    let index = f.synapse.index.as_ref().unwrap();
    for name in [
        "matrixdotorg/synapse:v1.142.0",
        "docker.io/matrixdotorg/synapse:v1.142.0",
    ] {
        let raw = skopeo_ok(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{name}", server.host()),
        ]);
        assert_eq!(raw, index.bytes, "{name}");
        assert_eq!(sha256(&raw), index.digest);
    }
    let app = &f.app.images[0].manifest;
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/team/app:v1", server.host()),
    ]);
    assert_eq!(raw, app.bytes);

    // copy --all into a directory: every blob hashes to its name.
    copy_synapse_and_check_blobs(f, &server.host());

    // copy --all --preserve-digests into a real registry keeps every digest.
    let registry = TestRegistry::plain();
    skopeo_ok(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!(
            "docker://{}/docker.io/matrixdotorg/synapse:v1.142.0",
            server.host()
        ),
        &format!("docker://{}/synapse:v1.142.0", registry.host()),
    ]);
    assert_eq!(
        images::inspect_raw(&registry, "synapse:v1.142.0"),
        index.bytes
    );
    for image in &f.synapse.images {
        let raw = images::inspect_raw(&registry, &format!("synapse@{}", image.manifest.digest));
        assert_eq!(raw, image.manifest.bytes);
    }

    // Four clients at once against a server that sends two blobs at a time: the limit queues
    // requests without failing or mixing any, and every copy is exact.
    let narrow = Serve::start_with(&f.bundle, &f.public, None, &["--max-streams", "2"]);
    let out = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let host = narrow.host();
            let dest = out.path().join(format!("c{i}"));
            std::thread::spawn(move || {
                skopeo_ok(&[
                    "copy",
                    "--all",
                    "--quiet",
                    "--src-tls-verify=false",
                    &format!("docker://{host}/matrixdotorg/synapse:v1.142.0"),
                    &format!("dir:{}", dest.display()),
                ]);
                dest
            })
        })
        .collect();
    for thread in threads {
        let dest = thread.join().unwrap();
        for blob in f.synapse.blobs() {
            let hex = blob.digest.trim_start_matches("sha256:");
            assert_eq!(std::fs::read(dest.join(hex)).unwrap(), blob.bytes);
        }
    }
    let log = server.log();
    assert!(
        log.contains("serving 2 images (2 tags, 4 repository names) on http://127.0.0.1:"),
        "{log}"
    );
    assert!(
        log.contains("GET /v2/matrixdotorg/synapse/manifests/v1.142.0 200"),
        "{log}"
    );
}

#[test]
fn http_api_ranges_heads_and_errors() {
    let f = fixture();
    let mut server = Serve::start(&f.bundle, &f.public, None);

    let (status, headers, body) = http("GET", &server.url("/v2/"), None);
    assert_eq!(status, 200);
    assert_eq!(body, b"{}");
    assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");

    // HEAD manifest: headers, no body.
    let index = f.synapse.index.as_ref().unwrap();
    let (status, headers, body) = http(
        "HEAD",
        &server.url("/v2/matrixdotorg/synapse/manifests/v1.142.0"),
        None,
    );
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(headers["docker-content-digest"], index.digest.as_str());
    assert_eq!(headers["content-type"], images::OCI_INDEX);
    assert_eq!(
        headers["content-length"],
        index.bytes.len().to_string().as_str()
    );

    // A platform manifest by digest, under both names; not under the other image's name.
    let platform = &f.synapse.images[1].manifest;
    for name in ["matrixdotorg/synapse", "docker.io/matrixdotorg/synapse"] {
        let (status, headers, body) = http(
            "GET",
            &server.url(&format!("/v2/{name}/manifests/{}", platform.digest)),
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(body, platform.bytes);
        assert_eq!(headers["content-type"], images::OCI_MANIFEST);
    }
    let (status, _, body) = http(
        "GET",
        &server.url(&format!("/v2/team/app/manifests/{}", platform.digest)),
        None,
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, "MANIFEST_UNKNOWN")
    );

    // Ranged blob reads, of a layer of two frames.
    let layer = &f.app.images[0].layers[0];
    let size = layer.bytes.len();
    let url = server.url(&format!("/v2/team/app/blobs/{}", layer.digest));
    let (status, headers, body) = http("GET", &url, None);
    assert_eq!(status, 200);
    assert_eq!(body, layer.bytes);
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["docker-content-digest"], layer.digest.as_str());
    let cases = [
        ("bytes=100-1099", 100, 1100),
        ("bytes=2000000-2199999", 2_000_000, 2_200_000),
        (&*format!("bytes={}-", size - 777), size - 777, size),
        ("bytes=-500", size - 500, size),
        (&*format!("bytes=10-{}", size + 50), 10, size),
    ];
    for (range, start, end) in cases {
        let (status, headers, body) = http("GET", &url, Some(range));
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, &layer.bytes[start..end], "{range}");
        assert_eq!(
            headers["content-range"],
            format!("bytes {start}-{}/{size}", end - 1).as_str()
        );
    }
    let (status, headers, body) = http("GET", &url, Some(&format!("bytes={size}-")));
    assert_eq!(status, 416);
    assert_eq!(error_code(&body), "RANGE_INVALID");
    assert_eq!(headers["content-range"], format!("bytes */{size}").as_str());
    let (status, headers, body) = http("HEAD", &url, None);
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(headers["content-length"], size.to_string().as_str());

    // Writes are refused anywhere under /v2/.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        for path in [
            "/v2/matrixdotorg/synapse/blobs/uploads/",
            "/v2/matrixdotorg/synapse/manifests/v1.142.0",
            "/v2/",
        ] {
            let (status, headers, body) = http(method, &server.url(path), None);
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(error_code(&body), "UNSUPPORTED");
            assert_eq!(headers["content-type"], "application/json");
        }
    }

    // Unknown things.
    let zero = format!("sha256:{}", "0".repeat(64));
    for (path, code) in [
        (
            "/v2/matrixdotorg/synapse/manifests/v9".to_string(),
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/matrixdotorg/synapse/manifests/{zero}"),
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/matrixdotorg/synapse/blobs/{zero}"),
            "BLOB_UNKNOWN",
        ),
        (
            format!(
                "/v2/team/app/blobs/{}",
                f.synapse.images[0].layers[0].digest
            ),
            "BLOB_UNKNOWN",
        ),
        ("/v2/nobody/here/manifests/v1".to_string(), "NAME_UNKNOWN"),
        ("/v2/nobody/here/tags/list".to_string(), "NAME_UNKNOWN"),
    ] {
        let (status, _, body) = http("GET", &server.url(&path), None);
        assert_eq!((status, error_code(&body).as_str()), (404, code), "{path}");
    }
    let (status, _, body) = http("GET", &server.url("/v2/team/app/blobs/sha256:xyz"), None);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "DIGEST_INVALID")
    );

    // Catalog and tags.
    let (status, _, body) = http("GET", &server.url("/v2/_catalog"), None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!([
            "127.0.0.1:5000/team/app",
            "docker.io/matrixdotorg/synapse",
            "matrixdotorg/synapse",
            "team/app"
        ])
    );
    let (_, headers, body) = http("GET", &server.url("/v2/_catalog?n=2"), None);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["repositories"].as_array().unwrap().len(), 2);
    assert!(headers["link"]
        .to_str()
        .unwrap()
        .contains("last=docker.io/matrixdotorg/synapse"));
    let (_, _, body) = http(
        "GET",
        &server.url("/v2/_catalog?n=2&last=docker.io/matrixdotorg/synapse"),
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!(["matrixdotorg/synapse", "team/app"])
    );
    let (status, _, body) = http("GET", &server.url("/v2/team/app/tags/list"), None);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, serde_json::json!({"name": "team/app", "tags": ["v1"]}));

    // SIGTERM stops it cleanly.
    let status = server
        .service()
        .signal_and_wait("TERM", Duration::from_secs(15));
    assert!(status.success(), "exit {status}:\n{}", server.log());
}

#[test]
fn tls_with_a_test_ca() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(&dir.path().join("ca"));
    let server = Serve::start(&f.bundle, &f.public, Some(&ca));
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        &format!("--cert-dir={}", ca.cert_dir.display()),
        &format!("docker://{}/matrixdotorg/synapse:v1.142.0", server.host()),
    ]);
    assert_eq!(raw, f.synapse.index.as_ref().unwrap().bytes);
    // Without the CA the certificate is refused.
    let out = skopeo(&[
        "inspect",
        "--raw",
        &format!("docker://{}/matrixdotorg/synapse:v1.142.0", server.host()),
    ]);
    assert!(!out.status.success());
}

/// Runs `installer serve` expecting it to fail before it listens; returns its stderr.
fn serve_fails(bundle_file: &Path, key: &Path) -> String {
    let port = reserved_port();
    let out = Command::new(test_support::bin("installer"))
        .args(["serve", p(bundle_file), "--key", p(key), "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started:\n{stderr}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    stderr
}

#[test]
fn tampered_or_ambiguous_bundles_are_refused() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&f.bundle, dir.path().join("b.tar.zst")).unwrap();
    let layer = &f.synapse.images[0].layers[0];
    let member = format!(
        "blobs/sha256/{}",
        layer.digest.trim_start_matches("sha256:")
    );
    let offset = test_support::file_offset_of(dir.path(), "b.tar.zst", &member);
    test_support::flip_byte(&dir.path().join("b.tar.zst"), offset + 200);
    let stderr = serve_fails(&dir.path().join("b.tar.zst"), &f.public);
    assert!(stderr.contains("verification"), "{stderr}");

    // Two images claiming the same repository:tag (different registries).
    let dir = tempfile::tempdir().unwrap();
    stage_images(
        dir.path(),
        &["docker.io/team/app:v1", "127.0.0.1:5000/team/app:v1"],
    );
    let ambiguous = pack(dir.path(), "amb.tar.zst");
    let stderr = serve_fails(&ambiguous, &f.public);
    assert!(stderr.contains("two images claim team/app:v1"), "{stderr}");

    // An update bundle, whose base layers only the site registry has.
    let dir = tempfile::tempdir().unwrap();
    stage_images(
        dir.path(),
        &["docker.io/team/synapse:v1", "docker.io/team/app:v1"],
    );
    std::fs::write(
        dir.path().join("stage/external-blobs.json"),
        format!(
            "[{{\"digest\": \"sha256:{}\", \"size\": 1, \"image\": \"docker.io/team/base:v1\"}}]\n",
            "a".repeat(64)
        ),
    )
    .unwrap();
    let update = pack(dir.path(), "update.tar.zst");
    let stderr = serve_fails(&update, &f.public);
    assert!(
        stderr.contains("is an update bundle") && stderr.contains("installer load"),
        "{stderr}"
    );
}

#[test]
fn a_bundle_split_into_volumes_is_served_from_its_parts() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("b.tar.zst");
    std::fs::copy(&f.bundle, &copy).unwrap();
    let part = (std::fs::metadata(&copy).unwrap().len() / 4 + 1).to_string();
    let split = std::process::Command::new(test_support::bin("bundle"))
        .args(["split", copy.to_str().unwrap(), "--size", &part])
        .output()
        .unwrap();
    assert!(
        split.status.success(),
        "{}",
        String::from_utf8_lossy(&split.stderr)
    );
    std::fs::remove_file(&copy).unwrap();
    let first = dir.path().join("b.tar.zst.001");
    assert!(
        dir.path().join("b.tar.zst.004").exists(),
        "expected four parts"
    );
    let server = Serve::start(&first, &f.public, None);
    let index = f.synapse.index.as_ref().unwrap();
    let raw = skopeo_ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/matrixdotorg/synapse:v1.142.0", server.host()),
    ]);
    assert_eq!(raw, index.bytes);
    copy_synapse_and_check_blobs(f, &server.host());
}

/// `skopeo copy --all` of the sample multi-arch image from `host` into a directory: every
/// blob of the image arrives and hashes to its name.
fn copy_synapse_and_check_blobs(f: &Fixture, host: &str) {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dir");
    skopeo_ok(&[
        "copy",
        "--all",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{host}/matrixdotorg/synapse:v1.142.0"),
        &format!("dir:{}", dest.display()),
    ]);
    for entry in std::fs::read_dir(&dest).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert_eq!(sha256(&bytes), format!("sha256:{name}"));
        }
    }
    for blob in f.synapse.blobs() {
        let hex = blob.digest.trim_start_matches("sha256:");
        assert!(dest.join(hex).is_file(), "{} missing", blob.digest);
    }
}

/// A client that asks for a blob and then reads nothing holds the only stream until the send
/// timeout drops its connection; a second client's download then completes, exact.
#[test]
fn a_client_that_stops_reading_gives_its_stream_back() {
    use std::io::{Read, Write};
    let f = fixture();
    let server = Serve::start_with(
        &f.bundle,
        &f.public,
        None,
        &["--max-streams", "1", "--send-timeout", "2"],
    );
    let layer = &f.app.images[0].layers[0];
    let path = format!("/v2/team/app/blobs/{}", layer.digest);
    let mut stalled = TcpStream::connect(server.host()).unwrap();
    write!(
        stalled,
        "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.host()
    )
    .unwrap();
    let mut head = [0u8; 12];
    stalled.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200", "the stalled client got its stream");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let second = runtime.block_on(async {
        let request = reqwest::Client::new().get(server.url(&path)).send();
        let response = tokio::time::timeout(Duration::from_secs(60), request)
            .await
            .expect("the second download waited for the stalled one for good")
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap()
    });
    assert!(second == layer.bytes, "the second download is exact");

    // The stalled client's connection was closed before its body was complete.
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled.read_to_end(&mut rest);
    assert!(
        rest.len() < layer.bytes.len(),
        "the stalled client got {} of {} bytes",
        rest.len(),
        layer.bytes.len()
    );
    let log = server.log();
    assert!(
        log.contains("took nothing for 2s: connection dropped"),
        "{log}"
    );
}

/// Connections that send nothing cannot starve the server: under `ulimit -n 200`, 250
/// connections open and silent, then a real pull succeeds (the oldest idle connections are
/// shed to make room), and the accept-error log stays short.
#[test]
fn silent_connections_do_not_starve_a_real_pull() {
    let f = fixture();
    let server = Serve::start_limited(&f.bundle, &f.public, None, &[], Some(200));
    let silent: Vec<TcpStream> = (0..250)
        .filter_map(|_| TcpStream::connect(server.host()).ok())
        .collect();
    assert!(silent.len() >= 200, "only {} connected", silent.len());
    copy_synapse_and_check_blobs(f, &server.host());
    let log = server.log();
    let accept_errors = log.matches("accept failed").count();
    assert!(
        accept_errors <= 20,
        "{accept_errors} accept errors logged:\n{log}"
    );
    drop(silent);
}

/// A connection that sends nothing, one that stops in the middle of its request head, and a
/// keep-alive connection that goes quiet after a response are each closed by the server.
#[test]
fn silent_half_sent_and_idle_connections_are_closed() {
    use std::io::{Read, Write};
    let f = fixture();
    let server = Serve::start_with(
        &f.bundle,
        &f.public,
        None,
        &["--header-timeout", "2", "--idle-timeout", "3"],
    );
    // Closed by the server: a read ends (0 bytes, or a reset) before the test's own limit.
    let closed_by_server = |mut stream: TcpStream, what: &str| {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => rest,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(e) => panic!("{what}: the server kept the connection open ({e})"),
        }
    };
    let silent = TcpStream::connect(server.host()).unwrap();
    let mut half = TcpStream::connect(server.host()).unwrap();
    half.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(server.host()).unwrap();
    idle.write_all(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    closed_by_server(silent, "a silent connection");
    closed_by_server(half, "a half-sent request head");
    let answered = closed_by_server(idle, "an idle keep-alive connection");
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "the request was answered before the connection closed: {}",
        String::from_utf8_lossy(&answered)
    );
}
