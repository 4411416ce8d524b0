//! `bundle lock` and `bundle build` end to end, each test a release engineer's story against
//! real servers: Debian's `docker-registry` (plain, and htpasswd over TLS), images pushed and
//! read back with `skopeo`, and an in-process proxy that injects faults or stalls a download.
//! Every command runs the real binary with its own cache, home and docker config in a
//! temporary directory, so nothing touches the user's cache or logins.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use online::spec::{Lock, LockedImage, Root};
use serde_json::Value;
use test_support::fault_proxy::{Background, Fault};
use test_support::images::{self, SampleImage};
use test_support::ports;
use test_support::registry::{RegistryOptions, TestRegistry};
use test_support::{flip_byte, require, Run};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The tools these tests drive besides `bundle`; a missing one fails the test with a hint.
pub(crate) fn tools() {
    require("docker-registry", "docker-registry");
    require("skopeo", "skopeo");
}

/// A test's working directory: images.toml, manifests.lock, the cache, bundles, a home
/// directory without logins, and the sample image layouts.
pub(crate) struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    pub(crate) fn new() -> Work {
        let work = Work {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(work.path("home/.docker")).unwrap();
        work
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `bundle ARGS` in the working directory, isolated from the user's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(test_support::bin("bundle"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("BUNDLE_KEY_PASSPHRASE", test_support::PASSPHRASE)
            .env("HOME", self.path("home"))
            .env("DOCKER_CONFIG", self.path("home/.docker"))
            .env("CI", "1")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("BUNDLE_CACHE_DIR")
            .env_remove("SOURCE_DATE_EPOCH");
        command
    }

    pub(crate) fn bundle(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run bundle"))
    }

    /// `bundle lock` of images.toml into manifests.lock.
    pub(crate) fn lock(&self, extra: &[&str]) -> Run {
        let mut args = vec![
            "lock",
            "--images",
            "images.toml",
            "--lock",
            "manifests.lock",
        ];
        args.extend(extra);
        self.bundle(&args)
    }

    /// `bundle build --locked --events` into `out` with the cache `cache`.
    pub(crate) fn build(&self, out: &str, cache: &str, extra: &[&str]) -> Run {
        self.bundle(&self.build_args(out, cache, extra))
    }

    fn build_args<'a>(&self, out: &'a str, cache: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "build",
            "--images",
            "images.toml",
            "--lock",
            "manifests.lock",
            "--locked",
            "--events",
            "-o",
            out,
            "--cache",
            cache,
        ];
        args.extend(extra);
        args
    }

    pub(crate) fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    pub(crate) fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn load_lock(&self) -> Lock {
        Lock::load(&self.path("manifests.lock")).unwrap()
    }

    /// Extracts bundle `rel` into `dir` without signatures (member hashes are checked) and
    /// checks the OCI layout there.
    fn extract(&self, rel: &str, dir: &str) -> PathBuf {
        let dir = self.extract_unchecked(rel, dir);
        check_layout(&dir);
        dir
    }

    /// Extracts bundle `rel` into `dir` without checking its layout is complete (an update
    /// bundle's lacks its base layers on purpose).
    pub(crate) fn extract_unchecked(&self, rel: &str, dir: &str) -> PathBuf {
        self.bundle(&["extract", rel, dir, "--insecure-skip-verify", "-q"])
            .ok();
        self.path(dir)
    }

    /// A multi-arch sample (linux/amd64 + linux/arm64 sharing a base layer) pushed to
    /// `registry` as `repository:v1`.
    fn push_multi(&self, registry: &TestRegistry, repository: &str, seed: u64) -> SampleImage {
        let image = images::multi_arch(&self.path(&format!("layouts/{seed}")), "v1", seed);
        images::push(&image, registry, repository);
        image
    }

    /// A single-platform (linux/amd64) sample pushed to `registry` as `repository:v1`.
    pub(crate) fn push_single(
        &self,
        registry: &TestRegistry,
        repository: &str,
        seed: u64,
    ) -> SampleImage {
        let image = images::single(&self.path(&format!("layouts/{seed}")), "v1", seed, 200_000);
        images::push(&image, registry, repository);
        image
    }
}

/// images.toml for `host` (marked insecure unless it is `None`): default platforms amd64 and
/// arm64, one `[[images]]` entry per `(reference, platforms)`, `None` for the default.
pub(crate) fn images_toml(insecure: Option<&str>, entries: &[(&str, Option<&[&str]>)]) -> String {
    let mut text = String::from("# test images\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n");
    if let Some(host) = insecure {
        text.push_str(&format!("\n[registries.\"{host}\"]\ninsecure = true\n"));
    }
    for (reference, platforms) in entries {
        text.push_str(&format!("\n[[images]]\nref = \"{reference}\"\n"));
        if let Some(list) = platforms {
            let quoted: Vec<String> = list.iter().map(|p| format!("\"{p}\"")).collect();
            text.push_str(&format!("platforms = [{}]\n", quoted.join(", ")));
        }
    }
    text
}

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{text}"))
        + 1
}

/// The JSON lines `--events` printed.
fn events(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The final `{"event":"done",...}` of a build.
pub(crate) fn done(run: &Run) -> Value {
    let all = events(run);
    let last = all.last().cloned().unwrap_or_default();
    assert_eq!(last["event"], "done", "{}", run.stdout);
    last
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
}

/// One request in docker-registry's access log.
#[derive(Debug, Clone)]
struct Logged {
    method: String,
    path: String,
    agent: String,
}

/// Every request in a docker-registry log (access log lines in combined format).
fn requests(log: &str) -> Vec<Logged> {
    log.lines()
        .filter_map(|line| {
            let quoted: Vec<&str> = line.split('"').collect();
            // host - - [date] "METHOD PATH PROTO" status size "referer" "agent"
            if quoted.len() < 7 {
                return None;
            }
            let mut request = quoted[1].split(' ');
            let method = request.next()?.to_string();
            let path = request.next()?.to_string();
            path.starts_with("/v2/").then(|| Logged {
                method,
                path,
                agent: quoted[5].to_string(),
            })
        })
        .collect()
}

/// Requests the `bundle` binary made (skopeo's pushes and inspections are left out).
fn bundle_requests(log: &str) -> Vec<Logged> {
    requests(log)
        .into_iter()
        .filter(|r| r.agent.starts_with("bundle/"))
        .collect()
}

/// How many times `bundle` fetched each blob (GET `/v2/.../blobs/sha256:...`).
fn blob_gets(log: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in bundle_requests(log) {
        if r.method != "GET" {
            continue;
        }
        if let Some(i) = r.path.find("/blobs/sha256:") {
            *counts
                .entry(r.path[i + "/blobs/".len()..].to_string())
                .or_default() += 1;
        }
    }
    counts
}

/// Every digest an image contributes to a bundle carrying `platforms` of it: the index (if
/// any) and each platform's manifest, config and layers.
/// The blobs a bundle carries for `image` with `platforms`: the registry's index only when no
/// platform is left out (a filtered index replaces it otherwise), and each platform's blobs.
fn digests(image: &SampleImage, platforms: &[&str]) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    if let Some(index) = &image.index {
        if image.images.len() == platforms.len() {
            all.insert(index.digest.clone());
        }
    }
    for p in image
        .images
        .iter()
        .filter(|p| platforms.contains(&p.platform.as_str()))
    {
        all.insert(p.manifest.digest.clone());
        all.insert(p.config.digest.clone());
        all.extend(p.layers.iter().map(|l| l.digest.clone()));
    }
    all
}

/// The blobs in a cache or layout directory, as `sha256:<hex>`.
fn blobs_in(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir.join("blobs/sha256")) {
        Ok(entries) => entries
            .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// Checks an OCI image layout: every blob hashes to its name, and every descriptor reachable
/// from index.json (indexes, manifests, configs, layers) is there with its size.
fn check_layout(dir: &Path) -> Value {
    assert_eq!(
        std::fs::read_to_string(dir.join("oci-layout"))
            .unwrap()
            .trim(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    for digest in blobs_in(dir) {
        let bytes = std::fs::read(blob_path(dir, &digest)).unwrap();
        assert_eq!(
            images::sha256(&bytes),
            digest,
            "layout blob hashes to its name"
        );
    }
    let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap())
        .expect("index.json is JSON");
    let mut pending: Vec<Value> = index["manifests"].as_array().unwrap().clone();
    while let Some(descriptor) = pending.pop() {
        let digest = descriptor["digest"].as_str().unwrap();
        let bytes = std::fs::read(blob_path(dir, digest))
            .unwrap_or_else(|e| panic!("{digest} is referenced but not in the layout: {e}"));
        assert_eq!(bytes.len() as u64, descriptor["size"].as_u64().unwrap());
        let media_type = descriptor["mediaType"].as_str().unwrap_or_default();
        if media_type.contains("index") || media_type.contains("manifest") {
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            if let Some(list) = value["manifests"].as_array() {
                pending.extend(list.iter().cloned());
            }
            if value["config"].is_object() {
                pending.push(value["config"].clone());
            }
            if let Some(list) = value["layers"].as_array() {
                pending.extend(list.iter().cloned());
            }
        }
    }
    index
}

pub(crate) fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The descriptor index.json gives for `reference`.
pub(crate) fn layout_entry(index: &Value, reference: &str) -> Value {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME] == reference)
        .unwrap_or_else(|| panic!("{reference} not in index.json: {index:#}"))
        .clone()
}

fn locked<'a>(lock: &'a Lock, reference: &str) -> &'a LockedImage {
    lock.images
        .iter()
        .find(|i| i.reference.to_string() == reference)
        .unwrap_or_else(|| panic!("{reference} not in the lock"))
}

/// `skopeo ARGS` (with `--insecure-policy`); panics with its output unless it succeeds.
fn skopeo(args: &[&str]) -> Vec<u8> {
    require("skopeo", "skopeo");
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The digest of what `skopeo inspect --raw` prints for `name` at a plain registry.
fn raw_digest(registry: &TestRegistry, name: &str) -> String {
    images::sha256(&images::inspect_raw(registry, name))
}

/// The per-platform manifest digests an index lists, by `os/arch`.
fn platform_digests(index: &[u8]) -> BTreeMap<String, String> {
    let value: Value = serde_json::from_slice(index).unwrap();
    value["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                format!(
                    "{}/{}",
                    m["platform"]["os"].as_str().unwrap(),
                    m["platform"]["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Story 1: the lock records exactly what the registry serves, is deterministic, and
/// `--update NAME` refreshes only that image.
#[test]
fn lock_records_registry_digests_deterministically_and_updates_one_image() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let multi = work.push_multi(&registry, "team/multi", 11);
    let single = work.push_single(&registry, "team/single", 12);
    let (multi_ref, single_ref) = (
        format!("{host}/team/multi:v1"),
        format!("{host}/team/single:v1"),
    );
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&multi_ref, None),
                (&single_ref, Some(&["linux/amd64"][..])),
            ],
        ),
    );
    work.lock(&[]).ok();
    let lock = work.load_lock();

    // The multi-arch image: the index skopeo sees, and each platform's manifest in it.
    let raw_index = images::inspect_raw(&registry, "team/multi:v1");
    let entry = locked(&lock, &multi_ref);
    match &entry.root {
        Root::Index(d) => {
            assert_eq!(d.digest.as_str(), images::sha256(&raw_index));
            assert_eq!(d.size, raw_index.len() as u64);
            assert_eq!(d.media_type, images::OCI_INDEX);
        }
        other => panic!("expected an index, got {other:?}"),
    }
    assert_eq!(entry.root_digest().as_str(), multi.top_digest());
    assert!(entry.filtered_index.is_none(), "every platform is carried");
    let listed = platform_digests(&raw_index);
    assert_eq!(entry.platforms.len(), 2);
    for (p, sample) in entry.platforms.iter().zip(&multi.images) {
        assert_eq!(p.platform.to_string(), sample.platform);
        let digest = p.manifest.digest.as_str();
        assert_eq!(digest, listed[&sample.platform]);
        assert_eq!(
            raw_digest(&registry, &format!("team/multi@{digest}")),
            digest
        );
        assert_eq!(p.manifest.size, sample.manifest.bytes.len() as u64);
        assert_eq!(p.config_digest.as_str(), sample.config.digest);
        assert_eq!(
            p.layers,
            sample
                .layers
                .iter()
                .map(|l| l.bytes.len() as u64)
                .sum::<u64>()
        );
    }

    // The single-platform image: its manifest is the root and the only platform.
    let entry = locked(&lock, &single_ref);
    match &entry.root {
        Root::Manifest(d) => {
            assert_eq!(d.digest.as_str(), raw_digest(&registry, "team/single:v1"));
            assert_eq!(d.digest.as_str(), single.top_digest());
            assert_eq!(d.media_type, images::OCI_MANIFEST);
        }
        other => panic!("expected a single manifest, got {other:?}"),
    }
    assert_eq!(entry.platforms.len(), 1);
    assert_eq!(entry.platforms[0].manifest, *entry.root.descriptor());

    // Deterministic: locking again, in full or one image, leaves the file byte-identical.
    let first = work.read("manifests.lock");
    let again = work.lock(&[]).ok();
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(work.read("manifests.lock"), first);
    work.lock(&["--update", &single_ref]).ok();
    assert_eq!(work.read("manifests.lock"), first);

    // Both tags move upstream; `--update` of one repository takes only that one.
    let multi2 = work.push_multi(&registry, "team/multi", 21);
    work.push_single(&registry, "team/single", 22);
    let before = registry.log().len();
    work.lock(&["--update", &format!("{host}/team/multi")]).ok();
    let asked = bundle_requests(&registry.log()[before..]);
    assert!(
        asked
            .iter()
            .all(|r| r.path.starts_with("/v2/team/multi/") || r.path == "/v2/"),
        "--update asked about other images: {asked:#?}"
    );
    let updated = work.load_lock();
    assert_eq!(
        locked(&updated, &multi_ref).root_digest().as_str(),
        multi2.top_digest()
    );
    assert_eq!(
        locked(&updated, &single_ref),
        locked(&lock, &single_ref),
        "the other image keeps its entry although its tag moved"
    );
    // Textually: only the updated image's table and resolved_at differ.
    let old = String::from_utf8(first).unwrap();
    let new = String::from_utf8(work.read("manifests.lock")).unwrap();
    let blocks =
        |text: &str| -> Vec<String> { text.split("\n[[image]]\n").map(str::to_string).collect() };
    let (old_blocks, new_blocks) = (blocks(&old), blocks(&new));
    assert_eq!(old_blocks.len(), new_blocks.len());
    for (a, b) in old_blocks.iter().zip(&new_blocks) {
        if a.contains(&format!("ref = \"{multi_ref}\"")) {
            assert_ne!(a, b);
        } else if a.contains("resolved_at") {
            let strip = |t: &str| {
                t.lines()
                    .filter(|l| !l.starts_with("resolved_at"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            assert_eq!(strip(a), strip(b));
        } else {
            assert_eq!(a, b, "an image that was not updated changed");
        }
    }
}

/// Story 2: a signed bundle built from the lock verifies, and after extraction every image
/// copies with skopeo from the layout to another registry with all digests intact.
#[test]
fn signed_bundle_round_trips_through_skopeo_to_a_second_registry() {
    tools();
    let source = TestRegistry::plain();
    let target = TestRegistry::plain();
    let work = Work::new();
    let host = source.host();
    let multi = work.push_multi(&source, "team/multi", 31);
    work.push_multi(&source, "team/amd-only", 32);
    let single = work.push_single(&source, "team/single", 33);
    let refs = [
        format!("{host}/team/multi:v1"),
        format!("{host}/team/amd-only:v1"),
        format!("{host}/team/single:v1"),
    ];
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&refs[0], None),
                (&refs[1], Some(&["linux/amd64"][..])),
                (&refs[2], Some(&["linux/amd64"][..])),
            ],
        ),
    );
    work.lock(&[]).ok();
    let lock = work.load_lock();
    let (public, secret) = test_support::test_key("build-pipeline");
    work.build(
        "bundle.tar.zst",
        "cache",
        &["--sign-key", test_support::p(&secret)],
    )
    .ok();
    let verified = work
        .bundle(&[
            "verify",
            "bundle.tar.zst",
            "--key",
            test_support::p(&public),
        ])
        .ok();
    assert!(verified.stdout.starts_with("OK "), "{}", verified.stdout);
    work.bundle(&[
        "extract",
        "bundle.tar.zst",
        "layout",
        "--key",
        test_support::p(&public),
        "-q",
    ])
    .ok();
    let layout = work.path("layout");
    let index = check_layout(&layout);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);

    for reference in &refs {
        // `oci:DIR:REF`: skopeo 1.9 splits at the first ':' (DIR must not contain one), and
        // REF may contain ':' and '/', so the full reference the layout names works as is.
        let entry = layout_entry(&index, reference);
        let name = reference.strip_prefix(&format!("{host}/")).unwrap();
        skopeo(&[
            "copy",
            "--all",
            "--preserve-digests",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            &format!("oci:{}:{reference}", layout.display()),
            &format!("docker://{}/{name}", target.host()),
        ]);
        let image = locked(&lock, reference);
        let expected = image
            .filtered_index
            .as_ref()
            .map_or(image.root_digest(), |f| &f.digest);
        assert_eq!(entry["digest"].as_str().unwrap(), expected.as_str());
        assert_eq!(
            raw_digest(&target, name),
            expected.as_str(),
            "{reference}: the top digest survives the round trip"
        );
        let repository = name.split(':').next().unwrap();
        for platform in &image.platforms {
            let digest = platform.manifest.digest.as_str();
            assert_eq!(
                raw_digest(&target, &format!("{repository}@{digest}")),
                digest,
                "{reference} {}",
                platform.platform
            );
            assert_eq!(
                raw_digest(&source, &format!("{repository}@{digest}")),
                digest
            );
        }
    }
    assert_eq!(
        raw_digest(&target, "team/multi:v1"),
        multi.top_digest(),
        "the full index is the registry's own"
    );
    assert_eq!(raw_digest(&target, "team/single:v1"), single.top_digest());
}

/// Story 3: an image carried for fewer platforms than its index lists gets a filtered index
/// in the layout; one carried for all keeps the registry's index.
#[test]
fn platform_filtering_writes_the_locked_filtered_index() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let filtered = work.push_multi(&registry, "team/filtered", 41);
    let both = work.push_multi(&registry, "team/both", 42);
    let (filtered_ref, both_ref) = (
        format!("{host}/team/filtered:v1"),
        format!("{host}/team/both:v1"),
    );
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&filtered_ref, Some(&["linux/amd64"][..])),
                (&both_ref, None),
            ],
        ),
    );
    work.lock(&[]).ok();
    let lock = work.load_lock();

    let image = locked(&lock, &filtered_ref);
    assert_eq!(image.root_digest().as_str(), filtered.top_digest());
    let f = image.filtered_index.clone().expect("a filtered index");
    assert_ne!(f.digest, *image.root_digest());
    assert_eq!(image.platforms.len(), 1);
    assert_eq!(
        image.platforms[0].manifest.digest.as_str(),
        filtered.images[0].manifest.digest
    );
    let kept = locked(&lock, &both_ref);
    assert!(kept.filtered_index.is_none());
    assert_eq!(kept.root_digest().as_str(), both.top_digest());

    work.build("bundle.tar.zst", "cache", &[]).ok();
    let layout = work.extract("bundle.tar.zst", "layout");
    let index = check_layout(&layout);

    let entry = layout_entry(&index, &filtered_ref);
    assert_eq!(entry["digest"].as_str().unwrap(), f.digest.as_str());
    assert_eq!(entry["size"].as_u64().unwrap(), f.size);
    let bytes = std::fs::read(blob_path(&layout, f.digest.as_str())).unwrap();
    assert_eq!(images::sha256(&bytes), f.digest.as_str());
    assert_eq!(
        platform_digests(&bytes),
        BTreeMap::from([(
            "linux/amd64".to_string(),
            filtered.images[0].manifest.digest.clone()
        )]),
        "only the carried platform is listed"
    );
    let arm = &filtered.images[1];
    let present = blobs_in(&layout);
    for left_out in [
        &arm.manifest.digest,
        &arm.config.digest,
        &arm.layers[1].digest,
    ] {
        assert!(!present.contains(left_out), "arm64 blob {left_out} carried");
    }
    assert!(present.is_superset(&digests(&filtered, &["linux/amd64"])));
    let original = filtered.index.as_ref().unwrap();
    assert!(
        !present.contains(&original.digest),
        "the unfiltered index is carried although it names manifests the bundle lacks"
    );

    let entry = layout_entry(&index, &both_ref);
    assert_eq!(entry["digest"].as_str().unwrap(), both.top_digest());
    assert!(present.is_superset(&digests(&both, &["linux/amd64", "linux/arm64"])));
}

/// Story 4a: an image that is not in the registry.
#[test]
fn missing_image_names_the_image_and_its_line() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_single(&registry, "team/app", 51);
    let ghost = format!("{host}/team/ghost:v1");
    let text = images_toml(
        Some(&host),
        &[
            (&format!("{host}/team/app:v1"), Some(&["linux/amd64"][..])),
            (&ghost, None),
        ],
    );
    work.write("images.toml", &text);
    let failed = work.lock(&[]).failed();
    let line = line_of(&text, &ghost);
    assert!(
        failed
            .stderr
            .contains(&format!("images.toml:{line}: {ghost}")),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("not found"), "{}", failed.stderr);
    assert!(!work.path("manifests.lock").exists(), "no partial lock");
}

/// Story 4b: a platform the image's index does not offer.
#[test]
fn missing_platform_names_the_image_the_platform_and_its_line() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_multi(&registry, "team/app", 52);
    let reference = format!("{host}/team/app:v1");
    let text = images_toml(
        Some(&host),
        &[(&reference, Some(&["linux/amd64", "linux/s390x"][..]))],
    );
    work.write("images.toml", &text);
    let failed = work.lock(&[]).failed();
    let line = line_of(&text, &reference);
    assert!(
        failed.stderr.contains(&format!(
            "images.toml:{line}: {reference} has no linux/s390x"
        )),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("linux/amd64, linux/arm64"),
        "says what is offered: {}",
        failed.stderr
    );
}

/// Story 4c: a TLS registry with htpasswd, the login from a docker config.json found through
/// DOCKER_CONFIG and the CA from --ca-file: the right password works, a wrong one is refused
/// naming the image, its line and the user.
#[test]
fn wrong_credentials_name_the_image_the_user_and_the_line() {
    tools();
    let registry = TestRegistry::start(RegistryOptions {
        login: Some(("alice".into(), "s3cret".into())),
        tls: true,
    });
    let work = Work::new();
    let host = registry.host();
    work.push_single(&registry, "private/app", 53);
    let reference = format!("{host}/private/app:v1");
    let text = images_toml(None, &[(&reference, Some(&["linux/amd64"][..]))]);
    work.write("images.toml", &text);
    let ca = registry.ca.as_ref().unwrap().ca_cert.clone();
    let docker_config = |password: &str| {
        let dir = work.path(&format!("docker-{password}"));
        test_support::docker_login(&dir, &host, "alice", password)
    };
    let lock = |config: &Path| {
        let args = [
            "lock",
            "--images",
            "images.toml",
            "--lock",
            "manifests.lock",
            "--ca-file",
            test_support::p(&ca),
        ];
        Run::from(
            work.command(&args)
                .env("DOCKER_CONFIG", config)
                .output()
                .unwrap(),
        )
    };

    lock(&docker_config("s3cret")).ok();
    std::fs::remove_file(work.path("manifests.lock")).unwrap();
    let failed = lock(&docker_config("wrong")).failed();
    let line = line_of(&text, &reference);
    assert!(
        failed
            .stderr
            .contains(&format!("images.toml:{line}: {reference}")),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("(user alice) were not accepted"),
        "{}",
        failed.stderr
    );
    assert!(!work.path("manifests.lock").exists());
}

/// Story 4g: Docker Hub's images fetched through a mirror addressed with a path prefix
/// (`host/dockerhub-proxy`, as Harbor proxy-cache projects and Artifactory remotes are): the
/// mirror needs a login and a test CA, given for its host; lock and build pin and carry
/// `docker.io/...` from it. An invalid mirror is named at its images.toml line.
#[test]
fn a_mirror_with_a_path_prefix_serves_docker_hub_images() {
    tools();
    let registry = TestRegistry::start(RegistryOptions {
        login: Some(("alice".into(), "s3cret".into())),
        tls: true,
    });
    let work = Work::new();
    let host = registry.host();
    let image = work.push_multi(&registry, "dockerhub-proxy/team/app", 57);
    let text = format!(
        "platforms = [\"linux/amd64\", \"linux/arm64\"]\n\n\
         [registries.\"docker.io\"]\nmirror = \"{host}/dockerhub-proxy\"\n\n\
         [[images]]\nref = \"docker.io/team/app:v1\"\n"
    );
    work.write("images.toml", &text);
    let ca = registry.ca.as_ref().unwrap().ca_cert.clone();
    let config = test_support::docker_login(&work.path("docker"), &host, "alice", "s3cret");
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--ca-file", test_support::p(&ca)]);
        Run::from(
            work.command(&all)
                .env("DOCKER_CONFIG", &config)
                .output()
                .unwrap(),
        )
    };
    run(&[
        "lock",
        "--images",
        "images.toml",
        "--lock",
        "manifests.lock",
    ])
    .ok();
    let lock = work.load_lock();
    assert_eq!(
        lock.images[0].reference.to_string(),
        "docker.io/team/app:v1"
    );
    assert_eq!(lock.images[0].root_digest().as_str(), image.top_digest());
    run(&work.build_args("bundle.tar.zst", "cache", &[])).ok();
    let dir = work.extract("bundle.tar.zst", "out");
    let index = check_layout(&dir);
    let entry = layout_entry(&index, "docker.io/team/app:v1");
    assert_eq!(entry["digest"], image.top_digest());
    assert!(
        registry
            .log()
            .contains("/v2/dockerhub-proxy/team/app/manifests/"),
        "the mirror was asked under its prefix"
    );

    // A mirror with a scheme, or upper-case path components, is named at its line.
    for bad in [
        format!("https://{host}/dockerhub-proxy"),
        format!("{host}/DockerHub"),
    ] {
        let text = text.replace(&format!("{host}/dockerhub-proxy"), &bad);
        work.write("images.toml", &text);
        let failed = run(&["lock", "--images", "images.toml", "--lock", "other.lock"]).failed();
        let line = line_of(&text, "mirror =");
        assert!(
            failed.stderr.contains(&format!("images.toml:{line}:"))
                && failed.stderr.contains("invalid mirror"),
            "{bad}: {}",
            failed.stderr
        );
    }
}

/// Story 4d: a registry nobody listens for fails soon, naming image, line and registry.
#[test]
fn unreachable_registry_fails_soon_naming_the_image() {
    let work = Work::new();
    // A reserved port: nothing listens there and no other test will.
    let closed = ports::reserve();
    let host = format!("127.0.0.1:{}", closed.port());
    let reference = format!("{host}/team/app:v1");
    let text = images_toml(Some(&host), &[(&reference, None)]);
    work.write("images.toml", &text);
    let failed = work.lock(&["--events"]).failed();
    let line = line_of(&text, &reference);
    assert!(
        failed
            .stderr
            .contains(&format!("images.toml:{line}: {reference}")),
        "{}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains(&format!("cannot reach registry {host}")),
        "{}",
        failed.stderr
    );
    // Refused connections are retried with the budget of a registry that is down (three
    // attempts, backoff from 0.5 s; one that answers 503 gets five), each retry reported as it
    // is about to wait; then the lock fails.
    let retries: Vec<Value> = events(&failed)
        .into_iter()
        .filter(|e| e["event"] == "retry")
        .collect();
    assert_eq!(retries.len(), 2, "{}", failed.stdout);
    for (n, retry) in retries.iter().enumerate() {
        assert_eq!(retry["failed"], n + 1, "{retry}");
        assert_eq!(retry["max_attempts"], 3, "{retry}");
        assert!(retry["wait_ms"].as_u64().unwrap() <= 8_000, "{retry}");
        assert!(
            retry["registry"].as_str().unwrap().contains(&host),
            "{retry}"
        );
    }
    assert_eq!(
        events(&failed).last().unwrap()["event"],
        "error",
        "{}",
        failed.stdout
    );
}

/// Story 4f: a size edited by hand in manifests.lock is found before anything is fetched on
/// its word: the build names the lock entry, the manifest and both sizes, and announces no
/// fetch (it used to announce terabytes, then fail on a "missing blob").
#[test]
fn a_hand_edited_lock_size_is_named_before_fetching() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_multi(&registry, "team/app", 56);
    let app = format!("{host}/team/app:v1");
    work.write("images.toml", &images_toml(Some(&host), &[(&app, None)]));
    work.lock(&[]).ok();
    let lock = work.load_lock();
    let platform = &lock.images[0].platforms[1];
    let (digest, size) = (platform.manifest.digest.to_string(), platform.manifest.size);
    let text = String::from_utf8(work.read("manifests.lock")).unwrap();
    let at = text.find(&format!("digest = \"{digest}\"")).unwrap();
    let size_line = format!("size = {size}\n");
    let offset = at + text[at..].find(&size_line).unwrap();
    let edited = format!(
        "{}size = 5000000000000\n{}",
        &text[..offset],
        &text[offset + size_line.len()..]
    );
    work.write("manifests.lock", &edited);
    let failed = work.build("bundle.tar.zst", "cache", &[]).failed();
    let ref_line = line_of(&edited, &format!("ref = \"{app}\""));
    assert!(
        failed
            .stderr
            .contains(&format!("manifests.lock:{ref_line}: {app}: the lock gives manifest {digest} a size of 5000000000000 bytes; it is {size} bytes")),
        "{}",
        failed.stderr
    );
    assert!(
        !events(&failed)
            .iter()
            .any(|e| e["event"] == "fetch_started"),
        "{}",
        failed.stdout
    );
    assert!(!work.path("bundle.tar.zst").exists());
}

/// Story 4e: images.toml changed after locking; `--locked` refuses, naming the image and its
/// line, before fetching anything, and writes no bundle.
#[test]
fn locked_build_refuses_a_changed_images_toml() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_multi(&registry, "team/app", 54);
    work.push_single(&registry, "team/other", 55);
    let (app, other) = (
        format!("{host}/team/app:v1"),
        format!("{host}/team/other:v1"),
    );
    let locked_text = images_toml(
        Some(&host),
        &[(&app, None), (&other, Some(&["linux/amd64"][..]))],
    );
    work.write("images.toml", &locked_text);
    work.lock(&[]).ok();
    let lock_bytes = work.read("manifests.lock");

    let changed = images_toml(
        Some(&host),
        &[
            (&app, Some(&["linux/arm64"][..])),
            (&other, Some(&["linux/amd64"][..])),
        ],
    );
    work.write("images.toml", &changed);
    let before = registry.log().len();
    let failed = work.build("bundle.tar.zst", "cache", &[]).failed();
    let line = line_of(&changed, &app);
    assert!(
        failed.stderr.contains(&format!(
            "images.toml:{line}: {app}: platforms differ: images.toml wants linux/arm64, \
             manifests.lock has linux/amd64, linux/arm64"
        )),
        "{}",
        failed.stderr
    );
    assert!(!failed.stderr.contains(&other), "{}", failed.stderr);
    assert!(!work.path("bundle.tar.zst").exists(), "no bundle written");
    assert_eq!(work.read("manifests.lock"), lock_bytes, "lock untouched");
    assert!(
        bundle_requests(&registry.log()[before..]).is_empty(),
        "nothing fetched"
    );
    assert!(blobs_in(&work.path("cache")).is_empty());
}

/// Story 5: a build killed half-way through a download resumes: the second run fetches only
/// what the first did not finish, and reports the rest as cached.
#[test]
fn interrupted_build_resumes_without_refetching_finished_blobs() {
    tools();
    let registry = TestRegistry::plain();
    let proxy = Background::start(&registry.url());
    let work = Work::new();
    let host = proxy.host();
    let multi = work.push_multi(&registry, "team/multi", 61);
    let single = work.push_single(&registry, "team/single", 62);
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&format!("{host}/team/multi:v1"), None),
                (
                    &format!("{host}/team/single:v1"),
                    Some(&["linux/amd64"][..]),
                ),
            ],
        ),
    );
    work.lock(&[]).ok();
    let mut all = digests(&multi, &["linux/amd64", "linux/arm64"]);
    all.extend(digests(&single, &["linux/amd64"]));

    // The shared base layer (the biggest blob) stalls half-way; everything else arrives.
    let stalled = multi.images[0].layers[0].clone();
    let stalled_size = stalled.bytes.len() as u64;
    proxy.fail(&stalled.digest, Fault::Stall);
    let log_before = registry.log().len();
    let mut child = work
        .command(&work.build_args("first.tar.zst", "cache", &[]))
        .stdout(std::fs::File::create(work.path("first.out")).unwrap())
        .stderr(std::fs::File::create(work.path("first.err")).unwrap())
        .spawn()
        .unwrap();
    let cache = work.path("cache");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial: u64 = std::fs::read_dir(cache.join("tmp"))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(stalled.digest.trim_start_matches("sha256:"))
                    })
                    .map(|e| e.metadata().map_or(0, |m| m.len()))
                    .sum()
            })
            .unwrap_or(0);
        if blobs_in(&cache).len() == all.len() - 1 && partial > 0 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the build ended ({status}) although a blob stalls: {} {}{} {}",
                proxy.pending(),
                String::from_utf8_lossy(&work.read("first.out")),
                String::from_utf8_lossy(&work.read("first.err")),
                stalled.digest
            );
        }
        assert!(
            Instant::now() < deadline,
            "the cache never filled: {:?}",
            blobs_in(&cache)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    child.wait().unwrap();
    assert!(!work.path("first.tar.zst").exists());
    let finished = blobs_in(&cache);
    assert!(!finished.contains(&stalled.digest));
    assert_eq!(finished.len(), all.len() - 1);
    assert_eq!(proxy.pending(), 0, "the stall was met");
    let first_run = blob_gets(&registry.log()[log_before..]);

    let log_between = registry.log().len();
    let seen_between = proxy.seen().len();
    let second = work.build("bundle.tar.zst", "cache", &[]).ok();
    let second_run = blob_gets(&registry.log()[log_between..]);
    assert_eq!(
        second_run,
        BTreeMap::from([(stalled.digest.clone(), 1)]),
        "only the unfinished blob is fetched again"
    );
    for digest in &finished {
        let total = first_run.get(digest).copied().unwrap_or(0)
            + second_run.get(digest).copied().unwrap_or(0);
        assert!(total <= 1, "{digest} fetched {total} times");
    }
    let manifests_asked = proxy.seen()[seen_between..]
        .iter()
        .filter(|s| s.path.contains("/manifests/"))
        .count();
    assert_eq!(
        manifests_asked, 0,
        "cached manifests are not asked for again"
    );

    let summary = done(&second);
    assert_eq!(count(&summary, "downloaded_blobs"), 1);
    assert_eq!(count(&summary, "downloaded_bytes"), stalled_size);
    assert_eq!(count(&summary, "cached_blobs"), finished.len() as u64);
    assert_eq!(blobs_in(&cache), all);

    // The resumed bundle is the bundle a build from nothing makes.
    work.build("fresh.tar.zst", "fresh-cache", &[]).ok();
    assert_eq!(work.read("bundle.tar.zst"), work.read("fresh.tar.zst"));
    let layout = work.extract("bundle.tar.zst", "layout");
    assert!(blobs_in(&layout).is_superset(&all));
}

/// Story 6: a cached blob that no longer hashes to its name (a layer, and a manifest) is
/// noticed (the manifest when it is read, the layer when it is packed, without a second
/// hashing pass over the cache), fetched again, and the bundle comes out right.
#[test]
fn corrupted_cache_blobs_are_detected_and_fetched_again() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let multi = work.push_multi(&registry, "team/multi", 71);
    work.write(
        "images.toml",
        &images_toml(Some(&host), &[(&format!("{host}/team/multi:v1"), None)]),
    );
    work.lock(&[]).ok();
    let first = work.build("first.tar.zst", "cache", &[]).ok();
    let total = digests(&multi, &["linux/amd64", "linux/arm64"]).len() as u64;
    assert_eq!(count(&done(&first), "downloaded_blobs"), total);
    assert_eq!(count(&done(&first), "cached_blobs"), 0);

    let layer = &multi.images[1].layers[1];
    let manifest = &multi.images[0].manifest;
    let cache = work.path("cache");
    flip_byte(&blob_path(&cache, &layer.digest), 1000);
    flip_byte(&blob_path(&cache, &manifest.digest), 10);
    let before = registry.log().len();
    let second = work.build("second.tar.zst", "cache", &[]).ok();
    let summary = done(&second);
    assert_eq!(count(&summary, "downloaded_blobs"), 2, "{summary}");
    assert_eq!(count(&summary, "cached_blobs"), total - 2);
    let fetched: Vec<String> = bundle_requests(&registry.log()[before..])
        .into_iter()
        .filter(|r| r.method == "GET" && r.path != "/v2/")
        .map(|r| r.path)
        .collect();
    assert_eq!(fetched.len(), 2, "{fetched:#?}");
    assert!(fetched
        .iter()
        .any(|p| p.ends_with(&format!("/blobs/{}", layer.digest))));
    assert!(fetched
        .iter()
        .any(|p| p.ends_with(&format!("/manifests/{}", manifest.digest))));
    for blob in [layer, manifest] {
        let bytes = std::fs::read(blob_path(&cache, &blob.digest)).unwrap();
        assert_eq!(bytes, blob.bytes, "the cache holds the good bytes again");
    }
    assert_eq!(work.read("second.tar.zst"), work.read("first.tar.zst"));
    work.extract("second.tar.zst", "layout");
}

/// Story 7: a flaky registry (500s, 503s, reset connections, 429 with Retry-After, a body
/// cut short) in front of every request kind does not stop lock or build.
#[test]
fn build_survives_a_faulty_registry() {
    tools();
    let registry = TestRegistry::plain();
    let proxy = Background::start(&registry.url());
    let work = Work::new();
    let host = proxy.host();
    let multi = work.push_multi(&registry, "team/multi", 81);
    let single = work.push_single(&registry, "team/single", 82);
    let multi_ref = format!("{host}/team/multi:v1");
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&multi_ref, None),
                (
                    &format!("{host}/team/single:v1"),
                    Some(&["linux/amd64"][..]),
                ),
            ],
        ),
    );
    proxy.fail("/team/multi/manifests/v1", Fault::Status(500));
    proxy.fail("/team/single/manifests/v1", Fault::Reset);
    let amd = &multi.images[0];
    proxy.fail(&amd.manifest.digest, Fault::TooMany("1"));
    work.lock(&[]).ok();
    assert_eq!(proxy.pending(), 0, "every fault during the lock was met");

    let arm = &multi.images[1];
    let faults = [
        (multi.top_digest().to_string(), Fault::Reset),
        (arm.manifest.digest.clone(), Fault::Status(502)),
        (amd.layers[0].digest.clone(), Fault::TooMany("1")),
        (amd.layers[0].digest.clone(), Fault::Reset),
        (amd.layers[1].digest.clone(), Fault::CutBody),
        (arm.layers[1].digest.clone(), Fault::Status(500)),
        (arm.layers[1].digest.clone(), Fault::Status(503)),
        (amd.config.digest.clone(), Fault::Status(503)),
        (single.images[0].layers[0].digest.clone(), Fault::Reset),
    ];
    for (pattern, fault) in &faults {
        proxy.fail(pattern, fault.clone());
    }
    let built = work.build("bundle.tar.zst", "cache", &[]).ok();
    assert_eq!(proxy.pending(), 0, "every fault was met");
    let statuses: BTreeSet<u16> = proxy.seen().iter().map(|s| s.status).collect();
    for status in [0, 429, 500, 502, 503] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
    let mut all = digests(&multi, &["linux/amd64", "linux/arm64"]);
    all.extend(digests(&single, &["linux/amd64"]));
    assert_eq!(count(&done(&built), "downloaded_blobs"), all.len() as u64);
    let layout = work.extract("bundle.tar.zst", "layout");
    assert_eq!(blobs_in(&layout), all);
    assert_eq!(
        layout_entry(&check_layout(&layout), &multi_ref)["digest"],
        multi.top_digest()
    );
}

/// Story 8: a rebuild with a warm cache asks the registry for nothing and writes the same
/// bytes.
#[test]
fn warm_rebuild_downloads_nothing_and_is_byte_identical() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let multi = work.push_multi(&registry, "team/multi", 91);
    let single = work.push_single(&registry, "team/single", 92);
    work.write(
        "images.toml",
        &images_toml(
            Some(&host),
            &[
                (&format!("{host}/team/multi:v1"), Some(&["linux/arm64"][..])),
                (
                    &format!("{host}/team/single:v1"),
                    Some(&["linux/amd64"][..]),
                ),
            ],
        ),
    );
    work.lock(&[]).ok();
    let cold = work.build("cold.tar.zst", "cache", &[]).ok();
    let cold_summary = done(&cold);
    // Cold, only the filtered index (written locally from the registry's index) is cached.
    assert_eq!(count(&cold_summary, "cached_blobs"), 1, "{cold_summary}");

    let before = registry.log().len();
    let warm = work.build("warm.tar.zst", "cache", &[]).ok();
    let warm_summary = done(&warm);
    assert_eq!(count(&warm_summary, "downloaded_blobs"), 0);
    assert_eq!(count(&warm_summary, "downloaded_bytes"), 0);
    let blobs = count(&cold_summary, "downloaded_blobs") + 1;
    assert_eq!(count(&warm_summary, "cached_blobs"), blobs);
    let asked = bundle_requests(&registry.log()[before..]);
    assert!(asked.is_empty(), "the warm build asked: {asked:#?}");
    assert_eq!(work.read("warm.tar.zst"), work.read("cold.tar.zst"));
    let quiet = work
        .bundle(&[
            "build",
            "--images",
            "images.toml",
            "--lock",
            "manifests.lock",
            "--locked",
            "-q",
            "-o",
            "quiet.tar.zst",
            "--cache",
            "cache",
        ])
        .ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    assert_eq!(work.read("quiet.tar.zst"), work.read("cold.tar.zst"));
    let layout = work.extract("warm.tar.zst", "layout");
    let mut expected = digests(&multi, &["linux/arm64"]);
    expected.extend(digests(&single, &["linux/amd64"]));
    assert!(blobs_in(&layout).is_superset(&expected));
}

/// sha256 of a file, as `sha256sum` prints it.
fn sha256_file(path: &Path) -> String {
    let out = test_support::run("sha256sum", &[test_support::p(path)], Path::new("/")).ok();
    out.stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The real helm binary in a `.tar.gz` laid out like get.helm.sh's, served over HTTP, and the
/// real kubectl as a bare file:// download: `bundle lock` pins both binaries' sha256, the
/// bundle carries them as `tools/linux-amd64/*` (byte-identical, kind "tool"), a rebuild
/// with the server gone comes from the cache, a changed download is refused naming the
/// tool, and a changed tools.toml fails `--locked` naming its line.
#[test]
fn tools_and_the_site_ca_are_carried_in_the_bundle() {
    tools();
    require("helm", "scripts/install-helm.sh");
    require("kubectl", "scripts/install-helm.sh");
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_single(&registry, "team/single", 93);
    let images = images_toml(Some(&host), &[(&format!("{host}/team/single:v1"), None)])
        .replace("\"linux/amd64\", \"linux/arm64\"", "\"linux/amd64\"");
    work.write("images.toml", &images);

    let helm = PathBuf::from(
        test_support::run("which", &["helm"], work.path("").as_path())
            .ok()
            .stdout
            .trim(),
    );
    let kubectl = PathBuf::from(
        test_support::run("which", &["kubectl"], work.path("").as_path())
            .ok()
            .stdout
            .trim(),
    );
    std::fs::create_dir_all(work.path("srv/linux-amd64")).unwrap();
    std::fs::copy(&helm, work.path("srv/linux-amd64/helm")).unwrap();
    test_support::run(
        "tar",
        &["czf", "helm-v4.1.4-linux-amd64.tar.gz", "linux-amd64/helm"],
        &work.path("srv"),
    )
    .ok();
    std::fs::copy(&kubectl, work.path("kubectl")).unwrap();
    let server = test_support::static_files::StaticFiles::serve(&work.path("srv"));
    let tools_toml = format!(
        "[[tool]]\nname = \"helm\"\nversion = \"4.1.4\"\n\n[[tool.download]]\n\
         platform = \"linux/amd64\"\nurl = \"{}/helm-v4.1.4-linux-amd64.tar.gz\"\n\
         member = \"linux-amd64/helm\"\n\n[[tool]]\nname = \"kubectl\"\nversion = \"1.33.9\"\n\n\
         [[tool.download]]\nplatform = \"linux/amd64\"\nurl = \"file://{}\"\n",
        server.url(),
        work.path("kubectl").display()
    );
    work.write("tools.toml", &tools_toml);

    work.lock(&[]).ok();
    let lock = work.load_lock();
    let pinned: BTreeMap<&str, String> = lock
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.sha256.hex().to_string()))
        .collect();
    assert_eq!(pinned["helm"], sha256_file(&helm));
    assert_eq!(pinned["kubectl"], sha256_file(&kubectl));
    let helm_entry = lock.tools.iter().find(|t| t.name == "helm").unwrap();
    assert_eq!(
        helm_entry.download_sha256.hex(),
        sha256_file(&work.path("srv/helm-v4.1.4-linux-amd64.tar.gz"))
    );
    let text = String::from_utf8(work.read("manifests.lock")).unwrap();
    assert!(text.contains("[[tool]]"), "{text}");

    // The site CA travels too: the certificate, and the key only age-encrypted.
    work.bundle(&["ca", "init", "--out", "ca", "--name", "Test Site Root CA"])
        .ok();
    work.build("b.tar.zst", "cache", &["--ca", "ca"]).ok();
    let dir = work.extract("b.tar.zst", "out");
    assert_eq!(
        std::fs::read(dir.join("ca/ca.crt")).unwrap(),
        work.read("ca/ca.crt")
    );
    let key = std::fs::read(dir.join("ca/ca.key.age")).unwrap();
    assert!(key.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&key).contains("PRIVATE KEY"));
    assert_eq!(
        std::fs::read(dir.join("tools/linux-amd64/helm")).unwrap(),
        std::fs::read(&helm).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.join("tools/linux-amd64/kubectl")).unwrap(),
        std::fs::read(&kubectl).unwrap()
    );
    let manifest: Value = serde_json::from_slice(&work.read("out/bundle.json")).unwrap();
    let kinds: BTreeMap<String, String> = manifest["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap().to_string(),
                m["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(kinds["tools/linux-amd64/helm"], "tool");
    assert_eq!(kinds["ca/ca.crt"], "ca");

    // A changed download under the same URL is refused, naming the tool.
    std::fs::write(work.path("kubectl"), b"#!/bin/sh\necho not kubectl\n").unwrap();
    let refused = work.build("bad.tar.zst", "fresh-cache", &[]).failed();
    assert!(
        refused.stderr.contains("tool kubectl for linux/amd64")
            && refused.stderr.contains("the lock pins"),
        "{}",
        refused.stderr
    );
    assert!(!work.path("bad.tar.zst").exists());

    // The installer writes the binaries out of the bundle, runnable.
    let tools_for = |platform: &str| {
        let output = Command::new(test_support::bin("installer"))
            .args([
                "tools",
                "b.tar.zst",
                "--insecure-skip-verify",
                "--out",
                "bin",
            ])
            .args(["--platform", platform])
            .current_dir(work.path(""))
            .env("CI", "1")
            .output()
            .unwrap();
        Run::from(output)
    };
    tools_for("linux/amd64").ok();
    let version = test_support::run(
        test_support::p(&work.path("bin/helm")),
        &["version", "--short"],
        &work.path(""),
    )
    .ok();
    assert!(version.stdout.starts_with("v4."), "{}", version.stdout);
    let none = tools_for("linux/arm64").failed();
    assert!(
        none.stderr
            .contains("carries no tools for linux/arm64 (it has: linux/amd64)"),
        "{}",
        none.stderr
    );

    // Offline: the server is gone, the cache has everything.
    drop(server);
    work.build("again.tar.zst", "cache", &["--ca", "ca"]).ok();
    assert_eq!(work.read("again.tar.zst"), work.read("b.tar.zst"));

    // tools.toml asking for another version no longer matches the lock.
    work.write("tools.toml", &tools_toml.replace("1.33.9", "1.34.0"));
    let stale = work.build("stale.tar.zst", "cache", &[]).failed();
    let line = line_of(&tools_toml, "file://");
    assert!(
        stale.stderr.contains(&format!(
            "tools.toml:{}: tool kubectl 1.34.0 for linux/amd64",
            line - 1
        )) && stale.stderr.contains("the lock has tool kubectl 1.33.9"),
        "{}",
        stale.stderr
    );
}

/// `installer --json load BUNDLE --insecure-skip-verify` into `host` (plain HTTP).
pub(crate) fn installer_load(work: &Work, bundle: &str, host: &str) -> Run {
    let output = Command::new(test_support::bin("installer"))
        .args(["--json", "load", bundle, "--insecure-skip-verify"])
        .args(["--registry", host, "--insecure-registry"])
        .current_dir(work.path(""))
        .env("HOME", work.path("home"))
        .env("DOCKER_CONFIG", work.path("home/.docker"))
        .env("CI", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run installer");
    Run::from(output)
}

/// The ClamAV path: a cvdupdate-style directory of the real Talos-signed test databases is
/// validated and pinned by `bundle lock`; the build adds one layer of databases to the ClamAV
/// image; Debian's clamscan loads them from the image unpacked with umoci; `--only clamav`
/// makes an update bundle without the base layers, which `installer load` refuses into an
/// empty registry and, after the full bundle, pushes as just the new layer and config.
#[test]
fn clamav_signature_image_serves_clamscan_and_updates_alone() {
    tools();
    require("umoci", "umoci");
    require("clamscan", "clamav");
    let registry = TestRegistry::plain();
    let target = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let base = work.push_single(&registry, "clamav/clamav", 94);
    let data = test_support::clamav_testdata();
    for dir in ["db", "certs"] {
        std::fs::create_dir_all(work.path(dir)).unwrap();
    }
    let files = [
        "test-1.cvd",
        "test-1.cvd.sign",
        "test-2.cvd",
        "test-2.cvd.sign",
        "bytecode.cvd",
    ];
    for file in files {
        std::fs::copy(data.join(file), work.path("db").join(file)).unwrap();
    }
    std::fs::copy(
        data.join("clamav-test.crt"),
        work.path("certs/clamav-test.crt"),
    )
    .unwrap();
    let reference = format!("{host}/clamav/clamav:v1");
    let images = format!(
        "{}\n[clamav]\nimage = \"{reference}\"\ndatabases = [\"test-1\", \"test-2\", \"bytecode\"]\n\
         dir = \"db\"\ncert_dir = \"certs\"\n\
         # The shared test root expires in March 2027.\n\
         certificates_valid_at = \"2026-06-01T00:00:00Z\"\n",
        images_toml(Some(&host), &[(&reference, Some(&["linux/amd64"][..]))])
    );
    work.write("images.toml", &images);

    work.lock(&[]).ok();
    let lock = work.load_lock();
    assert_eq!(lock.clamav.len(), 3);
    for database in &lock.clamav {
        assert_eq!(
            database.sha256.hex(),
            sha256_file(&work.path("db").join(&database.file))
        );
        assert_eq!(
            database.sign_sha256.is_some(),
            database.file.starts_with("test-")
        );
        assert!(
            database.version > 0 && database.functionality_level > 0,
            "{database:?}"
        );
    }
    let tag: Vec<String> = lock
        .clamav
        .iter()
        .map(|d| format!("{}-{}", d.file.trim_end_matches(".cvd"), d.version))
        .collect();
    let signature_ref = format!("{reference}-db.{}", tag.join("."));

    // A private mirror serving the same files pins the same bytes.
    let mirror = test_support::static_files::StaticFiles::serve(&work.path("db"));
    let before = work.read("manifests.lock");
    work.lock(&["--clamav-mirror", &mirror.url()]).ok();
    let mirrored = work.load_lock();
    for (a, b) in lock.clamav.iter().zip(&mirrored.clamav) {
        assert_eq!((&a.sha256, &a.sign_sha256), (&b.sha256, &b.sign_sha256));
        assert!(b.url.starts_with(&mirror.url()), "{}", b.url);
    }
    // A database the mirror lacks is named.
    std::fs::remove_file(work.path("db/test-2.cvd")).unwrap();
    let missing = work.lock(&["--clamav-mirror", &mirror.url()]).failed();
    assert!(
        missing.stderr.contains("ClamAV database test-2")
            && missing.stderr.contains("test-2.cvd: not found"),
        "{}",
        missing.stderr
    );
    std::fs::copy(data.join("test-2.cvd"), work.path("db/test-2.cvd")).unwrap();
    drop(mirror);
    std::fs::write(work.path("manifests.lock"), before).unwrap();
    // Past the test root's expiry, the .sign certificates are refused.
    work.write(
        "images.toml",
        &images.replace("2026-06-01T00:00:00Z", "2028-01-01T00:00:00Z"),
    );
    let expired = work.lock(&[]).failed();
    assert!(
        expired.stderr.contains("test-1.cvd") && expired.stderr.contains("certificate"),
        "{}",
        expired.stderr
    );
    work.write("images.toml", &images);

    let full_bytes = done(&work.build("full.tar.zst", "cache", &[]).ok())["bytes"]
        .as_u64()
        .unwrap();
    let layout = work.extract("full.tar.zst", "full");
    let index: Value = serde_json::from_slice(&work.read("full/index.json")).unwrap();
    let entry = layout_entry(&index, &signature_ref);
    layout_entry(&index, &reference);

    // The image as a node would run it: the databases are where clamd looks.
    test_support::run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:{signature_ref}", layout.display()),
            &format!("oci:{}:db", work.path("sig").display()),
        ],
        &work.path(""),
    )
    .ok();
    test_support::run(
        "umoci",
        &["unpack", "--image", "sig:db", "rootfs-bundle"],
        &work.path(""),
    )
    .ok();
    let rootfs = work.path("rootfs-bundle/rootfs");
    for file in files {
        assert_eq!(
            std::fs::read(rootfs.join("var/lib/clamav").join(file)).unwrap(),
            std::fs::read(work.path("db").join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(
        rootfs.join("data/file-94.bin").exists(),
        "the base layer is kept"
    );
    work.write("clean.txt", "nothing to see here\n");
    let scan = test_support::run(
        "clamscan",
        &[
            "-d",
            test_support::p(&rootfs.join("var/lib/clamav")),
            "clean.txt",
        ],
        &work.path(""),
    )
    .ok();
    let known: u64 = scan
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Known viruses: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no signature count in:\n{}", scan.stdout));
    assert!(known > 0, "{}", scan.stdout);

    // An update bundle: the signature image alone, its base layer left to the site.
    let update = work
        .build("update.tar.zst", "cache", &["--only", "clamav"])
        .ok();
    let update_bytes = done(&update)["bytes"].as_u64().unwrap();
    assert!(update_bytes < full_bytes, "{update_bytes} vs {full_bytes}");
    work.extract_unchecked("update.tar.zst", "update");
    let update_index: Value = serde_json::from_slice(&work.read("update/index.json")).unwrap();
    assert_eq!(update_index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        layout_entry(&update_index, &signature_ref)["digest"],
        entry["digest"]
    );
    let external: Value = serde_json::from_slice(&work.read("update/external-blobs.json")).unwrap();
    let base_layer = base.images[0].layers[0].digest.clone();
    assert_eq!(external[0]["digest"], base_layer.as_str());
    assert!(!work
        .path(&format!("update/blobs/sha256/{}", &base_layer[7..]))
        .exists());

    let target_host = target.host();
    let refused = installer_load(&work, "update.tar.zst", &target_host).failed();
    assert!(
        refused.stdout.contains("load the full bundle first")
            && refused.stdout.contains(&reference),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    installer_load(&work, "full.tar.zst", &target_host).ok();

    // Tomorrow's set (here: one database fewer) updates with only the new layer and config.
    work.write("images.toml", &images.replace(", \"bytecode\"]", "]"));
    work.lock(&[]).ok();
    let next = work
        .build("next.tar.zst", "cache", &["--only", "clamav"])
        .ok();
    let next_bytes = done(&next)["bytes"].as_u64().unwrap();
    assert!(next_bytes < full_bytes, "{next_bytes} vs {full_bytes}");
    work.extract_unchecked("next.tar.zst", "next");
    let next_index: Value = serde_json::from_slice(&work.read("next/index.json")).unwrap();
    let next_tag = format!("{reference}-db.{}", tag[..2].join("."));
    layout_entry(&next_index, &next_tag);
    let loaded = installer_load(&work, "next.tar.zst", &target_host).ok();
    let summary: Value = serde_json::from_str(loaded.stdout.trim()).unwrap();
    assert_eq!(summary["blobs_pushed"], 2, "{summary}");
    assert!(
        summary["bytes_pushed"].as_u64().unwrap() < 100_000,
        "{summary}"
    );
}

/// Writes a small chart `name` version `version` into `dir`: a Deployment running `image`,
/// and, when `.Values.sidecar` is set, an operator-style flag naming `sidecar`.
fn write_chart(dir: &Path, name: &str, version: &str, image: &str, sidecar: &str) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"1.0\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), "sidecar: false\n").unwrap();
    std::fs::write(
        dir.join("templates/deploy.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{{{ .Release.Name }}}}\n\
             spec:\n  selector:\n    matchLabels: {{app: x}}\n  template:\n    metadata:\n      \
             labels: {{app: x}}\n    spec:\n      containers:\n        - name: app\n          \
             image: {image}\n          args:\n            - --listen=:8080\n\
             {{{{- if .Values.sidecar }}}}\n            - --sidecar-image={sidecar}\n\
             {{{{- end }}}}\n"
        ),
    )
    .unwrap();
}

/// sha256 of the one `.tgz` helm pulled into `dir`.
fn pulled_digest(dir: &Path) -> String {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .unwrap_or_else(|| panic!("helm pulled nothing into {}", dir.display()));
    sha256_file(&file)
}

/// Charts end to end: the stack's own chart (packaged by the build) and an upstream chart
/// from a classic repository (`helm package` + `helm repo index`, served over HTTP, chosen by
/// a semver range) are pinned and carried as Helm OCI artifacts and as a static repository;
/// two builds from different caches are byte-identical; after `installer load`, and from
/// `installer serve`, the official helm pulls each chart with the bundle's digest. The build
/// renders releases.toml with helm and refuses an image hidden in a flag that images.toml
/// lacks, naming the template and field.
#[test]
fn charts_travel_as_oci_artifacts_and_a_static_repository() {
    tools();
    require("helm", "scripts/install-helm.sh");
    let registry = TestRegistry::plain();
    let target = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_single(&registry, "team/app", 95);
    let app = format!("{host}/team/app:v1");
    work.write(
        "images.toml",
        &images_toml(Some(&host), &[(&app, Some(&["linux/amd64"][..]))]),
    );
    let sidecar = format!("{host}/team/sidecar:v1");
    write_chart(&work.path("charts/demo"), "demo", "0.1.0", &app, &sidecar);

    // An upstream repository with two versions of another chart.
    for version in ["1.1.0", "1.2.0"] {
        let src = work.path(&format!("upstream-src/{version}"));
        write_chart(&src, "upstream-demo", version, &app, &sidecar);
        test_support::run(
            "helm",
            &["package", test_support::p(&src), "-d", "srv"],
            &work.path(""),
        )
        .ok();
    }
    let server = test_support::static_files::StaticFiles::serve(&work.path("srv"));
    test_support::run(
        "helm",
        &["repo", "index", ".", "--url", &server.url()],
        &work.path("srv"),
    )
    .ok();
    work.write(
        "charts.toml",
        &format!(
            "[[chart]]\nname = \"upstream-demo\"\nrepo = \"{}\"\nversion = \"~1.2\"\n",
            server.url()
        ),
    );
    work.lock(&[]).ok();
    let lock = work.load_lock();
    assert_eq!(lock.charts.len(), 1);
    assert_eq!(lock.charts[0].version, "1.2.0");
    assert_eq!(
        lock.charts[0].digest.hex(),
        sha256_file(&work.path("srv/upstream-demo-1.2.0.tgz"))
    );

    // Rendering: an image hidden in a flag that images.toml lacks stops the build.
    work.write(
        "releases.toml",
        "[[release]]\nname = \"demo\"\nnamespace = \"matrix\"\nchart = \"charts/demo\"\n\
         values = [\"sidecar.yaml\"]\n\n[[release]]\nname = \"up\"\nnamespace = \"ops\"\n\
         chart = \"locked:upstream-demo\"\n",
    );
    work.write("sidecar.yaml", "sidecar: true\n");
    let refused = work.build("refused.tar.zst", "cache", &[]).failed();
    assert!(
        refused.stderr.contains(&sidecar)
            && refused.stderr.contains("demo/templates/deploy.yaml")
            && refused
                .stderr
                .contains("spec.template.spec.containers[0].args[1]"),
        "{}",
        refused.stderr
    );
    assert!(!work.path("refused.tar.zst").exists());
    work.write("sidecar.yaml", "sidecar: false\n");
    // The pinned upstream chart renders too, straight from the cache.
    let why = work.bundle(&["find-images", "--why", &app]).ok();
    assert!(
        why.stdout
            .contains("release up (chart locked:upstream-demo)")
            && why
                .stdout
                .contains("template: upstream-demo/templates/deploy.yaml")
            && why.stdout.contains("template: demo/templates/deploy.yaml"),
        "{}",
        why.stdout
    );

    work.build("one.tar.zst", "cache", &[]).ok();
    work.build("two.tar.zst", "cache-b", &[]).ok();
    assert_eq!(work.read("one.tar.zst"), work.read("two.tar.zst"));
    // Offline, the pinned upstream chart comes from the cache.
    drop(server);
    work.build("three.tar.zst", "cache", &[]).ok();
    assert_eq!(work.read("one.tar.zst"), work.read("three.tar.zst"));
    let out = work.extract("one.tar.zst", "out");
    let ours = sha256_file(&out.join("charts/demo-0.1.0.tgz"));
    let theirs = sha256_file(&out.join("charts/upstream-demo-1.2.0.tgz"));
    assert_eq!(theirs, lock.charts[0].digest.hex());
    let index = std::fs::read_to_string(out.join("charts/index.yaml")).unwrap();
    assert!(index.contains(&ours) && index.contains(&theirs), "{index}");
    test_support::run(
        "helm",
        &[
            "template",
            "x",
            test_support::p(&out.join("charts/demo-0.1.0.tgz")),
        ],
        &work.path(""),
    )
    .ok();

    // Loaded into a registry, helm pulls each chart with the bundle's digest.
    let loaded = installer_load(&work, "one.tar.zst", &target.host()).ok();
    let summary: Value = serde_json::from_str(loaded.stdout.trim()).unwrap();
    assert_eq!(
        (
            &summary["images"],
            &summary["charts"],
            &summary["charts_loaded"]
        ),
        (&Value::from(1), &Value::from(2), &Value::from(2)),
        "{summary}"
    );
    for (chart, version, digest) in [
        ("demo", "0.1.0", &ours),
        ("upstream-demo", "1.2.0", &theirs),
    ] {
        let dir = work.path(&format!("pulled-load/{chart}"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("oci://{}/charts/{chart}", target.host());
        test_support::run(
            "helm",
            &[
                "pull",
                &url,
                "--version",
                version,
                "--plain-http",
                "-d",
                test_support::p(&dir),
            ],
            &work.path(""),
        )
        .ok();
        assert_eq!(
            &pulled_digest(&dir),
            digest,
            "{chart} from the loaded registry"
        );
    }

    // Served straight from the bundle, likewise.
    let (public, secret) = test_support::test_key("charts");
    work.bundle(&["sign", "one.tar.zst", "--key", test_support::p(&secret)])
        .ok();
    let serve = test_support::serve::Serve::start(&work.path("one.tar.zst"), &public, None);
    let dir = work.path("pulled-serve");
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("oci://{}/charts/demo", serve.host());
    test_support::run(
        "helm",
        &[
            "pull",
            &url,
            "--version",
            "0.1.0",
            "--plain-http",
            "-d",
            test_support::p(&dir),
        ],
        &work.path(""),
    )
    .ok();
    assert_eq!(pulled_digest(&dir), ours, "demo from installer serve");
}

/// The build runs the stack chart's capacity check for every profile on the site releases.toml
/// renders it with: a profile whose Synapse pools outgrow PostgreSQL's `max_connections` stops
/// the build, naming the profile and the arithmetic, before anything is packed.
#[test]
fn a_profile_whose_pools_exceed_max_connections_stops_the_build() {
    tools();
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    work.push_single(&registry, "team/app", 96);
    let app = format!("{host}/team/app:v1");
    work.write(
        "images.toml",
        &images_toml(Some(&host), &[(&app, Some(&["linux/amd64"][..]))]),
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    test_support::run(
        "cp",
        &[
            "-r",
            test_support::p(&repo.join("charts/messenger")),
            "chart-src",
        ],
        &work.path(""),
    )
    .ok();
    std::fs::copy(
        repo.join("tests/fixtures/site/site.yaml"),
        work.path("site.yaml"),
    )
    .unwrap();
    let profile = std::fs::read_to_string(work.path("chart-src/profiles/1k.yaml")).unwrap();
    let greedy = profile.replacen(
        "    synchrotron:\n      replicas: 2",
        "    synchrotron:\n      replicas: 40",
        1,
    );
    assert_ne!(
        greedy, profile,
        "the 1k profile no longer sets synchrotron replicas"
    );
    std::fs::write(work.path("chart-src/profiles/1k.yaml"), greedy).unwrap();
    std::fs::create_dir_all(work.path("charts")).unwrap();
    std::fs::rename(work.path("chart-src"), work.path("charts/messenger")).unwrap();
    work.write(
        "releases.toml",
        "[profiles]\n\"1k\" = [\"charts/messenger/profiles/1k.yaml\"]\n\n[[release]]\n\
         name = \"messenger\"\nnamespace = \"matrix\"\nchart = \"charts/messenger\"\n\
         values = [\"site.yaml\"]\n",
    );
    work.lock(&[]).ok();
    let refused = work.build("b.tar.zst", "cache", &[]).failed();
    assert!(
        refused.stderr.contains("profile 1k fails connections")
            && refused.stderr.contains("synapse synchrotron"),
        "{}",
        refused.stderr
    );
    assert!(!work.path("b.tar.zst").exists());
}
