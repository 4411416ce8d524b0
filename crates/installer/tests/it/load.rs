//! `installer load` end to end: a signed bundle built by the real `bundle` binary from images
//! in a source `docker-registry`, pushed by the real `installer` binary into an empty second
//! registry (plain, or htpasswd over TLS), then read back with `skopeo`. Also: idempotence,
//! `--prefix`, unsigned bundles, and SIGKILL at several points followed by a rerun.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use online::spec::{Lock, Root};
use serde_json::Value;
use test_support::images;
use test_support::registry::{RegistryOptions, TestRegistry};
use test_support::{require, Run};

/// The tools these tests drive; a missing one fails the test with a hint.
fn tools() {
    require("docker-registry", "docker-registry");
    require("skopeo", "skopeo");
}

/// The bundles every test loads, built once per test process.
struct Fixture {
    dir: tempfile::TempDir,
    /// The source registry's `host:port`, as the bundle's references name it.
    source_host: String,
    lock: Lock,
    public: PathBuf,
}

impl Fixture {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn signed(&self) -> String {
        test_support::p(&self.path("signed.tar.zst")).to_string()
    }
    fn unsigned(&self) -> String {
        test_support::p(&self.path("unsigned.tar.zst")).to_string()
    }
    fn key(&self) -> String {
        test_support::p(&self.public).to_string()
    }
}

fn bundle_cmd(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(test_support::bin("bundle"))
        .args(args)
        .current_dir(dir)
        .env("BUNDLE_KEY_PASSPHRASE", test_support::PASSPHRASE)
        .env("HOME", dir.join("home"))
        .env("DOCKER_CONFIG", dir.join("home/.docker"))
        .env("CI", "1")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("BUNDLE_CACHE_DIR")
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run bundle");
    Run::from(out)
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        tools();
        // A static is never dropped: the directory goes where `cargo clean` removes it.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        let source = TestRegistry::plain();
        let host = source.host();
        let multi = images::multi_arch(&dir.path().join("layouts/41"), "v1", 41);
        images::push(&multi, &source, "team/multi");
        // The same image under a second name: its blobs are mounted, not uploaded again.
        images::push(&multi, &source, "team/copy");
        let amd = images::multi_arch(&dir.path().join("layouts/42"), "v1", 42);
        images::push(&amd, &source, "team/amd-only");
        let single = images::single(&dir.path().join("layouts/43"), "v1", 43, images::BIG_LAYER);
        images::push(&single, &source, "team/single");
        let toml = format!(
            "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
             [registries.\"{host}\"]\ninsecure = true\n\n\
             [[images]]\nref = \"{host}/team/multi:v1\"\n\n\
             [[images]]\nref = \"{host}/team/copy:v1\"\n\n\
             [[images]]\nref = \"{host}/team/amd-only:v1\"\nplatforms = [\"linux/amd64\"]\n\n\
             [[images]]\nref = \"{host}/team/single:v1\"\nplatforms = [\"linux/amd64\"]\n"
        );
        std::fs::write(dir.path().join("images.toml"), toml).unwrap();
        bundle_cmd(
            dir.path(),
            &[
                "lock",
                "--images",
                "images.toml",
                "--lock",
                "manifests.lock",
            ],
        )
        .ok();
        let (public, secret) = test_support::test_key("load");
        let build = |out: &str, extra: &[&str]| {
            let mut args = vec![
                "build",
                "--images",
                "images.toml",
                "--lock",
                "manifests.lock",
                "--locked",
                "-q",
                "-o",
                out,
                "--cache",
                "cache",
            ];
            args.extend(extra);
            bundle_cmd(dir.path(), &args).ok();
        };
        build("signed.tar.zst", &["--sign-key", test_support::p(&secret)]);
        build("unsigned.tar.zst", &[]);
        let lock = Lock::load(&dir.path().join("manifests.lock")).unwrap();
        Fixture {
            dir,
            source_host: host,
            lock,
            public,
        }
    })
}

/// `installer ARGS` with a home and docker config of its own (`docker_config` if given).
fn installer_command(args: &[&str], docker_config: Option<&Path>) -> Command {
    let home = fixture().path("home");
    let mut command = Command::new(test_support::bin("installer"));
    command
        .args(args)
        .env("HOME", &home)
        .env(
            "DOCKER_CONFIG",
            docker_config.map_or(home.join(".docker"), Path::to_path_buf),
        )
        .env("CI", "1")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .stdin(Stdio::null());
    command
}

/// A load of `bundle` into `host` made slow on purpose (two uploads at a time, 8 KiB chunks),
/// so a test can act on it half-way; `mode` is `-q` or `--json`.
fn slow_load(bundle: &str, key: &str, host: &str, mode: &str) -> Command {
    installer_command(
        &[
            mode,
            "load",
            bundle,
            "--key",
            key,
            "--registry",
            host,
            "--insecure-registry",
            "--jobs",
            "2",
            "--chunk-size",
            "8192",
        ],
        None,
    )
}

fn installer(args: &[&str]) -> Run {
    Run::from(
        installer_command(args, None)
            .output()
            .expect("run installer"),
    )
}

/// `installer [MODE] load BUNDLE --key K --registry HOST --insecure-registry [EXTRA]`, with
/// the fixture's key, however it ends.
fn load_run(mode: &[&str], bundle: &str, host: &str, extra: &[&str]) -> Run {
    let key = fixture().key();
    let mut args = mode.to_vec();
    args.extend([
        "load",
        bundle,
        "--key",
        &key,
        "--registry",
        host,
        "--insecure-registry",
    ]);
    args.extend(extra);
    installer(&args)
}

/// The arguments of `installer --json load BUNDLE --key KEY --registry HOST
/// --insecure-registry`.
fn json_load_args<'a>(bundle: &'a str, key: &'a str, host: &'a str) -> [&'a str; 8] {
    [
        "--json",
        "load",
        bundle,
        "--key",
        key,
        "--registry",
        host,
        "--insecure-registry",
    ]
}

/// `installer --json load` of the signed bundle into `host` (plain, insecure), however it ends.
fn load_json(host: &str, extra: &[&str]) -> Run {
    load_run(&["--json"], &fixture().signed(), host, extra)
}

/// The JSON summary `run` printed.
fn summary_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", run.stdout))
}

/// A successful `installer --json load` of the signed bundle into `target`: its summary.
fn load_plain(target: &TestRegistry, extra: &[&str]) -> Value {
    summary_of(&load_json(&target.host(), extra).ok())
}

/// The repository and tag of each locked image in the target, under `prefix`.
fn repo_of(f: &Fixture, reference: &str, prefix: &str) -> String {
    let rest = reference
        .strip_prefix(&format!("{}/", f.source_host))
        .unwrap();
    let repository = rest.split(':').next().unwrap();
    if prefix.is_empty() {
        repository.to_string()
    } else {
        format!("{prefix}/{repository}")
    }
}

/// Every locked image is in `target` under `prefix` with exactly the lock's digests: the tag
/// serves the root (or the filtered index), and every platform manifest is there by digest.
fn assert_digests(target: &TestRegistry, prefix: &str) {
    let f = fixture();
    assert_eq!(f.lock.images.len(), IMAGES);
    for image in &f.lock.images {
        let reference = image.reference.to_string();
        let repo = repo_of(f, &reference, prefix);
        let expected = image
            .filtered_index
            .as_ref()
            .map_or(image.root_digest(), |x| &x.digest);
        let raw = images::inspect_raw(target, &format!("{repo}:v1"));
        assert_eq!(
            images::sha256(&raw),
            expected.as_str(),
            "{reference} at {repo}:v1"
        );
        // The registry's own index is in the bundle (by digest) unless platforms were left
        // out, in which case the filtered index took its place under the tag.
        if let (Root::Index(root), None) = (&image.root, &image.filtered_index) {
            let by_digest = images::inspect_raw(target, &format!("{repo}@{}", root.digest));
            assert_eq!(images::sha256(&by_digest), root.digest.as_str());
        }
        if let Some(filtered) = &image.filtered_index {
            let by_digest = images::inspect_raw(target, &format!("{repo}@{}", filtered.digest));
            assert_eq!(images::sha256(&by_digest), filtered.digest.as_str());
        }
        for platform in &image.platforms {
            let raw = images::inspect_raw(target, &format!("{repo}@{}", platform.manifest.digest));
            assert_eq!(
                images::sha256(&raw),
                platform.manifest.digest.as_str(),
                "{reference} {:?}",
                platform.platform
            );
        }
    }
}

/// Reads the registry's storage: every tag's manifest, its children and all their blobs are
/// linked in the repository and present. Returns the tags found (`repo:tag`).
fn check_storage(target: &TestRegistry) -> BTreeSet<String> {
    let v2 = target.dir().join("storage/docker/registry/v2");
    let blob = |hex: &str| v2.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut tags = BTreeSet::new();
    let repos_dir = v2.join("repositories");
    let mut stack = vec![repos_dir.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == "_manifests" {
                let repo = dir
                    .strip_prefix(&repos_dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let Ok(tag_dirs) = std::fs::read_dir(path.join("tags")) else {
                    continue;
                };
                for tag in tag_dirs.flatten() {
                    let link = tag.path().join("current/link");
                    let Ok(digest) = std::fs::read_to_string(&link) else {
                        continue;
                    };
                    let name = format!("{repo}:{}", tag.file_name().to_string_lossy());
                    check_manifest(&v2, &dir, &blob, digest.trim(), &name, 0);
                    tags.insert(name);
                }
            } else if path.is_dir() && !entry.file_name().to_string_lossy().starts_with('_') {
                stack.push(path);
            }
        }
    }
    tags
}

fn check_manifest(
    v2: &Path,
    repo_dir: &Path,
    blob: &dyn Fn(&str) -> PathBuf,
    digest: &str,
    name: &str,
    depth: usize,
) {
    assert!(depth < 3, "{name}: nested too deep");
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert!(
        repo_dir
            .join(format!("_manifests/revisions/sha256/{hex}/link"))
            .is_file(),
        "{name}: manifest {digest} not linked in the repository"
    );
    let bytes = std::fs::read(blob(hex))
        .unwrap_or_else(|e| panic!("{name}: manifest {digest} missing ({e}) under {v2:?}"));
    assert_eq!(images::sha256(&bytes), digest, "{name}: manifest bytes");
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    if let Some(children) = value["manifests"].as_array() {
        for child in children {
            check_manifest(
                v2,
                repo_dir,
                blob,
                child["digest"].as_str().unwrap(),
                name,
                depth + 1,
            );
        }
        return;
    }
    let mut blobs = vec![value["config"].clone()];
    blobs.extend(value["layers"].as_array().unwrap().iter().cloned());
    for b in blobs {
        let d = b["digest"].as_str().unwrap();
        let h = d.strip_prefix("sha256:").unwrap();
        assert!(
            repo_dir.join(format!("_layers/sha256/{h}/link")).is_file(),
            "{name}: blob {d} not linked in the repository"
        );
        let data = blob(h);
        let meta =
            std::fs::metadata(&data).unwrap_or_else(|e| panic!("{name}: blob {d} missing ({e})"));
        assert_eq!(
            meta.len(),
            b["size"].as_u64().unwrap(),
            "{name}: blob {d} size"
        );
    }
}

/// Images in the bundles.
const IMAGES: usize = 4;

fn n(summary: &Value, key: &str) -> u64 {
    summary[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing: {summary}"))
}

/// Story 1: a signed bundle goes into an empty registry with exactly the lock's digests,
/// skopeo copies everything back out, a second load uploads nothing, and `--prefix` puts the
/// images under a path.
#[test]
fn load_pushes_exact_digests_is_idempotent_and_honours_prefix() {
    let f = fixture();
    let target = TestRegistry::plain();
    let first = load_plain(&target, &["--jobs", "3"]);
    assert_eq!(n(&first, "images"), IMAGES as u64);
    assert!(
        n(&first, "blobs_mounted") > 0,
        "team/copy is mounted: {first}"
    );
    assert!(n(&first, "blobs_pushed") > 0, "{first}");
    assert!(n(&first, "bytes_pushed") > 0, "{first}");
    assert_eq!(n(&first, "blobs_skipped"), 0, "{first}");
    assert!(first["seconds"].as_f64().is_some());
    assert_digests(&target, "");
    assert_eq!(check_storage(&target).len(), IMAGES);

    let out = tempfile::tempdir().unwrap();
    let copy = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all", "--quiet"])
        .args(["--src-tls-verify=false", "--src-no-creds"])
        .arg(format!("docker://{}/team/multi:v1", target.host()))
        .arg(format!("dir:{}", out.path().join("multi").display()))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&copy.stderr)
    );
    assert!(out.path().join("multi/manifest.json").is_file());

    let second = load_plain(&target, &[]);
    assert_eq!(n(&second, "blobs_pushed"), 0, "{second}");
    assert_eq!(n(&second, "bytes_pushed"), 0, "{second}");
    assert_eq!(n(&second, "manifests_pushed"), 0, "{second}");
    assert_eq!(
        n(&second, "blobs_skipped"),
        n(&first, "blobs_pushed") + n(&first, "blobs_mounted")
    );
    assert_eq!(
        n(&second, "bytes_skipped"),
        n(&first, "bytes_pushed") + n(&first, "bytes_skipped")
    );
    // Human output says so.
    let human = load_run(&[], &f.signed(), &target.host(), &[]).ok();
    assert!(
        human.stdout.contains("nothing uploaded"),
        "{}",
        human.stdout
    );

    // Chunked uploads (tiny chunks) under a prefix: the same digests under mirror/x.
    let prefixed = load_plain(&target, &["--prefix", "mirror/x", "--chunk-size", "65536"]);
    assert_eq!(n(&prefixed, "blobs_pushed"), n(&first, "blobs_pushed"));
    assert_digests(&target, "mirror/x");
    let tags = check_storage(&target);
    assert!(tags.contains("mirror/x/team/multi:v1"), "{tags:?}");
    assert_eq!(tags.len(), 2 * IMAGES);
}

/// Requests of one load through a recording proxy, counted by method and kind of path.
fn requests(seen: &[(String, String, u16)], method: &str, part: &str) -> u64 {
    seen.iter()
        .filter(|(m, path, _)| m == method && path.contains(part))
        .count() as u64
}

/// Issue 18: a first load into an empty registry asks nothing it cannot already know the answer
/// to (no manifest HEADs, no HEAD before a mount of a blob it just uploaded); a second load
/// asks and sends nothing.
#[test]
fn a_first_load_asks_only_what_it_cannot_know_and_a_second_sends_nothing() {
    use test_support::push_proxy::PushProxy;
    let target = TestRegistry::plain();
    let proxy = PushProxy::start(&target.url());
    let first = summary_of(&load_json(&proxy.host(), &[]).ok());
    let seen = proxy.seen();
    assert_eq!(requests(&seen, "HEAD", "/manifests/"), 0, "{seen:?}");
    assert_eq!(
        requests(&seen, "PUT", "/manifests/"),
        n(&first, "manifests_pushed"),
        "{seen:?}"
    );
    assert_eq!(n(&first, "tags_pushed"), IMAGES as u64, "{first}");
    // One HEAD per blob uploaded, none before the mounts into team/copy.
    assert!(n(&first, "blobs_mounted") > 0, "{first}");
    assert_eq!(
        requests(&seen, "HEAD", "/blobs/"),
        n(&first, "blobs_pushed"),
        "{seen:?}"
    );
    assert_eq!(
        requests(&seen, "POST", "mount="),
        n(&first, "blobs_mounted"),
        "{seen:?}"
    );
    assert_digests(&target, "");

    let before = seen.len();
    let second = summary_of(&load_json(&proxy.host(), &[]).ok());
    let again = &proxy.seen()[before..];
    for method in ["POST", "PUT", "PATCH"] {
        assert_eq!(requests(again, method, "/"), 0, "{again:?}");
    }
    assert_eq!(
        requests(again, "HEAD", "/manifests/"),
        n(&second, "manifests_skipped"),
        "{again:?}"
    );
    assert_eq!(n(&second, "manifests_pushed"), 0, "{second}");
    assert_eq!(
        n(&second, "manifests_skipped"),
        n(&first, "manifests_pushed"),
        "{second}"
    );
}

/// Story 2: an unsigned bundle is refused, and loaded only with `--insecure-skip-verify`,
/// which warns loudly.
#[test]
fn unsigned_bundle_is_refused_unless_verification_is_skipped() {
    let f = fixture();
    let target = TestRegistry::plain();
    let host = target.host();
    let refused = load_run(&[], &f.unsigned(), &host, &[]).failed();
    assert!(
        refused.stderr.to_lowercase().contains("sign"),
        "{}",
        refused.stderr
    );
    assert!(check_storage(&target).is_empty());
    let skipped = installer(&[
        "load",
        &f.unsigned(),
        "--insecure-skip-verify",
        "--registry",
        &host,
        "--insecure-registry",
    ])
    .ok();
    assert!(
        skipped.stderr.contains("SIGNATURES NOT CHECKED"),
        "{}",
        skipped.stderr
    );
    assert_digests(&target, "");
}

/// Story 3: a registry with htpasswd over TLS, credentials from a docker config.json and the
/// test CA from `--ca-file`.
#[test]
fn htpasswd_tls_registry_with_docker_config_and_ca_file() {
    let f = fixture();
    let target = TestRegistry::start(RegistryOptions {
        login: Some(("loader".into(), "s3cret-pass".into())),
        tls: true,
    });
    let config = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode("loader:s3cret-pass");
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({"auths": {target.host(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let ca = target.ca.as_ref().unwrap().ca_cert.clone();
    let (bundle, key, host) = (f.signed(), f.key(), target.host());
    // Without the CA: refused (TLS is verified).
    let no_ca = installer_command(
        &["load", &bundle, "--key", &key, "--registry", &host],
        Some(config.path()),
    )
    .output()
    .unwrap();
    assert!(!no_ca.status.success());
    let run = Run::from(
        installer_command(
            &[
                "--json",
                "load",
                &bundle,
                "--key",
                &key,
                "--registry",
                &host,
                "--ca-file",
                test_support::p(&ca),
            ],
            Some(config.path()),
        )
        .output()
        .unwrap(),
    )
    .ok();
    let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(n(&summary, "blobs_pushed") > 0);
    assert_digests(&target, "");
}

/// Blob files (layers, configs, manifests) in the registry's storage.
fn stored_blobs(target: &TestRegistry) -> usize {
    let root = target.dir().join("storage/docker/registry/v2/blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(root) else {
        return 0;
    };
    prefixes
        .flatten()
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .flat_map(|d| d.flatten())
        .filter(|b| b.path().join("data").is_file())
        .count()
}

/// When to kill a load: once the registry has seen its first request, or once its storage
/// holds this many blobs.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    FirstRequest,
    Blobs(usize),
}

/// Story 4: SIGKILL at five different moments (at the load's first request, while the member
/// check runs, and after 1, 5, 10 and 16 blobs reached the registry), each followed by a check that no tag points at anything
/// incomplete, and by a rerun that completes the registry with the right digests.
#[test]
fn killed_loads_never_leave_broken_tags_and_resume() {
    let f = fixture();
    let (bundle, key) = (f.signed(), f.key());
    let mut partial_runs = 0;
    let mut incomplete = 0;
    let points = [
        KillAt::FirstRequest,
        KillAt::Blobs(1),
        KillAt::Blobs(5),
        KillAt::Blobs(10),
        KillAt::Blobs(16),
    ];
    for (i, point) in points.into_iter().enumerate() {
        let target = TestRegistry::plain();
        let host = target.host();
        let mut child = slow_load(&bundle, &key, &host, "-q")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut finished = false;
        loop {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            let due = match point {
                KillAt::FirstRequest => target.log().contains(" /v2/"),
                KillAt::Blobs(k) => stored_blobs(&target) >= k,
            };
            if due || started.elapsed() > Duration::from_secs(20) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !finished {
            child.kill().unwrap(); // SIGKILL
            partial_runs += 1;
        }
        child.wait().unwrap();
        let tags = check_storage(&target);
        assert!(tags.len() <= IMAGES, "kill {i} ({point:?}): {tags:?}");
        eprintln!(
            "kill {i} ({point:?}): {} tag(s), {} blob(s) before the rerun",
            tags.len(),
            stored_blobs(&target)
        );
        if tags.len() < IMAGES {
            incomplete += 1;
        }
        let rerun = load_plain(&target, &[]);
        assert_eq!(n(&rerun, "images"), IMAGES as u64);
        assert_digests(&target, "");
        assert_eq!(check_storage(&target).len(), IMAGES);
        let again = load_plain(&target, &[]);
        assert_eq!(n(&again, "blobs_pushed"), 0, "kill {i}: {again}");
        assert_eq!(n(&again, "bytes_pushed"), 0, "kill {i}: {again}");
    }
    assert!(partial_runs >= 4, "the loads finished before being killed");
    assert!(incomplete >= 3, "the kills did not interrupt the pushes");
}

/// Story 5: a proxy in front of the target answers 500 and 429, and resets connections before
/// and after the registry saw the request, on every kind of push request; the load survives
/// and the registry ends complete with the right digests.
#[test]
fn load_survives_5xx_and_resets_on_push_requests() {
    use test_support::push_proxy::{PushFault, PushProxy};
    let target = TestRegistry::plain();
    let proxy = PushProxy::start(&target.url());
    proxy.fail("HEAD", "/blobs/", PushFault::Status(503));
    proxy.fail("POST", "/blobs/uploads/", PushFault::Status(500));
    proxy.fail("POST", "/blobs/uploads/", PushFault::Status(429));
    proxy.fail("PATCH", "/blobs/uploads/", PushFault::Reset);
    proxy.fail("PATCH", "/blobs/uploads/", PushFault::ResetAfter);
    proxy.fail("PUT", "digest=", PushFault::Status(502));
    proxy.fail("PUT", "digest=", PushFault::ResetAfter);
    proxy.fail("PUT", "/manifests/sha256:", PushFault::Status(500));
    proxy.fail("PUT", "/manifests/v1", PushFault::ResetAfter);
    let summary = summary_of(&load_json(&proxy.host(), &["--chunk-size", "2000000"]).ok());
    assert_eq!(n(&summary, "images"), IMAGES as u64);
    assert!(
        summary["failures"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert_eq!(
        proxy.pending(),
        0,
        "every fault was met: {:?}",
        proxy.seen()
    );
    assert!(proxy.seen().iter().any(|(m, _, _)| m == "PATCH"));
    assert_digests(&target, "");
    assert_eq!(check_storage(&target).len(), IMAGES);
    let again = load_plain(&target, &[]);
    assert_eq!(n(&again, "blobs_pushed"), 0, "{again}");
}

/// Story 5b: a repository that refuses uploads (403) fails its own image only: the others
/// load complete, the summary names the failure and the exit status is non-zero; a rerun
/// where the refusal is gone finishes the job.
#[test]
fn a_refused_repository_fails_its_image_alone() {
    use test_support::push_proxy::{PushFault, PushProxy};
    let target = TestRegistry::plain();
    let proxy = PushProxy::start(&target.url());
    for _ in 0..4 {
        proxy.fail(
            "POST",
            "/team/single/blobs/uploads/",
            PushFault::Status(403),
        );
    }
    let summary = summary_of(&load_json(&proxy.host(), &[]).failed());
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{summary}");
    assert!(
        failures[0]["image"]
            .as_str()
            .unwrap()
            .ends_with("/team/single:v1"),
        "{summary}"
    );
    assert!(
        failures[0]["error"]
            .as_str()
            .unwrap()
            .contains("team/single"),
        "{summary}"
    );
    assert_eq!(n(&summary, "images_loaded"), IMAGES as u64 - 1, "{summary}");
    let tags = check_storage(&target);
    assert_eq!(tags.len(), IMAGES - 1, "{tags:?}");
    assert!(
        !tags.iter().any(|t| t.starts_with("team/single:")),
        "{tags:?}"
    );

    let rerun = load_plain(&target, &[]);
    assert_eq!(n(&rerun, "images_loaded"), IMAGES as u64, "{rerun}");
    assert_eq!(n(&rerun, "tags_pushed"), 1, "{rerun}");
    assert_digests(&target, "");
}

/// Story 6: a registry behind bearer tokens: pushes ask the token service for
/// `repository:NAME:pull,push` with the login from docker's config.json.
#[test]
fn bearer_token_registry_gets_push_scope() {
    use test_support::push_proxy::{PushGate, PushProxy};
    let f = fixture();
    let target = TestRegistry::plain();
    let proxy = PushProxy::start_gated(
        &target.url(),
        Some(PushGate {
            user: "pusher".into(),
            password: "tok-pass".into(),
        }),
    );
    let config = tempfile::tempdir().unwrap();
    test_support::docker_login(config.path(), &proxy.host(), "pusher", "tok-pass");
    let (bundle, key, host) = (f.signed(), f.key(), proxy.host());
    let args = json_load_args(&bundle, &key, &host);
    // Without the login the token service refuses.
    let refused = Run::from(installer_command(&args, None).output().unwrap());
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let run = Run::from(
        installer_command(&args, Some(config.path()))
            .output()
            .unwrap(),
    )
    .ok();
    let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(n(&summary, "blobs_pushed") > 0);
    let seen = proxy.seen();
    assert!(
        seen.iter()
            .any(|(m, p, s)| m == "GET" && p.contains("/token") && p.contains("push") && *s == 200),
        "{seen:?}"
    );
    assert_digests(&target, "");
}

/// A registry that echoes the request's `Authorization` header in its error bodies (the
/// Basic login sent to its token service, and a bearer token) gets its failures reported, but
/// neither credential reaches stderr or the JSON summary.
#[test]
fn credentials_echoed_by_a_registry_are_redacted() {
    use test_support::push_proxy::{PushFault, PushGate, PushProxy};
    let f = fixture();
    let target = TestRegistry::plain();
    let proxy = PushProxy::start_gated(
        &target.url(),
        Some(PushGate {
            user: "pusher".into(),
            password: "s3cret-pass".into(),
        }),
    );
    proxy.fail("GET", "/token", PushFault::EchoAuthorization(401));
    proxy.fail("PUT", "/manifests/", PushFault::EchoAuthorization(403));
    let config = tempfile::tempdir().unwrap();
    test_support::docker_login(config.path(), &proxy.host(), "pusher", "s3cret-pass");
    let basic = base64::engine::general_purpose::STANDARD.encode("pusher:s3cret-pass");
    let (bundle, key, host) = (f.signed(), f.key(), proxy.host());
    let args = json_load_args(&bundle, &key, &host);
    let run = Run::from(
        installer_command(&args, Some(config.path()))
            .output()
            .unwrap(),
    )
    .failed();
    assert_eq!(
        proxy.pending(),
        0,
        "both echoes were sent: {:?}",
        proxy.seen()
    );
    let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    let failures = summary["failures"].as_array().unwrap();
    assert!(!failures.is_empty(), "{summary}");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains("DENIED"),
        "the registry's refusal is reported: {all}"
    );
    assert!(all.contains("<redacted>"), "{all}");
    for secret in [basic.as_str(), "s3cret-pass", "Bearer tok."] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

/// A registry that answers every blob HEAD with 200 and another blob's digest has none of
/// them counted as present: the images fail naming the lie, and the load does not say the
/// registry already had everything.
#[test]
fn a_registry_claiming_blobs_it_lacks_is_not_believed() {
    use test_support::push_proxy::{PushFault, PushProxy};
    let f = fixture();
    let target = TestRegistry::plain();
    let proxy = PushProxy::start(&target.url());
    for _ in 0..500 {
        proxy.fail("HEAD", "/blobs/sha256:", PushFault::ClaimPresent);
    }
    let text = load_run(&[], &f.signed(), &proxy.host(), &[]).failed();
    assert!(
        !text.stdout.contains("already had everything"),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr
            .contains(&format!("content of sha256:{}", "0".repeat(64))),
        "{}",
        text.stderr
    );
    let json = load_run(&["--json"], &f.signed(), &proxy.host(), &[]).failed();
    let summary: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(n(&summary, "blobs_skipped"), 0, "{summary}");
    assert_eq!(n(&summary, "images_loaded"), 0, "{summary}");
    assert!(!summary["failures"].as_array().unwrap().is_empty());
}

/// The retry events of an `installer --events load` run.
fn retries(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "retry")
        .collect()
}

/// A registry that refuses connections is given up on after three attempts a request, and
/// nothing more is tried once one request could not reach it; each retry is reported (what,
/// why, when the next attempt is) on the terminal and as an event. One that answers 503 gets
/// five attempts a request, and the load that meets four 503s in a row still completes.
#[test]
fn a_dead_registry_is_given_up_sooner_than_a_busy_one_and_every_retry_is_reported() {
    use test_support::push_proxy::{PushFault, PushProxy};
    let f = fixture();
    // Nothing listens on a reserved port, and no other test will.
    let closed = test_support::ports::reserve();
    let dead = format!("127.0.0.1:{}", closed.port());
    let run = load_run(&["--events"], &f.signed(), &dead, &[]).failed();
    let seen = retries(&run);
    assert!(!seen.is_empty(), "no retry reported:\n{}", run.stdout);
    for retry in &seen {
        assert_eq!(retry["max_attempts"], 3, "{retry}");
        assert!(retry["failed"].as_u64().unwrap() < 3, "{retry}");
        assert!(
            retry["registry"].as_str().unwrap().contains(&dead),
            "{retry}"
        );
        assert!(retry["wait_ms"].as_u64().is_some(), "{retry}");
        assert!(!retry["reason"].as_str().unwrap().is_empty(), "{retry}");
    }
    let text = load_run(&[], &f.signed(), &dead, &[]).failed();
    assert!(
        text.stderr.contains("failed (") && text.stderr.contains("attempt 2 of 3 in"),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr
            .contains(&format!("cannot reach registry {dead}")),
        "{}",
        text.stderr
    );
    assert!(
        text.stderr.contains("not tried: registry"),
        "once the registry cannot be reached, the rest is not tried: {}",
        text.stderr
    );
    // At most the blobs in flight (--jobs 4) meet the registry before it is given up on.
    assert!(seen.len() <= 4 * 2, "{} retries: {seen:?}", seen.len());

    let target = TestRegistry::plain();
    let busy = PushProxy::start(&target.url());
    for _ in 0..4 {
        busy.fail("HEAD", "/blobs/sha256:", PushFault::Status(503));
    }
    let run = load_run(&["--events"], &f.signed(), &busy.host(), &["--jobs", "1"]).ok();
    let seen = retries(&run);
    let fours: Vec<u64> = seen.iter().filter_map(|r| r["failed"].as_u64()).collect();
    assert_eq!(fours, [1, 2, 3, 4], "four 503s, four retries: {seen:?}");
    assert!(seen.iter().all(|r| r["max_attempts"] == 5), "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r["reason"].as_str().unwrap().contains("503")),
        "{seen:?}"
    );
    assert_digests(&target, "");
}

#[test]
fn a_bundle_split_into_volumes_loads_from_its_parts() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("b.tar.zst");
    std::fs::copy(f.signed(), &copy).unwrap();
    let part = (std::fs::metadata(&copy).unwrap().len() / 3 + 1).to_string();
    bundle_cmd(dir.path(), &["split", "b.tar.zst", "--size", &part]).ok();
    std::fs::remove_file(&copy).unwrap();
    assert!(
        dir.path().join("b.tar.zst.003").exists(),
        "expected three parts"
    );
    let target = TestRegistry::plain();
    let first = dir.path().join("b.tar.zst.001");
    let summary =
        summary_of(&load_run(&["--json"], test_support::p(&first), &target.host(), &[]).ok());
    assert!(n(&summary, "blobs_pushed") > 0);
    assert_digests(&target, "");
}

#[test]
fn a_registry_restarted_mid_load_is_survived() {
    let f = fixture();
    let (bundle, key) = (f.signed(), f.key());
    let mut target = TestRegistry::plain();
    let host = target.host();
    let mut child = slow_load(&bundle, &key, &host, "--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while stored_blobs(&target) < 3 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(stored_blobs(&target) >= 3, "the load never got going");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the load ended before the registry could be restarted under it"
    );
    // Down and up again on the same port while uploads are in flight.
    target.restart();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "load failed across the restart: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_digests(&target, "");
    assert_eq!(check_storage(&target).len(), IMAGES);
}

/// Story: a signed bundle with one changed byte in an image config. The signatures pass, so blobs
/// start uploading while the member check runs; the check fails, the load fails naming the
/// member, and the registry gets no manifest and no tag (a blob without a manifest is no
/// image; the registry checked each blob it took against its digest).
#[test]
fn a_tampered_bundle_loads_no_manifest_and_no_tag() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("b.tar.zst");
    std::fs::copy(f.signed(), &copy).unwrap();
    let config = f.lock.images[0].platforms[0]
        .config_digest
        .hex()
        .to_string();
    let member = format!("blobs/sha256/{config}");
    let offset = test_support::file_offset_of(dir.path(), "b.tar.zst", &member);
    test_support::flip_byte(&copy, offset + 10);
    let target = TestRegistry::plain();
    let refused = load_run(&[], test_support::p(&copy), &target.host(), &[]).failed();
    assert!(
        refused.stderr.contains("failed verification") && refused.stderr.contains(&member),
        "{}",
        refused.stderr
    );
    assert!(check_storage(&target).is_empty());
    let mut manifests = 0;
    let mut stack = vec![target.dir().join("storage/docker/registry/v2/repositories")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name() == "_manifests" {
                manifests += 1;
            } else if entry.path().is_dir() {
                stack.push(entry.path());
            }
        }
    }
    assert_eq!(
        manifests, 0,
        "the registry holds manifests of a tampered bundle"
    );
}
