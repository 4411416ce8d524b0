//! The monitoring releases' site values (crates/installer/src/deploy/upstream_values.rs): the
//! site file's `monitoring.*` reaches helm for kube-prometheus-stack and Loki through the deploy
//! plan (stand-in charts that render the values helm gave them), the chart refuses a receiver
//! without its address, and, with the pinned charts (`UPSTREAM_CHARTS`, as
//! upstream_values.rs), Loki's configuration keeps logs as the site says, Alloy ships pod logs
//! and events, and Grafana, Alertmanager and Prometheus get the site CA, retention and volumes.

use crate::stack_chart::{documents, root, template};
use crate::upstream_values::values_seen;
use serde_norway::Value;
use std::path::PathBuf;

#[test]
fn the_site_file_sets_lokis_retention_and_volume_through_the_deploy_plan() {
    let (seen, files) = values_seen(
        "loki",
        "loki",
        "monitoring:\n  logs: {retention: 2160h, auditRetention: 17520h}\n",
    );
    assert_eq!(
        files,
        serde_json::json!(["loki.yaml", "loki.yaml"]),
        "ours, then the site's"
    );
    let limits = &seen["loki"]["limits_config"];
    assert_eq!(limits["retention_period"].as_str(), Some("2160h"));
    assert_eq!(
        limits["retention_stream"][0]["selector"].as_str(),
        Some(r#"{stream="audit"}"#)
    );
    assert_eq!(
        limits["retention_stream"][0]["period"].as_str(),
        Some("17520h")
    );
    // The compactor deletes what retention expires (charts/upstream/loki.yaml).
    assert_eq!(
        seen["loki"]["compactor"]["retention_enabled"].as_bool(),
        Some(true)
    );
    // The volume is the profile's (1k), layered after the site file as for every size.
    let pv = &seen["singleBinary"]["persistence"];
    assert_eq!(pv["size"].as_str(), Some("20Gi"));
    assert_eq!(pv["storageClass"].as_str(), Some("local-ssd"));
}

#[test]
fn the_site_sizes_prometheus_and_routes_alerts_through_the_deploy_plan() {
    let (seen, _) = values_seen(
        "kube-prometheus-stack",
        "monitoring",
        "monitoring:\n  alerts:\n    receiver: webhook\n    webhook: \
         {url: 'https://alerts.site.internal/hook'}\n",
    );
    let spec = &seen["prometheus"]["prometheusSpec"];
    assert_eq!(spec["retention"].as_str(), Some("15d"));
    // Profile 1k's volume, and the retention size below it.
    let claim = &spec["storageSpec"]["volumeClaimTemplate"]["spec"];
    assert_eq!(
        claim["resources"]["requests"]["storage"].as_str(),
        Some("20Gi")
    );
    assert_eq!(claim["storageClassName"].as_str(), Some("local-ssd"));
    assert_eq!(spec["retentionSize"].as_str(), Some("17GB"));
    let config = &seen["alertmanager"]["config"];
    assert_eq!(config["route"]["receiver"].as_str(), Some("site"));
    let hook = &config["receivers"][1]["webhook_configs"][0];
    assert_eq!(
        hook["url"].as_str(),
        Some("https://alerts.site.internal/hook")
    );
    assert_eq!(
        hook["http_config"]["tls_config"]["ca_file"].as_str(),
        Some("/etc/alertmanager/secrets/monitoring-site-ca/ca.crt")
    );
    assert_eq!(
        seen["alertmanager"]["alertmanagerSpec"]["secrets"][0].as_str(),
        Some("monitoring-site-ca"),
        "Alertmanager mounts the site CA it verifies with"
    );
    let cert = &seen["extraManifests"][0];
    assert_eq!(cert["kind"].as_str(), Some("Certificate"));
    assert_eq!(
        cert["spec"]["issuerRef"]["name"].as_str(),
        Some("messenger-ca")
    );
    // Dashboards by label, no downloads, no telemetry (charts/upstream/monitoring.yaml).
    let grafana = &seen["grafana"];
    assert_eq!(
        grafana["sidecar"]["dashboards"]["label"].as_str(),
        Some("grafana_dashboard")
    );
    assert_eq!(
        grafana["sidecar"]["dashboards"]["searchNamespace"].as_str(),
        Some("ALL")
    );
    assert_eq!(grafana["dashboards"], Value::Mapping(Default::default()));
    assert_eq!(
        grafana["grafana.ini"]["analytics"]["reporting_enabled"].as_bool(),
        Some(false)
    );
    assert_eq!(
        grafana["grafana.ini"]["analytics"]["check_for_updates"].as_bool(),
        Some(false)
    );
    assert_eq!(
        grafana["env"]["SSL_CERT_FILE"].as_str(),
        Some("/etc/site-ca/ca.crt")
    );
}

#[test]
fn the_chart_refuses_a_receiver_without_its_address() {
    let run = template("100", &["--set", "monitoring.alerts.receiver=email"]).failed();
    for key in ["to", "from", "smarthost"] {
        assert!(
            run.stderr.contains(&format!(
                "monitoring.alerts.email.{key}: required with receiver email"
            )),
            "{}",
            run.stderr
        );
    }
    let run = template("100", &["--set", "monitoring.alerts.receiver=webhook"]).failed();
    assert!(
        run.stderr
            .contains("monitoring.alerts.webhook.url: required with receiver webhook"),
        "{}",
        run.stderr
    );
    template(
        "100",
        &[
            "--set",
            "monitoring.alerts.receiver=webhook",
            "--set",
            "monitoring.alerts.webhook.url=https://alerts.site.internal/hook",
        ],
    )
    .ok();
}

/// The pinned chart `name` under `UPSTREAM_CHARTS` (`<name>/` or `<name>-<version>.tgz`).
fn pinned(name: &str) -> PathBuf {
    let dir = PathBuf::from(
        std::env::var_os("UPSTREAM_CHARTS").expect("UPSTREAM_CHARTS: a directory of the charts"),
    );
    if dir.join(name).join("Chart.yaml").is_file() {
        return dir.join(name);
    }
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| {
            let file = f.file_name().unwrap().to_string_lossy().into_owned();
            file.strip_prefix(&format!("{name}-"))
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit() || c == 'v'))
                && file.ends_with(".tgz")
        })
        .unwrap_or_else(|| panic!("no {name} under {}", dir.display()))
}

/// `helm template` of the pinned chart with our values file and the site's values for the
/// release (from the example site with `extra`), parsed.
fn render_pinned(chart: &str, release: &str, extra: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let site = crate::deploy::site(dir.path(), "1k", extra);
    // The site release's values as the installer merges them (chart, site, profile).
    let merged = {
        let chart_values: Value = serde_norway::from_str(
            &std::fs::read_to_string(root().join("charts/messenger/values.yaml")).unwrap(),
        )
        .unwrap();
        let mut values = chart_values;
        for file in [
            site.clone(),
            root().join("charts/messenger/profiles/1k.yaml"),
        ] {
            let layer: Value =
                serde_norway::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            capacity::merge(&mut values, layer);
        }
        values
    };
    let ours = root().join(format!("charts/upstream/{release}.yaml"));
    let site_values =
        installer::deploy::upstream_values::write_site(release, &merged, dir.path()).unwrap();
    let mut args = vec![
        "template".to_string(),
        release.to_string(),
        pinned(chart).display().to_string(),
        "-n".into(),
        "monitoring".into(),
        "--kube-version".into(),
        "1.33.0".into(),
        "-f".into(),
        ours.display().to_string(),
    ];
    if let Some(path) = site_values {
        args.push("-f".into());
        args.push(path.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = test_support::run("helm", &args, dir.path()).ok();
    documents(&run.stdout)
}

#[test]
#[ignore = "needs the pinned chart archives: UPSTREAM_CHARTS=DIR (see docs/upstream-values.md)"]
fn rendered_with_the_pinned_charts_logs_are_kept_and_shipped_as_the_site_says() {
    let loki = render_pinned(
        "loki",
        "loki",
        "monitoring:\n  logs: {retention: 2160h, auditRetention: 17520h}\n",
    );
    let config = loki
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ConfigMap" | "Secret")))
        .filter_map(|d| {
            d["data"]["config.yaml"]
                .as_str()
                .or(d["stringData"]["config.yaml"].as_str())
        })
        .next()
        .expect("Loki's config.yaml");
    let config: Value = serde_norway::from_str(config).unwrap();
    assert_eq!(
        config["limits_config"]["retention_period"].as_str(),
        Some("2160h")
    );
    assert_eq!(
        config["limits_config"]["retention_stream"][0]["period"].as_str(),
        Some("17520h")
    );
    assert_eq!(
        config["compactor"]["retention_enabled"].as_bool(),
        Some(true)
    );
    let claim = loki
        .iter()
        .find(|d| d["kind"].as_str() == Some("StatefulSet"))
        .map(|s| s["spec"]["volumeClaimTemplates"][0]["spec"].clone())
        .unwrap();
    assert_eq!(
        claim["resources"]["requests"]["storage"].as_str(),
        Some("20Gi")
    );
    assert_eq!(claim["storageClassName"].as_str(), Some("local-ssd"));

    let alloy = render_pinned("alloy", "alloy", "");
    assert!(alloy
        .iter()
        .any(|d| d["kind"].as_str() == Some("Deployment")));
    let pipeline = alloy
        .iter()
        .find_map(|d| d["data"]["config.alloy"].as_str())
        .expect("Alloy's config.alloy");
    for component in [
        "loki.source.kubernetes \"pods\"",
        "loki.source.kubernetes_events \"events\"",
        "url = \"http://loki:3100/loki/api/v1/push\"",
    ] {
        assert!(
            pipeline.contains(component),
            "{component} not in:\n{pipeline}"
        );
    }

    let kps = render_pinned("kube-prometheus-stack", "monitoring", "");
    let of = |kind: &'static str| kps.iter().filter(move |d| d["kind"].as_str() == Some(kind));
    let prometheus = of("Prometheus").next().expect("a Prometheus");
    assert_eq!(prometheus["spec"]["retention"].as_str(), Some("15d"));
    assert_eq!(
        prometheus["spec"]["storage"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]
            ["storage"]
            .as_str(),
        Some("20Gi")
    );
    let alertmanager = of("Alertmanager").next().expect("an Alertmanager");
    assert_eq!(
        alertmanager["spec"]["secrets"][0].as_str(),
        Some("monitoring-site-ca")
    );
    let cert = of("Certificate")
        .find(|c| c["metadata"]["name"].as_str() == Some("monitoring-site-ca"))
        .expect("the site CA Certificate");
    assert_eq!(
        cert["spec"]["issuerRef"]["name"].as_str(),
        Some("messenger-ca")
    );
    let grafana = of("Deployment")
        .find(|d| d["metadata"]["name"].as_str() == Some("monitoring-grafana"))
        .expect("Grafana");
    let text = serde_norway::to_string(grafana).unwrap();
    for needle in [
        "SSL_CERT_FILE",
        "/etc/site-ca",
        "monitoring-site-ca",
        "grafana_dashboard",
    ] {
        assert!(text.contains(needle), "Grafana lacks {needle}");
    }
}

/// The cert-manager release as releases.toml deploys it: (name, namespace).
fn cert_manager_release() -> (String, String) {
    let release = crate::stack_chart::locked_release("cert-manager");
    let field = |k: &str| release[k].as_str().unwrap().to_string();
    (field("name"), field("namespace"))
}

/// Rendered documents with every `kind: List` replaced by its items.
fn flatten(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .flat_map(|d| match d["kind"].as_str() {
            Some("List") => d["items"].as_sequence().cloned().unwrap_or_default(),
            _ => vec![d],
        })
        .collect()
}

/// Whether `labels` hold every `matchLabels` pair of `selector` (the only form used here).
fn matches_labels(selector: &Value, labels: &Value) -> bool {
    let want = selector["matchLabels"].as_mapping().unwrap();
    assert!(selector["matchExpressions"].is_null());
    !want.is_empty() && want.iter().all(|(k, v)| &labels[k.as_str().unwrap()] == v)
}

/// cert-manager installs before the monitoring CRDs, so the monitoring release scrapes it: its
/// ServiceMonitor (charts/upstream/monitoring.yaml) is selected by the rendered Prometheus and
/// selects, in cert-manager's namespace, exactly the controller's Service as the pinned
/// cert-manager chart renders it with our values, on its metrics port.
#[test]
#[ignore = "needs the pinned chart archives: UPSTREAM_CHARTS=DIR (see docs/upstream-values.md)"]
fn rendered_with_the_pinned_charts_prometheus_scrapes_cert_managers_controller() {
    let (name, namespace) = cert_manager_release();
    let dir = tempfile::tempdir().unwrap();
    let ours = root().join("charts/upstream/cert-manager.yaml");
    let chart = pinned("cert-manager");
    let args = [
        "template",
        name.as_str(),
        chart.to_str().unwrap(),
        "-n",
        namespace.as_str(),
        "--kube-version",
        "1.33.0",
        "-f",
        ours.to_str().unwrap(),
    ];
    let cert_manager = flatten(documents(
        &test_support::run("helm", &args, dir.path()).ok().stdout,
    ));
    let services: Vec<&Value> = cert_manager
        .iter()
        .filter(|d| d["kind"].as_str() == Some("Service"))
        .collect();
    assert!(services.len() >= 3, "controller, webhook, cainjector");
    assert!(
        !cert_manager
            .iter()
            .any(|d| d["kind"].as_str() == Some("NetworkPolicy")),
        "cert-manager's namespace has policies: let Prometheus in"
    );

    let kps = flatten(render_pinned("kube-prometheus-stack", "monitoring", ""));
    let prometheus = kps
        .iter()
        .find(|d| d["kind"].as_str() == Some("Prometheus"))
        .expect("a Prometheus");
    let monitor = kps
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("ServiceMonitor")
                && d["metadata"]["name"].as_str() == Some("cert-manager")
        })
        .expect("the cert-manager ServiceMonitor");
    // The Prometheus selects it (by label, in any namespace).
    assert!(matches_labels(
        &prometheus["spec"]["serviceMonitorSelector"],
        &monitor["metadata"]["labels"]
    ));
    assert_eq!(
        prometheus["spec"]["serviceMonitorNamespaceSelector"],
        Value::Mapping(Default::default())
    );
    // It selects the controller's Service, and only it, in cert-manager's namespace.
    let spec = &monitor["spec"];
    assert_eq!(
        spec["namespaceSelector"]["matchNames"],
        Value::from(vec![Value::from(namespace.clone())])
    );
    let selected: Vec<&&Value> = services
        .iter()
        .filter(|s| s["metadata"]["namespace"].as_str() == Some(namespace.as_str()))
        .filter(|s| matches_labels(&spec["selector"], &s["metadata"]["labels"]))
        .collect();
    assert_eq!(selected.len(), 1, "{selected:?}");
    let service = selected[0];
    assert_eq!(service["metadata"]["name"].as_str(), Some(name.as_str()));
    assert_eq!(
        service["spec"]["selector"]["app.kubernetes.io/component"].as_str(),
        Some("controller")
    );
    // On the Service's metrics port, which reaches the controller container's.
    let endpoint = &spec["endpoints"][0];
    let port = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == endpoint["port"])
        .expect("the endpoint's port on the Service");
    assert_eq!(port["port"].as_u64(), Some(9402));
    let controller = cert_manager
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("Deployment")
                && matches_labels(
                    &Value::Mapping(
                        [(
                            Value::from("matchLabels"),
                            service["spec"]["selector"].clone(),
                        )]
                        .into_iter()
                        .collect(),
                    ),
                    &d["spec"]["template"]["metadata"]["labels"],
                )
        })
        .expect("the controller Deployment");
    let container_ports: Vec<u64> = controller["spec"]["template"]["spec"]["containers"][0]
        ["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|p| p["containerPort"].as_u64())
        .collect();
    let target = port.get("targetPort").unwrap_or(&port["port"]);
    assert!(
        container_ports.contains(&target.as_u64().unwrap()),
        "{target:?} not in {container_ports:?}"
    );
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    // The metrics' own namespace and name (the Certificate's) are kept, as the
    // CertificateExpiringSoon rule's description reads them.
    assert_eq!(endpoint["honorLabels"].as_bool(), Some(true));
}
