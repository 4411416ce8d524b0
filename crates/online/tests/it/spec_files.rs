//! The repository's own spec files: `images.toml` loads, is well-formed, and lists every
//! component the stack needs.

use std::path::Path;

use oci::Platform;
use online::spec::ImagesFile;

fn images_toml() -> ImagesFile {
    let path = test_support::workspace_root().join("images.toml");
    match ImagesFile::load(&path) {
        Ok(file) => file,
        Err(e) => panic!("{e}"),
    }
}

/// Every component the stack runs, as a repository path (the part after the registry). An
/// image matches when its repository is this path or ends with `/` and this path.
const COMPONENTS: &[&str] = &[
    // Matrix
    "matrixdotorg/synapse",
    "vectorim/element-web",
    "synapse-admin",
    "library/haproxy",
    // Calls
    "livekit/livekit-server",
    "element-hq/lk-jwt-service",
    "coturn/coturn",
    // Antivirus
    "clamav/clamav",
    "vectorim/matrix-content-scanner",
    // Data
    "cloudnative-pg/cloudnative-pg",
    "cloudnative-pg/postgresql",
    "cloudnative-pg/pgbouncer",
    "cloudnative-pg/plugin-barman-cloud",
    "cloudnative-pg/plugin-barman-cloud-sidecar",
    "dxflrs/garage",
    "valkey/valkey",
    "rclone/rclone",
    // Monitoring
    "prometheus/prometheus",
    "prometheus/alertmanager",
    "prometheus-operator/prometheus-operator",
    "prometheus-operator/prometheus-config-reloader",
    "grafana/grafana",
    "kiwigrid/k8s-sidecar",
    "grafana/loki",
    "grafana/alloy",
    "kube-state-metrics/kube-state-metrics",
    "prometheus/node-exporter",
    // Certificates
    "jetstack/cert-manager-controller",
    "jetstack/cert-manager-webhook",
    "jetstack/cert-manager-cainjector",
    "jetstack/cert-manager-acmesolver",
    "jetstack/cert-manager-startupapicheck",
    // Gateway API
    "envoyproxy/gateway",
    "envoyproxy/envoy",
    // Cluster
    "pause",
];

fn matches(repository: &str, component: &str) -> bool {
    repository == component || repository.ends_with(&format!("/{component}"))
}

#[test]
fn images_toml_loads() {
    let file = images_toml();
    assert!(!file.images.is_empty());
    assert_eq!(
        file.platforms,
        vec![Platform::linux("amd64"), Platform::linux("arm64")],
        "the default platforms are amd64 and arm64"
    );
}

#[test]
fn images_toml_has_no_duplicates() {
    // Parsing refuses duplicates already; check the normalised references once more so a
    // change in that rule cannot let two entries for one image through unnoticed.
    let file = images_toml();
    let mut seen = std::collections::BTreeMap::new();
    for image in &file.images {
        if let Some(first) = seen.insert(image.reference.to_string(), image.line) {
            panic!(
                "images.toml:{}: {} duplicates line {first}",
                image.line, image.reference
            );
        }
    }
}

#[test]
fn every_image_has_a_platform_and_a_pinned_tag() {
    let file = images_toml();
    for image in &file.images {
        assert!(
            !image.platforms.is_empty(),
            "images.toml:{}: {} has no platform",
            image.line,
            image.written
        );
        assert!(
            image.platforms.contains(&Platform::linux("amd64")),
            "images.toml:{}: {} lacks linux/amd64",
            image.line,
            image.written
        );
        let tag = image.reference.tag.as_deref().unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "images.toml:{}: {} must name a release tag",
            image.line,
            image.written
        );
        // Written fully qualified, so nobody has to know Docker's defaults to read the file.
        assert_eq!(
            image.written,
            image.reference.to_string(),
            "images.toml:{}: write the normalised reference",
            image.line
        );
    }
}

#[test]
fn every_component_is_listed() {
    let file = images_toml();
    let missing: Vec<&str> = COMPONENTS
        .iter()
        .copied()
        .filter(|c| {
            !file
                .images
                .iter()
                .any(|i| matches(&i.reference.repository, c))
        })
        .collect();
    assert!(missing.is_empty(), "images.toml lacks: {missing:?}");
}

#[test]
fn clamav_carries_no_databases() {
    // Signatures come from the bundle's signature-database image, never from the clamd image.
    let file = images_toml();
    for image in file
        .images
        .iter()
        .filter(|i| matches(&i.reference.repository, "clamav/clamav"))
    {
        let tag = image.reference.tag.as_deref().unwrap_or("");
        assert!(
            tag.ends_with("_base"),
            "{} is not a _base tag",
            image.written
        );
    }
}

#[test]
fn images_can_be_found_by_repository() {
    let file = images_toml();
    for name in [
        "docker.io/matrixdotorg/synapse",
        "haproxy",
        "registry.k8s.io/pause",
    ] {
        assert!(file.find(name).is_some(), "{name}");
    }
}

/// tools.toml carries helm and kubectl for every target platform of images.toml.
#[test]
fn tools_toml_covers_every_target_platform() {
    let path = test_support::workspace_root().join("tools.toml");
    let tools = online::spec::ToolsFile::load(&path).unwrap();
    tools.check_platforms(&images_toml().platforms).unwrap();
    let names: Vec<&str> = tools.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["helm", "kubectl"]);
}

/// charts.toml parses and pins every upstream chart the stack installs.
#[test]
fn charts_toml_lists_the_upstream_charts() {
    let path = test_support::workspace_root().join("charts.toml");
    let charts = online::spec::ChartsFile::load(&path).unwrap();
    let names: Vec<&str> = charts.charts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "cert-manager",
            "cloudnative-pg",
            "plugin-barman-cloud",
            "kube-prometheus-stack",
            "loki",
            "alloy",
            "gateway-helm"
        ]
    );
}

/// releases.toml: our chart, rendered with the official helm for every scale profile, runs
/// only images that images.toml lists (the upstream charts render once the lock pins them,
/// which needs the public registries).
#[test]
fn our_chart_renders_only_listed_images_in_every_profile() {
    require_helm();
    let root = test_support::workspace_root();
    let mut plan = online::spec::RenderPlan::parse(
        &std::fs::read_to_string(root.join("releases.toml")).unwrap(),
        &root.join("releases.toml"),
    )
    .unwrap();
    assert_eq!(plan.profiles.len(), 5);
    plan.releases.retain(|r| {
        !r.chart
            .written
            .starts_with(online::spec::releases::LOCKED_PREFIX)
    });
    assert_eq!(plan.releases.len(), 1);
    plan.check_files().unwrap();
    let findings = online::discover::discover(&plan, Path::new("helm")).unwrap();
    let report = online::discover::check(&findings, &images_toml());
    report.ensure_complete(&root.join("images.toml")).unwrap();
    for image in [
        "docker.io/matrixdotorg/synapse",
        "ghcr.io/cloudnative-pg/postgresql",
    ] {
        assert!(
            findings
                .iter()
                .any(|f| f.image.to_string().starts_with(image)),
            "{image} is not rendered"
        );
    }
}

fn require_helm() {
    let found = std::process::Command::new("helm")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "helm is missing: install it with scripts/install-helm.sh"
    );
}
