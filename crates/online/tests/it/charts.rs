//! The chart pipeline against the official helm binary and Debian's `docker-registry`:
//! reproducible packages that helm lints, renders and describes; upstream charts resolved
//! from a static repository made by `helm repo index` and from an OCI registry filled by
//! `helm push`; our OCI artifact and our static repository pulled by helm with the digest we
//! computed; tampered digests refused.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci::media::OCI_MANIFEST;
use oci::{Digest, Reference};
use online::chart::{artifact, package, repo, ChartArtifact, PackagedChart, Upstream};
use online::spec::lock::{LockedChart, LockedSource};
use online::spec::ChartsFile;
use online::store::BlobCache;
use registry::{Client, ClientConfig, RegistrySettings};
use test_support::registry::TestRegistry;
use test_support::Run;

/// The fixture chart: values, helpers, a vendored subchart, a pax-length path, .helmignore.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts/demo")
}

/// 2027-01-15T08:00:00Z.
const TIME: u64 = 1_800_000_000;

/// Fails with the install hint when the official helm binary is missing.
fn require_helm() {
    let found = Command::new("helm").arg("version").output().is_ok();
    assert!(
        found,
        "`helm` is not on PATH: install the official binary with scripts/install-helm.sh \
         (scripts/setup.sh runs it)"
    );
}

/// Runs helm with its config, cache and data in `home`.
fn helm(args: &[&str], home: &Path) -> Run {
    require_helm();
    let output = Command::new("helm")
        .args(args)
        .current_dir(home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run helm: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Copies directory `from` to `to` recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the fixture with files its .helmignore leaves out, at `dir/demo`.
fn working_copy(dir: &Path) -> PathBuf {
    let chart = dir.join("demo");
    copy_dir(&fixture(), &chart);
    for (path, text) in [
        ("values.yaml.bak", "old"),
        ("scratch/notes.txt", "notes"),
        ("TODO.md", "todo"),
        ("templates/.editor-swap", "swap"),
    ] {
        let path = chart.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    chart
}

fn sha256_file(path: &Path) -> Digest {
    Digest::of(&std::fs::read(path).unwrap())
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn packages_are_reproducible_and_helm_accepts_them() {
    let dir = tmp();
    let first_copy = working_copy(&dir.path().join("a"));
    let out_a = dir.path().join("out-a");
    std::fs::create_dir_all(&out_a).unwrap();
    let first = package(&first_copy, &out_a, TIME).unwrap();

    // Another copy elsewhere, with other mtimes: the same bytes.
    let second_copy = working_copy(&dir.path().join("b"));
    test_support::sh(
        "find . -exec touch -d '2001-02-03 04:05:06' {} +",
        &second_copy,
    )
    .ok();
    let out_b = dir.path().join("out-b");
    std::fs::create_dir_all(&out_b).unwrap();
    let second = package(&second_copy, &out_b, TIME).unwrap();

    assert_eq!(first.path, out_a.join("demo-0.3.1.tgz"));
    let bytes = std::fs::read(&first.path).unwrap();
    assert_eq!(bytes, std::fs::read(&second.path).unwrap());
    assert_eq!(first.digest, second.digest);
    assert_eq!(first.digest, Digest::of(&bytes));
    assert_eq!(first.size, bytes.len() as u64);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&first.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(
        (
            first.metadata.name.as_str(),
            first.metadata.version.as_str()
        ),
        ("demo", "0.3.1")
    );

    // A fixed gzip header: deflate, no flags, no mtime, OS byte 255.
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(bytes[9], 255);

    // Sorted members, files only, under demo/, 0644 root:root at TIME; ignored files absent.
    let listing = test_support::run(
        "tar",
        &["tvzf", test_support::p(&first.path), "--utc", "--full-time"],
        dir.path(),
    )
    .ok();
    let names: Vec<&str> = listing
        .stdout
        .lines()
        .map(|l| l.split_whitespace().last().unwrap())
        .collect();
    let long = "demo/templates/a-template-whose-file-name-is-long-enough-that-the-member-path-needs-a-pax-record.yaml";
    assert_eq!(
        names,
        [
            "demo/.helmignore",
            "demo/Chart.yaml",
            "demo/charts/sub/Chart.yaml",
            "demo/charts/sub/templates/configmap.yaml",
            "demo/charts/sub/values.yaml",
            "demo/templates/NOTES.txt",
            "demo/templates/_helpers.tpl",
            long,
            "demo/templates/configmap.yaml",
            "demo/values.yaml",
        ]
    );
    for line in listing.stdout.lines() {
        assert!(line.starts_with("-rw-r--r-- 0/0 "), "{line}");
        assert!(line.contains(" 2027-01-15 08:00:00 "), "{line}");
    }

    let home = dir.path();
    let chart = test_support::p(&first.path);
    helm(&["lint", chart], home).ok();
    let rendered = helm(&["template", "rel", chart], home).ok().stdout;
    assert!(rendered.contains("name: rel-demo"), "{rendered}");
    assert!(rendered.contains("greeting: \"hello\""), "{rendered}");
    assert!(rendered.contains("name: rel-long-path"), "{rendered}");
    assert!(
        rendered.contains("colour: \"blue\""),
        "subchart values: {rendered}"
    );
    let shown = helm(&["show", "chart", chart], home).ok().stdout;
    assert!(shown.contains("name: demo"), "{shown}");
    assert!(shown.contains("version: 0.3.1"), "{shown}");

    // Our description of the file agrees with what we packaged.
    let opened = PackagedChart::open(&first.path).unwrap();
    assert_eq!(opened, first);
}

#[test]
fn a_missing_dependency_or_bad_helmignore_is_refused_naming_the_file() {
    let dir = tmp();
    let chart = working_copy(dir.path());
    std::fs::remove_dir_all(chart.join("charts")).unwrap();
    let error = package(&chart, dir.path(), TIME).unwrap_err().to_string();
    assert!(
        error.contains("dependency sub of chart demo is missing from charts/"),
        "{error}"
    );

    let chart = working_copy(&dir.path().join("again"));
    std::fs::write(chart.join(".helmignore"), "# fine\nfoo/**/bar\n").unwrap();
    let error = package(&chart, dir.path(), TIME).unwrap_err().to_string();
    assert!(
        error.ends_with(
            ".helmignore:2: pattern \"foo/**/bar\": double-star (**) syntax is not supported"
        ),
        "{error}"
    );
}

/// A static file server for a directory on a free loopback port; stops with the runtime.
async fn serve_dir(root: PathBuf) -> SocketAddr {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Request, Response, StatusCode};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let root = root.clone();
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let path = root.join(request.uri().path().trim_start_matches('/'));
                    async move {
                        let response = match std::fs::read(&path) {
                            Ok(body) if !request.uri().path().contains("..") => {
                                Response::new(Full::new(Bytes::from(body)))
                            }
                            _ => {
                                let mut response =
                                    Response::new(Full::new(Bytes::from_static(b"not found")));
                                *response.status_mut() = StatusCode::NOT_FOUND;
                                response
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    addr
}

/// An upstream repository made by helm: the fixture packaged by `helm package` at 1.0.0 and
/// 1.1.0, indexed by `helm repo index`.
fn helm_repository(dir: &Path) -> PathBuf {
    let repo_dir = dir.join("upstream-repo");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let chart = working_copy(&dir.join("src"));
    for version in ["1.0.0", "1.1.0"] {
        helm(
            &[
                "package",
                test_support::p(&chart),
                "--version",
                version,
                "-d",
                test_support::p(&repo_dir),
            ],
            dir,
        )
        .ok();
    }
    helm(&["repo", "index", test_support::p(&repo_dir)], dir).ok();
    repo_dir
}

fn charts_toml(dir: &Path, body: &str) -> ChartsFile {
    let path = dir.join("charts.toml");
    std::fs::write(&path, body).unwrap();
    ChartsFile::load(&path).unwrap()
}

/// A registry client that reaches `insecure` hosts over plain HTTP.
fn registry_client(insecure: &[&str]) -> Client {
    let registries: BTreeMap<String, RegistrySettings> = insecure
        .iter()
        .map(|host| {
            let settings = RegistrySettings {
                insecure: true,
                mirror: None,
            };
            (host.to_string(), settings)
        })
        .collect();
    Client::new(ClientConfig {
        registries,
        max_attempts: 2,
        ..ClientConfig::default()
    })
    .unwrap()
}

fn upstream(cache: &Path, insecure: &[&str]) -> Upstream {
    let registry = registry_client(insecure);
    Upstream::new(
        reqwest::Client::new(),
        registry,
        BlobCache::open(cache).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_chart_resolves_to_the_highest_version_in_range_and_its_digest() {
    let dir = tmp();
    let repo_dir = helm_repository(dir.path());
    let addr = serve_dir(repo_dir.clone()).await;
    let url = format!("http://{addr}");
    let file = charts_toml(
        dir.path(),
        &format!("[[chart]]\nname = \"demo\"\nrepo = \"{url}/\"\nversion = \"~1.0\"\n"),
    );
    let cache = dir.path().join("cache");
    let fetcher = upstream(&cache, &[]);

    let locked = fetcher.resolve(&file.charts[0]).await.unwrap();
    let tgz = repo_dir.join("demo-1.0.0.tgz");
    assert_eq!(locked.name, "demo");
    assert_eq!(locked.version, "1.0.0");
    assert_eq!(locked.digest, sha256_file(&tgz));
    assert_eq!(locked.size, std::fs::metadata(&tgz).unwrap().len());
    assert_eq!(
        locked.source,
        LockedSource::Repo {
            repo: url.clone(),
            url: format!("{url}/demo-1.0.0.tgz")
        }
    );
    let cached = BlobCache::open(&cache).unwrap().file_of(&locked.digest);
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        std::fs::read(&tgz).unwrap()
    );

    let caret = charts_toml(
        dir.path(),
        &format!("[[chart]]\nname = \"demo\"\nrepo = \"{url}\"\nversion = \"^1\"\n"),
    );
    let newest = fetcher.resolve(&caret.charts[0]).await.unwrap();
    assert_eq!(newest.version, "1.1.0");
    assert_eq!(newest.digest, sha256_file(&repo_dir.join("demo-1.1.0.tgz")));
    assert!(newest.satisfies(&caret.charts[0]) && !newest.satisfies(&file.charts[0]));

    let none = charts_toml(
        dir.path(),
        &format!("[[chart]]\nname = \"demo\"\nrepo = \"{url}\"\nversion = \"~2\"\n"),
    );
    let error = fetcher
        .resolve(&none.charts[0])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("chart demo: no version in") && error.contains("available: 1.1.0, 1.0.0"),
        "{error}"
    );

    // The lock entry round-trips and a second fetch needs no network.
    let table = locked.to_table();
    let here = online::spec::error::Location::line(Path::new("manifests.lock"), 1);
    let back = LockedChart::from_table(&table, &here).unwrap();
    std::fs::remove_dir_all(&repo_dir).unwrap();
    assert_eq!(fetcher.fetch(&back).await.unwrap(), cached);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_digests_are_refused_naming_the_chart() {
    let dir = tmp();
    let repo_dir = helm_repository(dir.path());
    let index = repo_dir.join("index.yaml");
    let good = sha256_file(&repo_dir.join("demo-1.1.0.tgz"));
    let forged = Digest::of(b"something else");
    let text = std::fs::read_to_string(&index).unwrap();
    assert!(text.contains(good.hex()));
    std::fs::write(&index, text.replace(good.hex(), forged.hex())).unwrap();
    let addr = serve_dir(repo_dir.clone()).await;
    let file = charts_toml(
        dir.path(),
        &format!("[[chart]]\nname = \"demo\"\nrepo = \"http://{addr}\"\nversion = \"1.1.0\"\n"),
    );
    let cache = dir.path().join("cache");
    let fetcher = upstream(&cache, &[]);
    let error = fetcher
        .resolve(&file.charts[0])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!("chart demo version 1.1.0 from http://{addr}/demo-1.1.0.tgz: expected digest {forged}, got {good}")
    );
    assert!(!BlobCache::open(&cache).unwrap().file_of(&forged).exists());

    // An index entry pointing at another version's archive (with that archive's digest) is
    // refused too: the archive must hold the chart and version the index names.
    let old = sha256_file(&repo_dir.join("demo-1.0.0.tgz"));
    let swapped = text
        .replace(good.hex(), old.hex())
        .replace("- demo-1.1.0.tgz", "- demo-1.0.0.tgz");
    std::fs::write(&index, swapped).unwrap();
    let error = fetcher
        .resolve(&file.charts[0])
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        format!(
            "chart demo: index http://{addr}/index.yaml: version 1.1.0 at \
             http://{addr}/demo-1.0.0.tgz: the archive holds chart demo version 1.0.0"
        )
    );

    // A lock entry whose digest the download does not have is refused the same way.
    let locked = LockedChart {
        name: "demo".into(),
        version: "1.0.0".into(),
        source: LockedSource::Repo {
            repo: format!("http://{addr}"),
            url: format!("http://{addr}/demo-1.0.0.tgz"),
        },
        digest: forged.clone(),
        size: 10,
    };
    let error = fetcher.fetch(&locked).await.unwrap_err().to_string();
    let actual = sha256_file(&repo_dir.join("demo-1.0.0.tgz"));
    assert!(
        error.starts_with("chart demo version 1.0.0 from "),
        "{error}"
    );
    assert!(
        error.ends_with(&format!("expected digest {forged}, got {actual}")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_pushed_by_helm_resolves_by_oci_reference() {
    let registry = TestRegistry::plain();
    let host = registry.host();
    let dir = tmp();
    let chart = working_copy(dir.path());
    helm(
        &[
            "package",
            test_support::p(&chart),
            "-d",
            test_support::p(dir.path()),
        ],
        dir.path(),
    )
    .ok();
    let tgz = dir.path().join("demo-0.3.1.tgz");
    let pushed = helm(
        &[
            "push",
            test_support::p(&tgz),
            &format!("oci://{host}/charts"),
            "--plain-http",
        ],
        dir.path(),
    )
    .ok();
    let output = format!("{}{}", pushed.stdout, pushed.stderr);
    let manifest_digest = output
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no digest in helm push output: {output}"));

    let file = charts_toml(
        dir.path(),
        &format!(
            "[[chart]]\nname = \"demo\"\noci = \"oci://{host}/charts/demo\"\nversion = \"0.3.1\"\n"
        ),
    );
    let cache = dir.path().join("cache");
    let fetcher = upstream(&cache, &[host.as_str()]);
    let locked = fetcher.resolve(&file.charts[0]).await.unwrap();
    assert_eq!(locked.digest, sha256_file(&tgz));
    assert_eq!(locked.size, std::fs::metadata(&tgz).unwrap().len());
    assert_eq!(
        locked.source,
        LockedSource::Oci {
            repository: format!("oci://{host}/charts/demo"),
            manifest_digest: Digest::parse(manifest_digest.trim()).unwrap(),
        }
    );
    assert!(locked.satisfies(&file.charts[0]));

    // What helm pushed is what ChartArtifact writes for the same .tgz, but for the manifest's
    // mediaType field (helm 4.1 leaves it out) and the creation time.
    let client = registry_client(&[host.as_str()]);
    let by_tag = Reference::parse(&format!("{host}/charts/demo:0.3.1")).unwrap();
    let helms = client.get_manifest(&by_tag).await.unwrap();
    let ours = ChartArtifact::new(&PackagedChart::open(&tgz).unwrap(), TIME).unwrap();
    let mut helms_json: serde_json::Value = serde_json::from_slice(&helms.bytes).unwrap();
    let mut ours_json: serde_json::Value = serde_json::from_slice(&ours.manifest).unwrap();
    assert_eq!(ours_json["mediaType"], OCI_MANIFEST);
    ours_json.as_object_mut().unwrap().remove("mediaType");
    for json in [&mut helms_json, &mut ours_json] {
        let annotations = json["annotations"].as_object_mut().unwrap();
        assert!(annotations
            .remove("org.opencontainers.image.created")
            .is_some());
    }
    assert_eq!(helms_json, ours_json);
    let mut config = Vec::new();
    client
        .get_blob(&by_tag, &ours.config_digest, None, &mut config, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        config, ours.config,
        "helm's config blob is byte-identical to ours"
    );

    // From a fresh cache, the locked chart is fetched again by manifest digest.
    let again = upstream(&dir.path().join("cache2"), &[host.as_str()]);
    let path = again.fetch(&locked).await.unwrap();
    assert_eq!(sha256_file(&path), locked.digest);

    // A version that is not there, and a wrong lock, are refused naming the chart.
    let missing = charts_toml(
        dir.path(),
        &format!(
            "[[chart]]\nname = \"demo\"\noci = \"oci://{host}/charts/demo\"\nversion = \"9.9.9\"\n"
        ),
    );
    let error = fetcher
        .resolve(&missing.charts[0])
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("chart demo"), "{error}");
    let forged = LockedChart {
        digest: Digest::of(b"x"),
        ..locked.clone()
    };
    let error = upstream(&dir.path().join("cache3"), &[host.as_str()])
        .fetch(&forged)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("chart demo version 0.3.1 from oci://"),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "expected digest {}, got {}",
            forged.digest, locked.digest
        )),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_oci_artifact_is_pulled_by_helm_with_our_digest() {
    let registry = TestRegistry::plain();
    let host = registry.host();
    let dir = tmp();
    let chart = package(&working_copy(dir.path()), dir.path(), TIME).unwrap();
    let artifact = ChartArtifact::new(&chart, TIME).unwrap();
    assert_eq!(artifact.ref_name, "charts/demo:0.3.1");
    assert_eq!(artifact, ChartArtifact::new(&chart, TIME).unwrap());
    let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], artifact::CONFIG_MEDIA_TYPE);
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        artifact::CONTENT_MEDIA_TYPE
    );
    assert_eq!(manifest["layers"][0]["digest"], chart.digest.as_str());
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2027-01-15T08:00:00Z"
    );
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.authors"],
        "Release Engineering (release@example.org)"
    );

    let client = registry_client(&[host.as_str()]);
    let target = Reference::parse(&format!("{host}/{}", artifact.ref_name)).unwrap();
    let layer = std::fs::read(&artifact.layer).unwrap();
    for (digest, bytes) in [
        (&artifact.config_digest, artifact.config.clone()),
        (&artifact.layer_digest, layer),
    ] {
        let size = bytes.len() as u64;
        client
            .upload_blob(
                &target,
                digest,
                size,
                registry::CHUNK_SIZE,
                &bytes::Bytes::from(bytes),
                &|_| {},
            )
            .await
            .unwrap();
    }
    client
        .put_manifest(&target, OCI_MANIFEST, artifact.manifest.clone())
        .await
        .unwrap();

    let home = dir.path().join("helm");
    std::fs::create_dir_all(&home).unwrap();
    let pulled = home.join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm(
        &[
            "pull",
            &format!("oci://{host}/charts/demo"),
            "--version",
            "0.3.1",
            "--plain-http",
            "-d",
            test_support::p(&pulled),
        ],
        &home,
    )
    .ok();
    assert_eq!(sha256_file(&pulled.join("demo-0.3.1.tgz")), chart.digest);
    let shown = helm(
        &[
            "show",
            "chart",
            &format!("oci://{host}/charts/demo"),
            "--version",
            "0.3.1",
            "--plain-http",
        ],
        &home,
    )
    .ok();
    assert!(
        shown
            .stdout
            .contains("description: Demo chart for the bundle's chart tests <&>"),
        "{}",
        shown.stdout
    );

    // The registry serves our manifest, and our own resolver reads it back as a helm chart.
    let file = charts_toml(
        dir.path(),
        &format!(
            "[[chart]]\nname = \"demo\"\noci = \"oci://{host}/charts/demo\"\nversion = \"0.3.1\"\n"
        ),
    );
    let locked = upstream(&dir.path().join("cache"), &[host.as_str()])
        .resolve(&file.charts[0])
        .await
        .unwrap();
    assert_eq!(locked.digest, chart.digest);
    assert_eq!(
        locked.source,
        LockedSource::Oci {
            repository: format!("oci://{host}/charts/demo"),
            manifest_digest: artifact.manifest_digest.clone()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_static_repository_serves_helm_repo_add_and_pull() {
    let dir = tmp();
    let site = dir.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let demo = package(&working_copy(&dir.path().join("src")), &site, TIME).unwrap();
    let sub = package(&fixture().join("charts/sub"), &site, TIME).unwrap();
    let index = repo::index_yaml(&[sub.clone(), demo.clone()], TIME).unwrap();
    assert_eq!(
        index,
        repo::index_yaml(&[demo.clone(), sub.clone()], TIME).unwrap()
    );
    std::fs::write(site.join(repo::INDEX_FILE), &index).unwrap();
    let text = String::from_utf8(index).unwrap();
    assert!(
        text.contains(&format!("digest: \"{}\"", demo.digest.hex())),
        "{text}"
    );
    assert!(text.contains("created: \"2027-01-15T08:00:00Z\""), "{text}");

    let addr = serve_dir(site.clone()).await;
    let url = format!("http://{addr}/");
    let home = dir.path().join("helm");
    std::fs::create_dir_all(&home).unwrap();
    helm(&["repo", "add", "ours", &url], &home).ok();
    let search = helm(&["search", "repo", "ours/demo", "--versions"], &home)
        .ok()
        .stdout;
    assert!(
        search.contains("ours/demo") && search.contains("0.3.1"),
        "{search}"
    );
    let pulled = home.join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm(
        &[
            "pull",
            "--repo",
            &url,
            "demo",
            "--version",
            "0.3.1",
            "-d",
            test_support::p(&pulled),
        ],
        &home,
    )
    .ok();
    assert_eq!(
        sha256_file(&pulled.join(repo::file_name("demo", "0.3.1"))),
        demo.digest
    );
    helm(
        &[
            "pull",
            "ours/sub",
            "--version",
            "0.1.0",
            "-d",
            test_support::p(&pulled),
        ],
        &home,
    )
    .ok();
    assert_eq!(sha256_file(&pulled.join("sub-0.1.0.tgz")), sub.digest);

    // Our resolver reads our own index too.
    let file = charts_toml(
        dir.path(),
        &format!("[[chart]]\nname = \"demo\"\nrepo = \"{url}\"\nversion = \"0.3\"\n"),
    );
    let locked = upstream(&dir.path().join("cache"), &[])
        .resolve(&file.charts[0])
        .await
        .unwrap();
    assert_eq!(
        (locked.version.as_str(), &locked.digest),
        ("0.3.1", &demo.digest)
    );
}

#[test]
fn our_artifact_in_an_oci_layout_is_copied_by_skopeo_and_pulled_by_helm() {
    test_support::require("skopeo", "skopeo");
    let registry = TestRegistry::plain();
    let host = registry.host();
    let dir = tmp();
    let chart = package(&working_copy(dir.path()), dir.path(), TIME).unwrap();
    let artifact = ChartArtifact::new(&chart, TIME).unwrap();

    // The layout as the bundle carries it: blobs by digest, index.json naming the chart.
    let layout = dir.path().join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(
        blobs.join(artifact.manifest_digest.hex()),
        &artifact.manifest,
    )
    .unwrap();
    std::fs::write(blobs.join(artifact.config_digest.hex()), &artifact.config).unwrap();
    std::fs::copy(&artifact.layer, blobs.join(artifact.layer_digest.hex())).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": artifact.manifest_digest.as_str(),
            "size": artifact.manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": artifact.ref_name},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    let source = format!("oci:{}:{}", test_support::p(&layout), artifact.ref_name);
    let target = format!("docker://{host}/{}", artifact.ref_name);
    test_support::run(
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &source,
            &target,
        ],
        dir.path(),
    )
    .ok();

    let home = dir.path().join("helm");
    let pulled = home.join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    let run = helm(
        &[
            "pull",
            &format!("oci://{host}/{}", artifact::repository("demo")),
            "--version",
            "0.3.1",
            "--plain-http",
            "-d",
            test_support::p(&pulled),
        ],
        &home,
    )
    .ok();
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(
        output.contains(&format!("Digest: {}", artifact.manifest_digest)),
        "helm pulled another manifest: {output}"
    );
    assert_eq!(sha256_file(&pulled.join("demo-0.3.1.tgz")), chart.digest);
}
