//! `installer deploy --dry-run` end to end with the real binaries: a signed bundle (made by
//! `bundle pack`) carrying the packaged messenger chart and, for every image of images.toml,
//! a small image of its own under that image's name; the real helm renders every profile
//! through the installer's post-renderer plugin. Checked: every image field becomes
//! `REGISTRY/PREFIX/<repo>@<the bundle's digest>`, core kinds pass `kubernetes-validate
//! --strict`, the plan's order and skips, and every refusal (unknown image, missing chart,
//! bad site file) names what is at fault and leaves no dry-run directory behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci::Reference;
use serde_json::{json, Value};
use test_support::{p, require, Run};

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
pub(crate) const REGISTRY: &str = "registry.site.internal:5000";
pub(crate) const PREFIX: &str = "mirror/matrix";

/// A signed bundle and what its index says.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) public: PathBuf,
    /// Image reference (as images.toml writes it) -> root digest in the bundle.
    digests: BTreeMap<String, String>,
}

fn root() -> PathBuf {
    test_support::workspace_root()
}

/// Every image reference images.toml lists.
pub(crate) fn listed_images() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("images.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ref"].as_str().unwrap().to_string())
        .collect()
}

/// Writes `bytes` as a blob of the layout in `stage`; returns its descriptor fields.
fn blob(stage: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = test_support::images::sha256(bytes);
    let path = stage.join("blobs/sha256").join(&digest["sha256:".len()..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    (digest, bytes.len())
}

/// A bundle staged from an OCI layout naming `images` (each a one-config image of its own)
/// and the packaged messenger chart, packed and signed; returns name -> root digest.
fn pack(dir: &Path, out: &str, images: &[String], key: &Path) -> BTreeMap<String, String> {
    pack_with(dir, out, images, key, &[])
}

/// [`pack`] with further members `(path, bytes)`.
pub(crate) fn pack_with(
    dir: &Path,
    out: &str,
    images: &[String],
    key: &Path,
    members: &[(&str, &[u8])],
) -> BTreeMap<String, String> {
    let stage = dir.join("stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join("charts")).unwrap();
    for (path, bytes) in members {
        std::fs::write(stage.join(path), bytes).unwrap();
    }
    std::fs::write(
        stage.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let mut manifests = Vec::new();
    let mut digests = BTreeMap::new();
    for name in images {
        let config = json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}, "config": {"Labels": {"ref": name}}});
        let (config_digest, config_size) = blob(&stage, config.to_string().as_bytes());
        let manifest = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": []});
        let (digest, size) = blob(&stage, manifest.to_string().as_bytes());
        manifests.push(
            json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name}}),
        );
        digests.insert(name.clone(), digest);
    }
    std::fs::write(
        stage.join("index.json"),
        json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
    )
    .unwrap();
    let charts = stage.join("charts");
    test_support::run(
        "helm",
        &[
            "package",
            p(&root().join("charts/messenger")),
            "-d",
            p(&charts),
        ],
        dir,
    )
    .ok();
    test_support::run("helm", &["repo", "index", p(&charts)], dir).ok();
    test_support::pack_signed(dir, out, key, &[]);
    digests
}

pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        require("helm", "scripts/install-helm.sh");
        // A static is never dropped: the directory goes where `cargo clean` removes it.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let (public, secret) = test_support::test_key("deploy");
        let images = listed_images();
        let digests = pack(dir.path(), "bundle.tar.zst", &images, &secret);
        // The same bundle without HAProxy's image.
        let without: Vec<String> = images
            .iter()
            .filter(|i| !i.contains("haproxy"))
            .cloned()
            .collect();
        assert!(without.len() < images.len());
        pack(dir.path(), "no-haproxy.tar.zst", &without, &secret);
        Fixture {
            dir,
            public,
            digests,
        }
    })
}

/// A site file: the example's, with `profile` and `extra` lines appended over it.
pub(crate) fn site(dir: &Path, profile: &str, extra: &str) -> PathBuf {
    let example = std::fs::read_to_string(root().join("tests/fixtures/site/site.yaml")).unwrap();
    let text = example.replace("profile: \"1k\"", &format!("profile: \"{profile}\""));
    assert!(
        profile == "1k" || text != example,
        "the site fixture no longer writes `profile: \"1k\"`"
    );
    let path = dir.join(format!("site-{profile}.yaml"));
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path
}

/// `installer deploy BUNDLE --dry-run OUT ...` with the fixture's key and registry.
pub(crate) fn dry_run(bundle: &str, site: &Path, out: &Path, extra: &[&str]) -> Run {
    let f = fixture();
    dry_run_of(
        f.dir.path(),
        &f.dir.path().join(bundle),
        &f.public,
        site,
        out,
        extra,
    )
}

/// `installer deploy BUNDLE --key PUBLIC --config SITE --dry-run OUT ...` run in `dir`, with the
/// fixtures' registry and prefix.
pub(crate) fn dry_run_of(
    dir: &Path,
    bundle: &Path,
    public: &Path,
    site: &Path,
    out: &Path,
    extra: &[&str],
) -> Run {
    let mut args = vec![
        "deploy",
        p(bundle),
        "--key",
        p(public),
        "--config",
        p(site),
        "--registry",
        REGISTRY,
        "--prefix",
        PREFIX,
        "--dry-run",
        p(out),
    ];
    args.extend(extra);
    test_support::installer(&args, dir)
}

/// The plan.json a dry run wrote into `out`.
pub(crate) fn plan_json(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).unwrap()).unwrap()
}

/// Step `name` of a plan.json.
pub(crate) fn planned_step<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in the plan"))
}

/// Every value of an image field in `manifests`, by the find-images rules.
fn image_values(manifests: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for doc in online::discover::documents(manifests).unwrap() {
        for field in online::discover::image_fields(&doc.value).unwrap() {
            out.push((
                online::discover::object_name(&doc.value),
                field.field,
                field.written,
            ));
        }
    }
    out
}

#[test]
fn every_profile_is_pinned_to_the_bundle_and_core_kinds_validate() {
    require("kubernetes-validate", "scripts/setup.sh");
    let f = fixture();
    let work = tempfile::tempdir().unwrap();
    // Where each listed image must end up.
    let expected: BTreeMap<String, String> = f
        .digests
        .iter()
        .map(|(name, digest)| {
            let r = Reference::parse(name).unwrap();
            (
                r.repository.clone(),
                format!("{REGISTRY}/{PREFIX}/{}@{digest}", r.repository),
            )
        })
        .collect();
    let mut validate = vec!["--strict".to_string(), "--quiet".to_string()];
    for profile in PROFILES {
        let out = work.path().join(format!("out-{profile}"));
        dry_run(
            "bundle.tar.zst",
            &site(work.path(), profile, ""),
            &out,
            &["--only", "messenger"],
        )
        .ok();
        let manifests = std::fs::read_to_string(out.join("03-messenger.yaml")).unwrap();
        let images = image_values(&manifests);
        assert!(images.len() > 10, "{profile}: only {} images", images.len());
        for (object, field, value) in &images {
            let r = Reference::parse(value).unwrap();
            let repository = r.repository.strip_prefix(&format!("{PREFIX}/")).unwrap();
            assert_eq!(
                Some(value),
                expected.get(repository),
                "{profile}: {object} {field}"
            );
        }
        assert!(!manifests.contains("docker.io"), "{profile}");
        for file in ["01-namespaces.yaml", "03-messenger.yaml"] {
            validate.push(p(&out.join(file)).to_string());
        }
    }
    let args: Vec<&str> = validate.iter().map(String::as_str).collect();
    let run = test_support::run("kubernetes-validate", &args, work.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    crate::stack_chart::validated_but_custom_kinds(&format!("{}\n{}", run.stdout, run.stderr));
}

#[test]
fn the_plan_orders_steps_and_says_why_each_skipped_one_is_skipped() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = dry_run(
        "bundle.tar.zst",
        &site(work.path(), "1k", ""),
        &out,
        &["--json", "--only=messenger"],
    )
    .ok();
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    let plan = plan_json(&out);
    assert_eq!(doc["plan"], plan);
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "preflight",
            "load",
            "namespaces",
            "secrets",
            "operators",
            "ca-issuer",
            "stack",
            "data",
            "synapse",
            "clients",
            "calls",
            "antivirus",
            "monitoring",
            "li",
            "smoke"
        ]
    );
    let step = |name: &str| {
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()
            .clone()
    };
    let operators = step("operators")["skipped"].as_str().unwrap().to_string();
    assert!(
        operators.contains("cert-manager: not selected") && operators.contains("cnpg"),
        "{operators}"
    );
    let monitoring = step("monitoring")["skipped"].as_str().unwrap().to_string();
    assert!(monitoring.contains("not selected"), "{monitoring}");
    let stack = step("stack");
    assert_eq!(stack["releases"][0]["name"], "messenger");
    assert_eq!(stack["releases"][0]["chart"], "messenger-0.1.0");
    assert_eq!(
        stack["releases"][0]["values"],
        json!(["site-1k.yaml", "profile-1k.yaml"])
    );
    let waits = |name: &str| -> Vec<String> {
        step(name)["waits"]
            .as_array()
            .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert!(waits("data").contains(&"matrix/Cluster/messenger-pg".to_string()));
    assert!(waits("synapse")
        .iter()
        .any(|w| w.starts_with("matrix/StatefulSet/messenger-synapse")));
    assert!(waits("synapse").iter().any(|w| w.contains("haproxy")));
    assert!(waits("clients").iter().any(|w| w.contains("element")));
    assert!(waits("calls").iter().any(|w| w.contains("coturn")));
    // The chart's antivirus (on by default): clamd and the content scanner.
    assert!(waits("antivirus")
        .iter()
        .any(|w| w.ends_with("/Deployment/messenger-clamd")));
    assert!(waits("antivirus")
        .iter()
        .any(|w| w.ends_with("/Deployment/messenger-content-scanner")));
    // coturn runs on the host network in a namespace of its own, the only privileged one;
    // the release namespace enforces restricted.
    let namespaces: Vec<(&str, &str)> = plan["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["enforce"].as_str().unwrap()))
        .collect();
    assert!(
        namespaces.contains(&("matrix", "restricted")),
        "{namespaces:?}"
    );
    assert!(
        namespaces.contains(&("matrix-turn", "privileged")),
        "{namespaces:?}"
    );
    assert_eq!(
        namespaces
            .iter()
            .filter(|(_, e)| *e == "privileged")
            .count(),
        1,
        "{namespaces:?}"
    );
    let turn = plan["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "matrix-turn")
        .unwrap();
    assert!(turn["because"].as_str().unwrap().contains("hostNetwork"));
    assert_eq!(plan["issuer"], "messenger-ca");
    // The installer's Secrets are named in the plan; no file holds a Secret.
    let secrets = step("secrets")["creates"].clone();
    assert!(
        secrets
            .as_array()
            .unwrap()
            .contains(&json!("matrix/Secret/messenger-generated")),
        "{secrets}"
    );
    assert!(
        secrets
            .as_array()
            .unwrap()
            .contains(&json!("matrix-turn/Secret/messenger-turn-shared-secret")),
        "{secrets}"
    );
    assert!(
        secrets
            .as_array()
            .unwrap()
            .contains(&json!("matrix/Secret/messenger-garage")),
        "{secrets}"
    );
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let line = line.trim().trim_end_matches(',');
            assert!(
                line != "kind: Secret" && line != "\"kind\": \"Secret\"",
                "{} holds a Secret",
                path.display()
            );
        }
    }
    let files: Vec<String> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            Path::new(f.as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        files,
        [
            "01-namespaces.yaml",
            "02-ca-issuer.yaml",
            "03-messenger.yaml",
            "plan.json"
        ]
    );

    // TURN off: the calls step has nothing to wait for and the namespace is restricted.
    let example = std::fs::read_to_string(root().join("tests/fixtures/site/site.yaml")).unwrap();
    let no_turn = example.replace("turn:\n  enabled: true\n", "turn:\n  enabled: false\n");
    assert_ne!(no_turn, example);
    let no_turn_site = work.path().join("no-turn.yaml");
    std::fs::write(&no_turn_site, no_turn).unwrap();
    dry_run("bundle.tar.zst", &no_turn_site, &out, &["--only=messenger"]).ok();
    let plan = plan_json(&out);
    let calls = planned_step(&plan, "calls");
    assert!(calls["skipped"].as_str().is_some(), "{calls}");
    assert_eq!(plan["namespaces"][0]["enforce"], "restricted");
}

#[test]
fn an_image_the_bundle_lacks_is_refused_naming_release_object_and_field() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = dry_run(
        "no-haproxy.tar.zst",
        &site(work.path(), "1k", ""),
        &out,
        &["--only", "messenger"],
    )
    .failed();
    let e = &run.stderr;
    assert!(e.contains("release messenger"), "{e}");
    assert!(e.contains("Deployment/messenger-haproxy"), "{e}");
    assert!(e.contains("spec.template.spec.containers[0].image"), "{e}");
    assert!(e.contains("haproxy"), "{e}");
    assert!(!out.exists(), "a refused dry run leaves no directory");
}

#[test]
fn missing_upstream_charts_are_all_named() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let run = dry_run("bundle.tar.zst", &site(work.path(), "1k", ""), &out, &[]).failed();
    // Monitoring is on by default (the chart's monitoring.enabled): its charts are needed too.
    for chart in [
        "cert-manager",
        "cloudnative-pg",
        "plugin-barman-cloud",
        "gateway-helm",
        "kube-prometheus-stack",
        "loki",
        "alloy",
    ] {
        assert!(
            run.stderr.contains(&format!("needs chart {chart}")),
            "{chart}: {}",
            run.stderr
        );
    }
    // A site that turns monitoring off does not need them.
    let no_monitoring = site(work.path(), "1k", "monitoring:\n  enabled: false\n");
    let off = dry_run("bundle.tar.zst", &no_monitoring, &out, &[]).failed();
    for chart in ["kube-prometheus-stack", "loki", "alloy"] {
        assert!(
            !off.stderr.contains(&format!("needs chart {chart}")),
            "{chart}: {}",
            off.stderr
        );
    }
    assert!(
        off.stderr.contains("needs chart cert-manager"),
        "{}",
        off.stderr
    );
    assert!(run.stderr.contains("messenger"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn site_file_errors_are_reported_with_their_paths() {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let bad = site(work.path(), "1k", "bogusField: 1\n")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(&bad)
        .unwrap()
        .replace("serverName: example.test\n", "");
    std::fs::write(&bad, text).unwrap();
    let run = dry_run(
        "bundle.tar.zst",
        Path::new(&bad),
        &out,
        &["--only", "messenger"],
    )
    .failed();
    assert!(run.stderr.contains("serverName"), "{}", run.stderr);
    assert!(run.stderr.contains("bogusField"), "{}", run.stderr);
    // An unknown profile names the chart's profiles.
    let run = dry_run(
        "bundle.tar.zst",
        &site(work.path(), "50k", ""),
        &out,
        &["--only", "messenger"],
    )
    .failed();
    assert!(run.stderr.contains("profile \"50k\""), "{}", run.stderr);
    assert!(run.stderr.contains("1k"), "{}", run.stderr);
    // An existing directory that is not a dry run's is not replaced.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "mine").unwrap();
    let run = dry_run(
        "bundle.tar.zst",
        &site(work.path(), "1k", ""),
        &out,
        &["--only", "messenger"],
    )
    .failed();
    assert!(run.stderr.contains("not replacing"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "mine"
    );
}

/// A kubeconfig naming an API server on a loopback port nothing listens on (held for the
/// test by the returned reservation).
fn unreachable_kubeconfig(dir: &Path) -> (PathBuf, String, test_support::ports::Reserved) {
    let reserved = test_support::ports::reserve();
    let server = format!("127.0.0.1:{}", reserved.port());
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: site\n  cluster:\n    \
             server: https://{server}\nusers:\n- name: admin\n  user:\n    token: t\n\
             contexts:\n- name: site\n  context:\n    cluster: site\n    user: admin\n\
             current-context: site\n"
        ),
    )
    .unwrap();
    (path, server, reserved)
}

/// The real path, up to the API: the real kubectl finds no API server; the preflight reports
/// it, nothing is loaded or applied, and the local journal says where the deploy stopped.
#[test]
fn a_deploy_to_an_unreachable_cluster_stops_at_the_preflight_and_changes_nothing() {
    require("kubectl", "scripts/install-helm.sh");
    let f = fixture();
    let work = tempfile::tempdir().unwrap();
    let (kubeconfig, server, _port) = unreachable_kubeconfig(work.path());
    let journal = work.path().join("journal.json");
    let site = site(work.path(), "100", "");
    let bundle = f.dir.path().join("bundle.tar.zst");
    let run = test_support::installer(
        &[
            "--json",
            "deploy",
            p(&bundle),
            "--key",
            p(&f.public),
            "--config",
            p(&site),
            "--registry",
            REGISTRY,
            "--prefix",
            PREFIX,
            "--kubeconfig",
            p(&kubeconfig),
            "--journal",
            p(&journal),
            "--no-smoke",
            "--only",
            "messenger",
        ],
        work.path(),
    )
    .failed();
    let doc: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(doc["ok"], false);
    let error = doc["error"].as_str().unwrap();
    assert!(error.starts_with("step preflight failed"), "{error}");
    assert!(error.contains("nothing was changed"), "{error}");
    assert!(
        error.contains("the Kubernetes API does not answer") && error.contains(&server),
        "{error}"
    );
    let steps = doc["journal"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["name"], "preflight");
    assert_eq!(steps[0]["state"], "failed");
    assert!(journal.is_file());

    // status and rollback name the server they could not reach.
    let status = ["status", "--kubeconfig", p(&kubeconfig)];
    let rollback = [
        "rollback",
        "--kubeconfig",
        p(&kubeconfig),
        "--journal",
        p(&journal),
    ];
    for args in [&status[..], &rollback[..]] {
        let command = args[0];
        let run = test_support::installer(args, work.path()).failed();
        assert!(run.stderr.contains(&server), "{command}: {}", run.stderr);
    }
}
