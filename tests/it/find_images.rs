//! `bundle find-images` and the discovery library against fixture charts rendered by the real
//! helm binary: images hidden in operator flags, environment variables, custom resources,
//! init containers, CronJobs and profile-only components are all found, with their template
//! and field; images.toml is checked against them.

use online::discover::{check, discover, Finding};
use online::spec::ImagesFile;
use online::spec::RenderPlan;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/find-images")
}

fn helm() -> PathBuf {
    test_support::require("helm", "scripts/install-helm.sh");
    PathBuf::from("helm")
}

fn find_images(args: &[&str]) -> test_support::Run {
    let fixture = fixture();
    let releases = fixture.join("releases.toml");
    let mut all = vec!["find-images", "--releases", releases.to_str().unwrap()];
    all.extend_from_slice(args);
    test_support::bundle(&all, &fixture)
}

/// The findings of the fixture, as (image, template, field, profiles).
fn places(findings: &[Finding]) -> Vec<(String, String, String, Vec<String>)> {
    findings
        .iter()
        .map(|f| {
            (
                f.image.to_string(),
                f.template.clone(),
                f.field.clone(),
                f.profiles.clone(),
            )
        })
        .collect()
}

fn place(
    image: &str,
    template: &str,
    field: &str,
    profiles: &[&str],
) -> (String, String, String, Vec<String>) {
    (
        image.to_string(),
        template.to_string(),
        field.to_string(),
        profiles.iter().map(|p| p.to_string()).collect(),
    )
}

#[test]
fn every_hidden_image_is_found_with_its_template_and_field() {
    let plan = RenderPlan::load(&fixture().join("releases.toml")).unwrap();
    let findings = discover(&plan, &helm()).unwrap();
    let both = ["small", "large"];
    let containers = "spec.template.spec.containers[0]";
    let expected = vec![
        place(
            "docker.io/clamav/clamav:1.5",
            "app/templates/rescan.yaml",
            "spec.jobTemplate.spec.template.spec.containers[0].image",
            &both,
        ),
        place(
            "docker.io/library/busybox:1.37",
            "app/templates/synapse.yaml",
            "spec.template.spec.initContainers[0].image",
            &both,
        ),
        place(
            "docker.io/matrixdotorg/synapse:v1.142.0",
            "app/templates/synapse.yaml",
            &format!("{containers}.image"),
            &both,
        ),
        place(
            "docker.io/vectorim/matrix-content-scanner:v1.3.0",
            "app/templates/scanner.yaml",
            &format!("{containers}.image"),
            &["large"],
        ),
        place(
            "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0",
            "operator/templates/cnpg.yaml",
            &format!("{containers}.image"),
            &[],
        ),
        place(
            "ghcr.io/cloudnative-pg/pgbouncer:1.25.0",
            "app/templates/postgres.yaml",
            "spec.template.spec.containers[0].image",
            &both,
        ),
        place(
            "ghcr.io/cloudnative-pg/pgbouncer:1.25.0",
            "operator/templates/cnpg.yaml",
            &format!("{containers}.env[1].value"),
            &[],
        ),
        place(
            "ghcr.io/cloudnative-pg/postgresql:17.6",
            "operator/templates/cnpg.yaml",
            &format!("{containers}.env[0].value"),
            &[],
        ),
        place(
            "ghcr.io/cloudnative-pg/postgresql:18.0",
            "app/templates/postgres.yaml",
            "spec.imageName",
            &both,
        ),
        place(
            "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0",
            "operator/templates/prometheus-operator.yaml",
            &format!("{containers}.args[1]"),
            &[],
        ),
        place(
            "quay.io/prometheus-operator/prometheus-operator:v0.93.0",
            "operator/templates/prometheus-operator.yaml",
            &format!("{containers}.image"),
            &[],
        ),
    ];
    assert_eq!(places(&findings), expected);

    // Objects and releases are named; the release's own values file won over the chart's.
    let cluster = findings
        .iter()
        .find(|f| f.field == "spec.imageName")
        .unwrap();
    assert_eq!(
        (cluster.kind.as_str(), cluster.object.as_str()),
        ("Cluster", "main")
    );
    assert_eq!(
        (cluster.release.as_str(), cluster.chart.as_str()),
        ("messenger", "charts/app")
    );
    let busybox = &findings[1];
    assert_eq!(busybox.written, "busybox:1.37");
    assert!(!findings
        .iter()
        .any(|f| f.image.to_string().contains("postgresql:16.0")));
    // The untagged --prometheus-default-base-image is a base name, not an image.
    assert!(!findings
        .iter()
        .any(|f| f.image.repository == "prometheus/prometheus"));

    // Against the fixture's images.toml: nothing missing, haproxy unused.
    let images = ImagesFile::load(&fixture().join("images.toml")).unwrap();
    let report = check(&findings, &images);
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let unused: Vec<_> = report.unused.iter().map(|u| u.written.as_str()).collect();
    assert_eq!(unused, ["haproxy:3.2-alpine"]);
    report.ensure_complete(&images.path).unwrap();
}

#[test]
fn a_profile_only_image_needs_its_profile() {
    let plan = RenderPlan::load(&fixture().join("releases.toml"))
        .unwrap()
        .only_profiles(&["small".to_string()])
        .unwrap();
    let findings = discover(&plan, &helm()).unwrap();
    assert!(!findings
        .iter()
        .any(|f| f.image.repository == "vectorim/matrix-content-scanner"));
    assert!(findings
        .iter()
        .filter(|f| f.release == "messenger")
        .all(|f| f.profiles == ["small"]));

    // On the command line, the scanner is then listed but unused: a warning only.
    let run = find_images(&["--profile", "small"]).ok();
    assert!(
        run.stderr.contains(
            "warning: docker.io/vectorim/matrix-content-scanner:v1.3.0 (images.toml:31) is listed but no release renders it"
        ),
        "{}",
        run.stderr
    );
    let run = find_images(&["--profile", "medium"]).failed();
    assert!(
        run.stderr.contains("profile \"medium\" is not in")
            && run.stderr.contains("known: small, large"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_listing_names_every_place_and_warns_about_unused_images() {
    helm();
    let run = find_images(&[]).ok();
    assert!(
        run.stdout.contains(
            "ghcr.io/cloudnative-pg/postgresql:17.6\n  operators: operator/templates/cnpg.yaml \
             Deployment/operators-cnpg spec.template.spec.containers[0].env[0].value\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "docker.io/vectorim/matrix-content-scanner:v1.3.0\n  messenger: app/templates/scanner.yaml \
             Deployment/content-scanner spec.template.spec.containers[0].image [profiles: large]\n"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "10 image(s) in 11 place(s); 0 missing from images.toml; 1 listed but unused"
        ),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains(
            "warning: haproxy:3.2-alpine (images.toml:35) is listed but no release renders it"
        ),
        "{}",
        run.stderr
    );

    let run = find_images(&["--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["images"].as_array().unwrap().len(), 10);
    assert_eq!(
        doc["unused"][0]["ref"],
        "docker.io/library/haproxy:3.2-alpine"
    );
    let reloader = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["image"] == "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.0")
        .unwrap();
    assert_eq!(reloader["listed"], true);
    assert_eq!(
        reloader["places"][0]["field"],
        "spec.template.spec.containers[0].args[1]"
    );
    assert_eq!(
        reloader["places"][0]["object"],
        "operators-prometheus-operator"
    );
}

#[test]
fn an_image_missing_from_images_toml_fails_naming_template_and_field() {
    helm();
    let dir = tempfile::tempdir().unwrap();
    let listed = std::fs::read_to_string(fixture().join("images.toml")).unwrap();
    let without = listed.replace(
        "ref = \"ghcr.io/cloudnative-pg/postgresql:17.6\"",
        "ref = \"ghcr.io/cloudnative-pg/postgresql:17.5\"",
    );
    assert_ne!(listed, without);
    let images = dir.path().join("images.toml");
    std::fs::write(&images, without).unwrap();

    let run = find_images(&["--images", images.to_str().unwrap()]).failed();
    assert!(
        run.stdout
            .contains("ghcr.io/cloudnative-pg/postgresql:17.6  [NOT IN images.toml]"),
        "{}",
        run.stdout
    );
    let expected = format!(
        "error: 1 rendered image(s) not in {}:\n  ghcr.io/cloudnative-pg/postgresql:17.6\n    \
         release operators (chart charts/operator), template operator/templates/cnpg.yaml, \
         Deployment/operators-cnpg, field spec.template.spec.containers[0].env[0].value\n",
        images.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    // The unused 17.5 is a warning beside the error.
    assert!(
        run.stderr
            .contains("warning: ghcr.io/cloudnative-pg/postgresql:17.5"),
        "{}",
        run.stderr
    );

    // In JSON mode the one document is the error.
    let run = find_images(&["--images", images.to_str().unwrap(), "--json"]).failed();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert!(doc["error"]
        .as_str()
        .unwrap()
        .contains("operator/templates/cnpg.yaml"));
}

#[test]
fn why_explains_one_image() {
    helm();
    let run = find_images(&["--why", "ghcr.io/cloudnative-pg/pgbouncer:1.25.0"]).ok();
    assert_eq!(
        run.stdout,
        "ghcr.io/cloudnative-pg/pgbouncer:1.25.0 is rendered in 2 place(s):\n\
         \x20 release messenger (chart charts/app)\n\
         \x20   template: app/templates/postgres.yaml\n\
         \x20   object:   Pooler/main-pooler\n\
         \x20   field:    spec.template.spec.containers[0].image\n\
         \x20   value:    ghcr.io/cloudnative-pg/pgbouncer:1.25.0\n\
         \x20   profiles: small, large\n\
         \x20 release operators (chart charts/operator)\n\
         \x20   template: operator/templates/cnpg.yaml\n\
         \x20   object:   Deployment/operators-cnpg\n\
         \x20   field:    spec.template.spec.containers[0].env[1].value\n\
         \x20   value:    ghcr.io/cloudnative-pg/pgbouncer:1.25.0\n\
         \x20   profiles: all (the release is rendered without profiles)\n"
    );
    let run = find_images(&["--why", "busybox", "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["places"][0]["image"], "docker.io/library/busybox:1.37");
    assert_eq!(
        doc["places"][0]["field"],
        "spec.template.spec.initContainers[0].image"
    );
    let run = find_images(&["--why", "haproxy:3.2-alpine"]).ok();
    assert_eq!(
        run.stdout,
        "haproxy:3.2-alpine is never rendered by any release\n"
    );
}

#[test]
fn a_failing_render_names_release_profile_and_helm_error() {
    let helm = helm();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("broken");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: broken\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/x.yaml"),
        "kind: {{ required \"set kind\" .Values.kind }}\n",
    )
    .unwrap();
    std::fs::write(chart.join("big.yaml"), "other: 1\n").unwrap();
    let plan = dir.path().join("releases.toml");
    std::fs::write(
        &plan,
        "[profiles]\nbig = [\"broken/big.yaml\"]\n[[release]]\nname = \"b\"\nnamespace = \"x\"\nchart = \"broken\"\n",
    )
    .unwrap();
    let e = discover(&RenderPlan::load(&plan).unwrap(), &helm)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("helm template failed for release b (chart broken, profile big): Error:"),
        "{e}"
    );
    assert!(e.contains("set kind"), "{e}");

    let e = discover(
        &RenderPlan::load(&plan).unwrap(),
        Path::new("/nonexistent/helm"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with(
            "cannot run helm (/nonexistent/helm); install it with scripts/install-helm.sh"
        ),
        "{e}"
    );
}

#[test]
fn a_packaged_chart_renders_like_its_directory() {
    let helm = helm();
    let dir = tempfile::tempdir().unwrap();
    let chart = fixture().join("charts/operator");
    test_support::run(
        helm.to_str().unwrap(),
        &[
            "package",
            chart.to_str().unwrap(),
            "-d",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    )
    .ok();
    let values = fixture().join("values/operator.yaml");
    let plan = dir.path().join("releases.toml");
    std::fs::write(
        &plan,
        format!(
            "[[release]]\nname = \"operators\"\nnamespace = \"operators\"\nchart = \"operator-0.1.0.tgz\"\nvalues = [{:?}]\n",
            values.to_str().unwrap()
        ),
    )
    .unwrap();
    let packaged = discover(&RenderPlan::load(&plan).unwrap(), &helm).unwrap();
    let fixture_plan = RenderPlan::load(&fixture().join("releases.toml")).unwrap();
    let from_dir: Vec<_> = discover(&fixture_plan, &helm)
        .unwrap()
        .into_iter()
        .filter(|f| f.release == "operators")
        .collect();
    assert_eq!(places(&packaged), places(&from_dir));
    assert_eq!(packaged.len(), 5);
    assert!(packaged.iter().all(|f| f.chart == "operator-0.1.0.tgz"));
}
