//! The registry client against real components: Debian's `docker-registry` (plain, and with
//! htpasswd over TLS from a test CA), images pushed by `skopeo`, and an in-process HTTP proxy
//! in front of the registry that injects faults (5xx, resets, 429 with `Retry-After`, cut and
//! corrupted bodies, redirects to another host) or demands bearer tokens.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use oci::{media, Digest, Reference};
use registry::{
    Client, ClientConfig, Credentials, RegistryError, RegistrySettings, Retry, RetryObserver,
};
use test_support::fault_proxy as fake;
use test_support::images::{self, Blob, SampleImage};
use test_support::ports;
use test_support::registry::{RegistryOptions, TestRegistry};

/// Every retry a client announced.
#[derive(Debug, Default)]
struct Retries(Mutex<Vec<Retry>>);

impl RetryObserver for Retries {
    fn retrying(&self, retry: &Retry) {
        self.0.lock().unwrap().push(retry.clone());
    }
}

impl Retries {
    fn seen(&self) -> Vec<Retry> {
        self.0.lock().unwrap().clone()
    }
}

/// `config` reporting its retries to the returned recorder.
fn observed(config: ClientConfig) -> (ClientConfig, Arc<Retries>) {
    let retries = Arc::new(Retries::default());
    let config = ClientConfig {
        retry_observer: Some(retries.clone()),
        ..config
    };
    (config, retries)
}

/// A client config with a small retry budget and short delays, `insecure` hosts marked so.
fn fast_config(insecure: &[&str]) -> ClientConfig {
    let registries = insecure
        .iter()
        .map(|host| {
            (
                host.to_string(),
                RegistrySettings {
                    insecure: true,
                    mirror: None,
                },
            )
        })
        .collect::<BTreeMap<_, _>>();
    ClientConfig {
        registries,
        max_attempts: 4,
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(5),
        ..ClientConfig::default()
    }
}

fn reference(host: &str, name: &str) -> Reference {
    Reference::parse(&format!("{host}/{name}")).unwrap()
}

fn digest(text: &str) -> Digest {
    Digest::parse(text).unwrap()
}

/// The error and its sources on one line.
fn full(e: &RegistryError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Fetches a blob into memory, checking size, progress reports and content.
async fn fetch_blob(client: &Client, r: &Reference, blob: &Blob) -> Vec<u8> {
    let mut out = Vec::new();
    let last = AtomicU64::new(0);
    let size = blob.bytes.len() as u64;
    let n = client
        .get_blob(r, &digest(&blob.digest), Some(size), &mut out, &|so_far| {
            assert!(so_far >= last.load(Ordering::SeqCst), "progress went back");
            last.store(so_far, Ordering::SeqCst);
        })
        .await
        .unwrap_or_else(|e| panic!("blob {}: {}", blob.digest, full(&e)));
    assert_eq!(n, size);
    assert_eq!(last.load(Ordering::SeqCst), size);
    assert_eq!(images::sha256(&out), blob.digest);
    assert_eq!(out, blob.bytes);
    out
}

/// Pushes a fresh multi-arch image as `repository:v1`.
fn pushed_multi_arch(
    registry: &TestRegistry,
    repository: &str,
    seed: u64,
) -> (tempfile::TempDir, SampleImage) {
    let work = tempfile::tempdir().unwrap();
    let image = images::multi_arch(&work.path().join("layout"), "v1", seed);
    images::push(&image, registry, repository);
    (work, image)
}

/// Pushes a fresh single-platform image as `repository:v1`.
fn pushed_single(
    registry: &TestRegistry,
    repository: &str,
    seed: u64,
) -> (tempfile::TempDir, SampleImage) {
    let work = tempfile::tempdir().unwrap();
    let image = images::single(&work.path().join("layout"), "v1", seed, 200_000);
    images::push(&image, registry, repository);
    (work, image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_index_platform_manifests_and_blobs_match_skopeo() {
    let mut registry = TestRegistry::plain();
    let (_work, image) = pushed_multi_arch(&registry, "team/app", 1);
    let raw = images::inspect_raw(&registry, "team/app:v1");
    let host = registry.host();
    let client = Client::new(fast_config(&[&host])).unwrap();
    let r = reference(&host, "team/app:v1");

    let index = client.get_manifest(&r).await.unwrap();
    assert_eq!(index.media_type, media::OCI_INDEX);
    assert_eq!(
        index.digest,
        Digest::of(&raw),
        "digest of skopeo's raw bytes"
    );
    assert_eq!(index.bytes, raw);
    assert_eq!(
        index.digest.as_str(),
        image.top_digest(),
        "skopeo kept our digest"
    );
    assert_eq!(
        client.head_manifest(&r).await.unwrap(),
        Some((
            media::OCI_INDEX.to_string(),
            index.digest.clone(),
            raw.len() as u64
        ))
    );

    let parsed: serde_json::Value = serde_json::from_slice(&index.bytes).unwrap();
    let entries = parsed["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let mut base_layers = Vec::new();
    for (entry, local) in entries.iter().zip(&image.images) {
        let platform = format!(
            "{}/{}",
            entry["platform"]["os"].as_str().unwrap(),
            entry["platform"]["architecture"].as_str().unwrap()
        );
        assert_eq!(platform, local.platform);
        let d = entry["digest"].as_str().unwrap();
        let by_digest = reference(&host, &format!("team/app@{d}"));
        let manifest = client.get_manifest(&by_digest).await.unwrap();
        assert_eq!(manifest.media_type, media::OCI_MANIFEST);
        assert!(media::is_manifest(&manifest.media_type));
        assert_eq!(manifest.digest.as_str(), d);
        assert_eq!(manifest.bytes, local.manifest.bytes);
        let m: serde_json::Value = serde_json::from_slice(&manifest.bytes).unwrap();
        let descriptors = std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap());
        for (descriptor, blob) in
            descriptors.zip(std::iter::once(&local.config).chain(&local.layers))
        {
            assert_eq!(descriptor["digest"].as_str().unwrap(), blob.digest);
            fetch_blob(&client, &r, blob).await;
            assert_eq!(
                client.head_blob(&r, &digest(&blob.digest)).await.unwrap(),
                Some(blob.bytes.len() as u64)
            );
        }
        base_layers.push(m["layers"][0]["digest"].as_str().unwrap().to_string());
    }
    assert_eq!(
        base_layers[0], base_layers[1],
        "platforms share the base layer"
    );

    // The same client carries on after the registry restarts (stale pooled connections).
    registry.restart();
    let again = client.get_manifest(&r).await.unwrap();
    assert_eq!(again.digest, index.digest);
}

/// Writes a docker `config.json` into `dir`.
fn docker_config(dir: &std::path::Path, json: serde_json::Value) -> std::path::PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    path
}

fn tls_login_registry() -> TestRegistry {
    TestRegistry::start(RegistryOptions {
        login: Some(("alice".into(), "s3cret".into())),
        tls: true,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_htpasswd_registry_with_login_from_docker_config() {
    let registry = tls_login_registry();
    let (_work, image) = pushed_single(&registry, "private/app", 2);
    let host = registry.host();
    let ca = registry.ca.as_ref().unwrap().ca_cert.clone();
    let r = reference(&host, "private/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let config_json = docker_config(
        dir.path(),
        serde_json::json!({"auths": {format!("https://{host}"): {"auth": auth}}}),
    );
    let credentials = Credentials::from_files(Some(&config_json), None).unwrap();

    // Verified TLS with the test CA and the login from config.json.
    let client = Client::new(ClientConfig {
        ca_files: vec![ca.clone()],
        credentials: credentials.clone(),
        ..fast_config(&[])
    })
    .unwrap();
    let manifest = client.get_manifest(&r).await.unwrap();
    assert_eq!(manifest.digest.as_str(), image.top_digest());
    for blob in image.blobs() {
        fetch_blob(&client, &r, blob).await;
    }

    // A wrong password is refused, naming registry, repository and user.
    let client = Client::new(ClientConfig {
        ca_files: vec![ca.clone()],
        credentials: Credentials::none().with(&host, "alice", "wrong"),
        ..fast_config(&[])
    })
    .unwrap();
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::Unauthorized { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&host) && text.contains("private/app"),
                "{text}"
            );
            assert!(text.contains("alice"), "{text}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // No login at all: Unauthorized, saying none is configured.
    let client = Client::new(ClientConfig {
        ca_files: vec![ca.clone()],
        ..fast_config(&[])
    })
    .unwrap();
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::Unauthorized { .. }) => {
            assert!(e.to_string().contains("no credentials"), "{e}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }

    // Without the CA the certificate is refused at once (not retried), naming the registry.
    let (config, retries) = observed(ClientConfig {
        credentials: credentials.clone(),
        max_attempts: 5,
        base_backoff: Duration::from_secs(1),
        ..fast_config(&[])
    });
    let client = Client::new(config).unwrap();
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::Unreachable { .. }) => {
            let text = full(&e);
            assert!(
                text.contains(&host) && text.contains("private/app:v1"),
                "{text}"
            );
            assert!(text.to_lowercase().contains("certificate"), "{text}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert_eq!(
        retries.seen(),
        [],
        "certificate errors are final: never retried"
    );

    // Marked insecure: TLS without verification, still with the login.
    let client = Client::new(ClientConfig {
        credentials,
        ..fast_config(&[&host])
    })
    .unwrap();
    let manifest = client.get_manifest(&r).await.unwrap();
    assert_eq!(manifest.digest.as_str(), image.top_digest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_htpasswd_registry_with_login_from_credential_helper() {
    let registry = tls_login_registry();
    let (_work, image) = pushed_single(&registry, "private/app", 3);
    let host = registry.host();
    let ca = registry.ca.as_ref().unwrap().ca_cert.clone();
    let r = reference(&host, "private/app:v1");
    let dir = tempfile::tempdir().unwrap();
    let helpers = dir.path().join("bin");
    std::fs::create_dir_all(&helpers).unwrap();
    let asked = dir.path().join("asked");
    let secret = dir.path().join("secret");
    let helper = helpers.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n\
             [ \"$1\" = get ] || exit 3\n\
             server=$(cat)\n\
             printf '%s' \"$server\" > '{asked}'\n\
             if [ \"$server\" = '{host}' ]; then\n\
               printf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"%s\"}}' \"$server\" \"$(cat '{secret}')\"\n\
             else\n\
               echo 'credentials not found in native keychain'; exit 1\n\
             fi\n",
            asked = asked.display(),
            secret = secret.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_json = docker_config(
        dir.path(),
        serde_json::json!({"credHelpers": {host.clone(): "test"}, "auths": {host.clone(): {}}}),
    );
    let make_client = || {
        let credentials = Credentials::from_files(Some(&config_json), None)
            .unwrap()
            .with_helper_dir(&helpers);
        Client::new(ClientConfig {
            ca_files: vec![ca.clone()],
            credentials,
            ..fast_config(&[])
        })
        .unwrap()
    };

    std::fs::write(&secret, "s3cret").unwrap();
    let client = make_client();
    let manifest = client.get_manifest(&r).await.unwrap();
    assert_eq!(manifest.digest.as_str(), image.top_digest());
    fetch_blob(&client, &r, &image.images[0].layers[0]).await;
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        host,
        "server URL on stdin"
    );

    std::fs::write(&secret, "not-the-password").unwrap();
    match make_client().get_manifest(&r).await {
        Err(e @ RegistryError::Unauthorized { .. }) => {
            assert!(e.to_string().contains(&host), "{e}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tag_repository_and_blob_are_not_found() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_single(&registry, "team/app", 4);
    let host = registry.host();
    let client = Client::new(fast_config(&[&host])).unwrap();

    // docker-registry 2.8 answers MANIFEST_UNKNOWN, not NAME_UNKNOWN, for a repository
    // that does not exist.
    for (name, code) in [
        ("team/app:nope", "MANIFEST_UNKNOWN"),
        ("team/ghost:v1", "_UNKNOWN"),
    ] {
        let r = reference(&host, name);
        match client.get_manifest(&r).await {
            Err(e @ RegistryError::NotFound { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&format!("image {host}/{name}")), "{text}");
                assert!(text.contains(&format!("registry {host}")), "{text}");
                assert!(text.contains(code), "{text}");
            }
            other => panic!("expected NotFound for {name}, got {other:?}"),
        }
        assert_eq!(client.head_manifest(&r).await.unwrap(), None);
    }
    let missing = Digest::of(b"never pushed");
    let by_digest = reference(&host, &format!("team/app@{missing}"));
    assert!(matches!(
        client.get_manifest(&by_digest).await,
        Err(RegistryError::NotFound { .. })
    ));

    let r = reference(&host, "team/app:v1");
    let mut out = Vec::new();
    match client.get_blob(&r, &missing, None, &mut out, &|_| {}).await {
        Err(e @ RegistryError::NotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("blob {missing}")), "{text}");
            assert!(
                text.contains(&host) && text.contains("BLOB_UNKNOWN"),
                "{text}"
            );
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(client.head_blob(&r, &missing).await.unwrap(), None);
    let layer = &image.images[0].layers[0];
    assert_eq!(
        client.head_blob(&r, &digest(&layer.digest)).await.unwrap(),
        Some(layer.bytes.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_unreachable_within_the_retry_budget() {
    // A reserved port: nothing listens there and no other test will.
    let closed = ports::reserve();
    let host = format!("127.0.0.1:{}", closed.port());
    for insecure in [vec![], vec![host.as_str()]] {
        let (config, retries) = observed(ClientConfig {
            max_attempts: 2,
            ..fast_config(&insecure)
        });
        let client = Client::new(config).unwrap();
        let r = reference(&host, "team/app:v1");
        match client.get_manifest(&r).await {
            Err(e @ RegistryError::Unreachable { .. }) => {
                let text = full(&e);
                assert!(text.contains(&format!("registry {host}")), "{text}");
                assert!(
                    text.contains(&format!("image {host}/team/app:v1")),
                    "{text}"
                );
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
        let seen = retries.seen();
        assert_eq!(seen.len(), 1, "one retry within a budget of 2: {seen:?}");
        assert_eq!((seen[0].failed, seen[0].max_attempts), (1, 2));
        assert!(seen[0].registry.contains(&host), "{seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_used_only_for_registries_marked_insecure() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_single(&registry, "team/app", 5);
    for host in [registry.host(), format!("localhost:{}", registry.port())] {
        let r = reference(&host, "team/app:v1");
        let strict = Client::new(ClientConfig {
            max_attempts: 2,
            ..fast_config(&[])
        })
        .unwrap();
        match strict.get_manifest(&r).await {
            Err(RegistryError::Unreachable { .. }) => {}
            other => panic!("{host} without insecure must not downgrade, got {other:?}"),
        }
        let relaxed = Client::new(fast_config(&[&host])).unwrap();
        let manifest = relaxed.get_manifest(&r).await.unwrap();
        assert_eq!(manifest.digest.as_str(), image.top_digest());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_serves_docker_hub_repositories() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_single(&registry, "team/app", 6);
    let mirror = registry.host();
    let mut config = fast_config(&[&mirror]);
    config.registries.insert(
        "docker.io".into(),
        RegistrySettings {
            insecure: false,
            mirror: Some(mirror.clone()),
        },
    );
    let client = Client::new(config).unwrap();
    let r = Reference::parse("team/app:v1").unwrap();
    assert_eq!(r.registry, "docker.io");
    let manifest = client.get_manifest(&r).await.unwrap();
    assert_eq!(manifest.digest.as_str(), image.top_digest());
    fetch_blob(&client, &r, &image.images[0].layers[0]).await;
    match client
        .get_manifest(&Reference::parse("team/app:gone").unwrap())
        .await
    {
        Err(e @ RegistryError::NotFound { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("docker.io (mirror {mirror})")),
                "{text}"
            );
            assert!(text.contains("image docker.io/team/app:gone"), "{text}");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_are_retried_and_retry_after_is_honoured() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_multi_arch(&registry, "team/app", 7);
    let proxy = fake::Proxy::start(&registry.url(), None).await;
    let host = proxy.host();
    let (config, retries) = observed(fast_config(&[&host]));
    let client = Client::new(config).unwrap();
    let r = reference(&host, "team/app:v1");

    // A 500 and a reset connection, then the manifest.
    proxy.fail("/manifests/v1", fake::Fault::Status(500));
    proxy.fail("/manifests/v1", fake::Fault::Reset);
    let index = client.get_manifest(&r).await.unwrap();
    assert_eq!(index.digest.as_str(), image.top_digest());
    assert_eq!(proxy.pending(), 0, "every fault was met");

    // 429 with Retry-After: 1, then a download cut half-way: resumed with Range.
    let layer = &image.images[0].layers[0];
    proxy.fail(&layer.digest, fake::Fault::TooMany("1"));
    proxy.fail(&layer.digest, fake::Fault::CutBody);
    let before = retries.seen().len();
    fetch_blob(&client, &r, layer).await;
    let waits: Vec<(u64, String)> = retries.seen()[before..]
        .iter()
        .map(|r| (r.wait_ms, r.reason.clone()))
        .collect();
    assert_eq!(waits.len(), 2, "the 429 and the cut body: {waits:?}");
    assert_eq!(
        waits[0].0, 1000,
        "Retry-After: 1 is a wait of one second: {waits:?}"
    );
    assert!(waits[0].1.contains("429"), "{waits:?}");
    assert_eq!(proxy.pending(), 0);
    let seen = proxy.seen();
    let resumed = seen
        .iter()
        .filter(|s| s.path.contains(&layer.digest))
        .filter_map(|s| s.range.clone())
        .collect::<Vec<_>>();
    assert_eq!(resumed.len(), 1, "{seen:#?}");
    assert!(
        resumed[0].starts_with("bytes=") && resumed[0] != "bytes=0-",
        "{resumed:?}"
    );

    // A registry that keeps failing: TooManyAttempts naming registry and image.
    for _ in 0..4 {
        proxy.fail("/manifests/v1", fake::Fault::Status(503));
    }
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::TooManyAttempts { attempts: 4, .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&host) && text.contains("team/app:v1"),
                "{text}"
            );
            assert!(text.contains("503"), "{text}");
        }
        other => panic!("expected TooManyAttempts, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_or_missized_content_is_refused() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_multi_arch(&registry, "team/app", 8);
    let proxy = fake::Proxy::start(&registry.url(), None).await;
    let host = proxy.host();
    let client = Client::new(fast_config(&[&host])).unwrap();
    let r = reference(&host, "team/app:v1");

    let layer = &image.images[1].layers[1];
    proxy.fail(&layer.digest, fake::Fault::Corrupt);
    let mut out = Vec::new();
    let size = layer.bytes.len() as u64;
    match client
        .get_blob(&r, &digest(&layer.digest), Some(size), &mut out, &|_| {})
        .await
    {
        Err(e @ RegistryError::DigestMismatch { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&format!("blob {}", layer.digest)), "{text}");
            assert!(text.contains(&host), "{text}");
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }

    // A platform manifest by digest, corrupted.
    let platform = &image.images[0].manifest;
    proxy.fail(&platform.digest, fake::Fault::Corrupt);
    let by_digest = reference(&host, &format!("team/app@{}", platform.digest));
    assert!(matches!(
        client.get_manifest(&by_digest).await,
        Err(RegistryError::DigestMismatch { .. })
    ));
    // By tag, the corrupted bytes disagree with the Docker-Content-Digest header.
    proxy.fail("/manifests/v1", fake::Fault::Corrupt);
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::DigestMismatch { .. }) => {
            assert!(e.to_string().contains("Docker-Content-Digest"), "{e}");
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    assert_eq!(proxy.pending(), 0);

    // The size the caller expects differs from what the registry serves.
    let mut out = Vec::new();
    match client
        .get_blob(
            &r,
            &digest(&layer.digest),
            Some(size + 1),
            &mut out,
            &|_| {},
        )
        .await
    {
        Err(RegistryError::SizeMismatch {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (size + 1, size)),
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_cached_and_kept_off_redirect_hosts() {
    let registry = TestRegistry::plain();
    let (_work, image) = pushed_multi_arch(&registry, "team/app", 9);
    let cdn = fake::Proxy::start(&registry.url(), None).await;
    let gate = fake::Proxy::start(
        &registry.url(),
        Some(fake::Gate {
            user: "bob".into(),
            password: "pw".into(),
            token: "tok-123".into(),
        }),
    )
    .await;
    let host = gate.host();
    let client = Client::new(ClientConfig {
        credentials: Credentials::none().with(&host, "bob", "pw"),
        ..fast_config(&[&host])
    })
    .unwrap();
    let r = reference(&host, "team/app:v1");
    let layer = &image.images[0].layers[0];
    gate.fail(&layer.digest, fake::Fault::Redirect(cdn.url()));

    let index = client.get_manifest(&r).await.unwrap();
    assert_eq!(index.digest.as_str(), image.top_digest());
    for platform in &image.images {
        let by_digest = reference(&host, &format!("team/app@{}", platform.manifest.digest));
        client.get_manifest(&by_digest).await.unwrap();
    }
    fetch_blob(&client, &r, layer).await;
    assert_eq!(gate.pending(), 0, "the blob was redirected");

    let tokens: Vec<_> = gate
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/token"))
        .collect();
    assert_eq!(tokens.len(), 1, "one token for the repository: {tokens:#?}");
    assert!(
        tokens[0]
            .path
            .contains("scope=repository%3Ateam%2Fapp%3Apull"),
        "{tokens:?}"
    );
    assert!(
        tokens[0].path.contains("service=fake-registry"),
        "{tokens:?}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("bob:pw");
    assert_eq!(
        tokens[0].authorization.as_deref(),
        Some(format!("Basic {basic}").as_str())
    );
    let redirected: Vec<_> = gate
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && s.path.contains(&layer.digest) && s.status == 307)
        .collect();
    assert_eq!(redirected.len(), 1);
    assert_eq!(
        redirected[0].authorization.as_deref(),
        Some("Bearer tok-123")
    );
    let at_cdn: Vec<_> = cdn.seen();
    assert_eq!(at_cdn.len(), 1, "{at_cdn:#?}");
    assert!(at_cdn[0].path.contains(&layer.digest));
    assert_eq!(
        at_cdn[0].authorization, None,
        "credentials leaked to another host"
    );

    // The token service refuses a wrong password: Unauthorized naming registry and user.
    let client = Client::new(ClientConfig {
        credentials: Credentials::none().with(&host, "bob", "nope"),
        ..fast_config(&[&host])
    })
    .unwrap();
    match client.get_manifest(&r).await {
        Err(e @ RegistryError::Unauthorized { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&host) && text.contains("team/app") && text.contains("bob"),
                "{text}"
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

/// A streamed, chunked upload cut after the registry took its second chunk starts again from
/// scratch; the registry ends with exactly the bytes, and progress counts each byte once.
#[test]
fn a_restarted_streamed_upload_lands_whole_and_reports_each_byte_once() {
    use test_support::push_proxy::{PushFault, PushProxy};
    let registry = TestRegistry::plain();
    let proxy = PushProxy::start(&registry.url());
    proxy.fail("PATCH", "/blobs/uploads/", PushFault::Pass);
    proxy.fail("PATCH", "/blobs/uploads/", PushFault::ResetAfter);
    let data: Vec<u8> = (0..3_000_000u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let size = data.len() as u64;
    let blob = digest(&images::sha256(&data));
    let client = Client::new(fast_config(&[&proxy.host(), &registry.host()])).unwrap();
    let target = reference(&proxy.host(), "team/streamed");
    let reported = AtomicU64::new(0);
    // The proxy runs its own runtime, which may not be dropped inside another.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // 1.2 MB chunks: two streamed PATCHes (above the 1 MiB kept in memory) and a buffered one.
    runtime
        .block_on(client.upload_blob(
            &target,
            &blob,
            size,
            1_200_000,
            &bytes::Bytes::from(data.clone()),
            &|n| {
                reported.fetch_add(n, Ordering::Relaxed);
            },
        ))
        .unwrap();
    assert_eq!(proxy.pending(), 0, "the reset was met: {:?}", proxy.seen());
    let patches = proxy.seen().iter().filter(|(m, _, _)| m == "PATCH").count();
    assert!(patches > 3, "the upload started again: {:?}", proxy.seen());
    assert_eq!(reported.load(Ordering::Relaxed), size);
    let mut stored = Vec::new();
    let got = runtime
        .block_on(client.get_blob(
            &reference(&registry.host(), "team/streamed"),
            &blob,
            Some(size),
            &mut stored,
            &|_| {},
        ))
        .unwrap();
    assert_eq!(got, size);
    assert!(stored == data, "the registry holds other bytes");
}
