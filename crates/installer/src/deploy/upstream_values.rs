//! The values files of the upstream releases (`charts/upstream/*.yaml`): compiled into the
//! installer with `releases.toml`, which names them, and written into the work directory for
//! helm when the plan renders those releases. What each file sets: docs/upstream-values.md.

use std::path::{Path, PathBuf};

use online::spec::Release;
use serde_norway::Value;

use super::DeployError;

/// Every values file `releases.toml` names for an upstream release: the path as
/// `releases.toml` writes it, and the file's text.
pub const FILES: &[(&str, &str)] = &[
    (
        "charts/upstream/cert-manager.yaml",
        include_str!("../../../../charts/upstream/cert-manager.yaml"),
    ),
    (
        "charts/upstream/cnpg.yaml",
        include_str!("../../../../charts/upstream/cnpg.yaml"),
    ),
    (
        "charts/upstream/barman-cloud.yaml",
        include_str!("../../../../charts/upstream/barman-cloud.yaml"),
    ),
    (
        "charts/upstream/monitoring.yaml",
        include_str!("../../../../charts/upstream/monitoring.yaml"),
    ),
    (
        "charts/upstream/loki.yaml",
        include_str!("../../../../charts/upstream/loki.yaml"),
    ),
    (
        "charts/upstream/alloy.yaml",
        include_str!("../../../../charts/upstream/alloy.yaml"),
    ),
    (
        "charts/upstream/gateway.yaml",
        include_str!("../../../../charts/upstream/gateway.yaml"),
    ),
];

/// The compiled-in text of the values file `written` (as `releases.toml` writes it).
pub fn text(written: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(path, _)| *path == written)
        .map(|(_, text)| *text)
}

/// Writes the values files of `release` under `dir` (each at its `releases.toml` path below
/// it) and returns their paths, in the release's order. A file this installer does not carry
/// is an error naming the release and the line of `releases.toml` that names the file.
pub fn write(release: &Release, dir: &Path) -> Result<Vec<PathBuf>, DeployError> {
    let mut paths = Vec::with_capacity(release.values.len());
    for file in &release.values {
        let text = text(&file.written).ok_or_else(|| DeployError::Bundle {
            what: format!(
                "release {} (releases.toml line {})",
                release.name, file.line
            ),
            message: format!(
                "values file {} is not compiled into this installer (it carries: {})",
                file.written,
                FILES
                    .iter()
                    .map(|(path, _)| *path)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        // Only paths of FILES get here: relative, without `..`, so they stay below `dir`.
        let path = dir.join(&file.written);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DeployError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
        paths.push(path);
    }
    Ok(paths)
}

/// The Secret (and cert-manager Certificate) in the monitoring namespace holding the site CA
/// as `ca.crt`; charts/upstream/monitoring.yaml mounts it into Alertmanager and Grafana.
pub const SITE_CA_SECRET: &str = "monitoring-site-ca";

/// Where Alertmanager finds the site CA (`alertmanagerSpec.secrets` mounts each Secret at
/// /etc/alertmanager/secrets/<name>/).
const ALERTMANAGER_CA_FILE: &str = "/etc/alertmanager/secrets/monitoring-site-ca/ca.crt";

/// The string at `path` in `values`, if set and not empty.
fn string<'a>(values: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = values;
    for key in path {
        v = v.get(*key)?;
    }
    v.as_str().filter(|s| !s.is_empty())
}

/// Prometheus's `retentionSize` for a volume of `storage` (`<n>Gi` or `<n>Ti`): 85% of it,
/// in Prometheus's base-2 GB, so compaction never fills the volume.
fn retention_size(storage: &str) -> Option<String> {
    let gib: u64 = match storage.strip_suffix("Ti") {
        Some(n) => n.parse::<u64>().ok()?.checked_mul(1024)?,
        None => storage.strip_suffix("Gi")?.parse().ok()?,
    };
    Some(format!("{}GB", gib * 85 / 100))
}

/// Builds a YAML mapping from pairs.
fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::String(k.into()), v))
            .collect(),
    )
}

fn s(text: &str) -> Value {
    Value::String(text.into())
}

/// The values the site decides for upstream release `release`, from the site release's
/// values (chart defaults, site file and profile, merged): `monitoring` gets Prometheus's
/// retention and volume, Alertmanager's receiver and the site-CA Certificate; `loki` its
/// retention periods and volume. `None` for every other release.
pub fn site_values(release: &str, site: &Value) -> Option<Value> {
    let storage_class = string(site, &["storageClass"]);
    let claim = |size: &str| {
        let mut spec = vec![
            ("accessModes", Value::Sequence(vec![s("ReadWriteOnce")])),
            (
                "resources",
                map([("requests", map([("storage", s(size))]))]),
            ),
        ];
        if let Some(class) = storage_class {
            spec.push(("storageClassName", s(class)));
        }
        Value::Mapping(
            spec.into_iter()
                .map(|(k, v)| (Value::String(k.into()), v))
                .collect(),
        )
    };
    match release {
        "monitoring" => {
            let mut out = serde_norway::Mapping::new();
            let mut spec = serde_norway::Mapping::new();
            if let Some(retention) = string(site, &["monitoring", "prometheus", "retention"]) {
                spec.insert(s("retention"), s(retention));
            }
            if let Some(size) = string(site, &["monitoring", "prometheus", "storage"]) {
                if let Some(bound) = retention_size(size) {
                    spec.insert(s("retentionSize"), s(&bound));
                }
                spec.insert(
                    s("storageSpec"),
                    map([("volumeClaimTemplate", map([("spec", claim(size))]))]),
                );
            }
            out.insert(
                s("prometheus"),
                map([("prometheusSpec", Value::Mapping(spec))]),
            );
            if let Some(config) = alertmanager_config(site) {
                out.insert(s("alertmanager"), map([("config", config)]));
            }
            if let Some(issuer) = string(site, &["tls", "clusterIssuer"]) {
                out.insert(
                    s("extraManifests"),
                    Value::Sequence(vec![site_ca_certificate(issuer)]),
                );
            }
            Some(Value::Mapping(out))
        }
        "loki" => {
            let mut limits = serde_norway::Mapping::new();
            if let Some(period) = string(site, &["monitoring", "logs", "retention"]) {
                limits.insert(s("retention_period"), s(period));
            }
            if let Some(period) = string(site, &["monitoring", "logs", "auditRetention"]) {
                limits.insert(
                    s("retention_stream"),
                    Value::Sequence(vec![map([
                        ("selector", s(r#"{stream="audit"}"#)),
                        ("priority", Value::Number(1.into())),
                        ("period", s(period)),
                    ])]),
                );
            }
            let mut out = serde_norway::Mapping::new();
            out.insert(s("loki"), map([("limits_config", Value::Mapping(limits))]));
            if let Some(size) = string(site, &["monitoring", "logs", "storage"]) {
                let mut persistence = serde_norway::Mapping::new();
                persistence.insert(s("enabled"), Value::Bool(true));
                persistence.insert(s("size"), s(size));
                if let Some(class) = storage_class {
                    persistence.insert(s("storageClass"), s(class));
                }
                out.insert(
                    s("singleBinary"),
                    map([("persistence", Value::Mapping(persistence))]),
                );
            }
            Some(Value::Mapping(out))
        }
        _ => None,
    }
}

/// Alertmanager's receivers and route for the site's `monitoring.alerts.receiver`: `None`
/// for `none` (the chart's default, a receiver that sends nothing). The chart validates
/// that the receiver's fields are set. Watchdog (always firing) still goes nowhere.
fn alertmanager_config(site: &Value) -> Option<Value> {
    let alerts = |key: &str, field: &str| string(site, &["monitoring", "alerts", key, field]);
    let tls = map([("ca_file", s(ALERTMANAGER_CA_FILE))]);
    let site_receiver = match string(site, &["monitoring", "alerts", "receiver"])? {
        "email" => {
            let require_tls = site
                .get("monitoring")
                .and_then(|m| m.get("alerts"))
                .and_then(|a| a.get("email"))
                .and_then(|e| e.get("requireTLS"))
                .and_then(Value::as_bool)
                .unwrap_or(true);
            map([
                ("name", s("site")),
                (
                    "email_configs",
                    Value::Sequence(vec![map([
                        ("to", s(alerts("email", "to")?)),
                        ("from", s(alerts("email", "from")?)),
                        ("smarthost", s(alerts("email", "smarthost")?)),
                        ("require_tls", Value::Bool(require_tls)),
                        ("send_resolved", Value::Bool(true)),
                        ("tls_config", tls),
                    ])]),
                ),
            ])
        }
        "webhook" => map([
            ("name", s("site")),
            (
                "webhook_configs",
                Value::Sequence(vec![map([
                    ("url", s(alerts("webhook", "url")?)),
                    ("send_resolved", Value::Bool(true)),
                    ("http_config", map([("tls_config", tls)])),
                ])]),
            ),
        ]),
        _ => return None,
    };
    Some(map([
        (
            "receivers",
            Value::Sequence(vec![map([("name", s("null"))]), site_receiver]),
        ),
        (
            "route",
            map([
                ("receiver", s("site")),
                (
                    "routes",
                    Value::Sequence(vec![map([
                        (
                            "matchers",
                            Value::Sequence(vec![s(r#"alertname = "Watchdog""#)]),
                        ),
                        ("receiver", s("null")),
                    ])]),
                ),
            ]),
        ),
    ]))
}

/// The Certificate whose Secret carries the site CA (`ca.crt`, put there by cert-manager's
/// CA issuer) into the monitoring namespace.
fn site_ca_certificate(issuer: &str) -> Value {
    map([
        ("apiVersion", s("cert-manager.io/v1")),
        ("kind", s("Certificate")),
        ("metadata", map([("name", s(SITE_CA_SECRET))])),
        (
            "spec",
            map([
                ("secretName", s(SITE_CA_SECRET)),
                ("commonName", s(SITE_CA_SECRET)),
                (
                    "privateKey",
                    map([
                        ("algorithm", s("ECDSA")),
                        ("size", Value::Number(256.into())),
                    ]),
                ),
                (
                    "issuerRef",
                    map([
                        ("group", s("cert-manager.io")),
                        ("kind", s("ClusterIssuer")),
                        ("name", s(issuer)),
                    ]),
                ),
            ]),
        ),
    ])
}

/// Writes [`site_values`] of `release` as `<dir>/site/<release>.yaml`, the last values file
/// helm reads for it; `None` when the site decides nothing for it.
pub fn write_site(release: &str, site: &Value, dir: &Path) -> Result<Option<PathBuf>, DeployError> {
    let Some(values) = site_values(release, site) else {
        return Ok(None);
    };
    let text = serde_norway::to_string(&values).map_err(|e| DeployError::Bundle {
        what: format!("site values of release {release}"),
        message: e.to_string(),
    })?;
    let path = dir.join("site").join(format!("{release}.yaml"));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| DeployError::io(parent, e))?;
    }
    std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Component;

    use online::spec::{RenderPlan, LOCKED_PREFIX};

    use super::*;

    /// The releases that get their `values` from this table: all but the site's release,
    /// which takes the site file and its profile instead.
    fn upstream(plan: &RenderPlan) -> Vec<&Release> {
        plan.releases.iter().filter(|r| !r.profiles).collect()
    }

    #[test]
    fn releases_toml_and_the_table_name_the_same_files() {
        let plan = super::super::releases().unwrap();
        let named: BTreeSet<&str> = upstream(&plan)
            .iter()
            .flat_map(|r| r.values.iter().map(|v| v.written.as_str()))
            .collect();
        let carried: BTreeSet<&str> = FILES.iter().map(|(path, _)| *path).collect();
        let not_carried: Vec<_> = named.difference(&carried).collect();
        assert!(
            not_carried.is_empty(),
            "releases.toml names values files upstream_values::FILES does not carry: \
             {not_carried:?}"
        );
        let not_named: Vec<_> = carried.difference(&named).collect();
        assert!(
            not_named.is_empty(),
            "upstream_values::FILES carries files releases.toml does not name: {not_named:?}"
        );
        assert_eq!(carried.len(), FILES.len(), "a file is listed twice");
    }

    #[test]
    fn every_upstream_release_has_a_values_file_of_its_own() {
        let plan = super::super::releases().unwrap();
        for release in upstream(&plan) {
            assert!(
                release.chart.written.starts_with(LOCKED_PREFIX),
                "{} is not a locked chart",
                release.name
            );
            let own = format!("charts/upstream/{}.yaml", release.name);
            assert!(
                release.values.iter().any(|v| v.written == own),
                "release {} (releases.toml line {}) does not name {own}",
                release.name,
                release.line
            );
        }
    }

    #[test]
    fn the_table_holds_the_files_as_they_are_on_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (path, text) in FILES {
            assert!(
                Path::new(path)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{path} is not a plain relative path"
            );
            let on_disk = std::fs::read_to_string(root.join(path)).unwrap();
            assert_eq!(&on_disk, text, "{path}");
        }
    }

    #[test]
    fn write_puts_every_file_of_a_release_in_order_and_refuses_unknown_ones() {
        let plan = super::super::releases().unwrap();
        let monitoring = plan
            .releases
            .iter()
            .find(|r| r.name == "monitoring")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = write(monitoring, dir.path()).unwrap();
        assert_eq!(
            paths,
            [dir.path().join("charts/upstream/monitoring.yaml")],
            "one file, at its releases.toml path"
        );
        assert_eq!(
            std::fs::read_to_string(&paths[0]).unwrap(),
            text("charts/upstream/monitoring.yaml").unwrap()
        );

        let mut unknown = monitoring.clone();
        let mut extra = unknown.values[0].clone();
        extra.written = "charts/upstream/extra.yaml".into();
        extra.line = 99;
        unknown.values.push(extra);
        let e = write(&unknown, dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "release monitoring (releases.toml line 99): values file \
                 charts/upstream/extra.yaml is not compiled into this installer"
            ),
            "{e}"
        );
    }

    fn site(extra: &str) -> Value {
        let text = format!(
            "storageClass: fast\ntls: {{clusterIssuer: site-ca}}\nmonitoring:\n  \
             prometheus: {{retention: 15d, storage: 50Gi}}\n  \
             logs: {{retention: 720h, auditRetention: 8760h, storage: 20Gi}}\n{extra}"
        );
        serde_norway::from_str(&text).unwrap()
    }

    #[test]
    fn the_site_sizes_prometheus_and_trusts_its_ca() {
        let v = site_values("monitoring", &site("  alerts: {receiver: none}\n")).unwrap();
        let spec = &v["prometheus"]["prometheusSpec"];
        assert_eq!(spec["retention"].as_str(), Some("15d"));
        assert_eq!(spec["retentionSize"].as_str(), Some("42GB"));
        let claim = &spec["storageSpec"]["volumeClaimTemplate"]["spec"];
        assert_eq!(claim["storageClassName"].as_str(), Some("fast"));
        assert_eq!(
            claim["resources"]["requests"]["storage"].as_str(),
            Some("50Gi")
        );
        assert!(
            v.get("alertmanager").is_none(),
            "receiver none: the chart's"
        );
        let cert = &v["extraManifests"][0];
        assert_eq!(cert["kind"].as_str(), Some("Certificate"));
        assert_eq!(cert["spec"]["secretName"].as_str(), Some(SITE_CA_SECRET));
        assert_eq!(cert["spec"]["issuerRef"]["name"].as_str(), Some("site-ca"));
        assert_eq!(retention_size("2Ti").as_deref(), Some("1740GB"));
        assert_eq!(retention_size("512Mi"), None);
    }

    #[test]
    fn the_site_receiver_becomes_alertmanagers_route() {
        let email = site_values(
            "monitoring",
            &site(
                "  alerts:\n    receiver: email\n    email: {to: ops@site.internal, \
                 from: am@site.internal, smarthost: 'smtp.site.internal:25', requireTLS: false}\n",
            ),
        )
        .unwrap();
        let config = &email["alertmanager"]["config"];
        assert_eq!(config["route"]["receiver"].as_str(), Some("site"));
        let smtp = &config["receivers"][1]["email_configs"][0];
        assert_eq!(smtp["to"].as_str(), Some("ops@site.internal"));
        assert_eq!(smtp["smarthost"].as_str(), Some("smtp.site.internal:25"));
        assert_eq!(smtp["require_tls"].as_bool(), Some(false));
        assert_eq!(
            smtp["tls_config"]["ca_file"].as_str(),
            Some(ALERTMANAGER_CA_FILE)
        );
        let webhook = site_values(
            "monitoring",
            &site(
                "  alerts: {receiver: webhook, webhook: {url: 'https://hook.site.internal/am'}}\n",
            ),
        )
        .unwrap();
        let hook = &webhook["alertmanager"]["config"]["receivers"][1]["webhook_configs"][0];
        assert_eq!(hook["url"].as_str(), Some("https://hook.site.internal/am"));
        assert_eq!(
            webhook["alertmanager"]["config"]["route"]["routes"][0]["receiver"].as_str(),
            Some("null"),
            "Watchdog still goes nowhere"
        );
    }

    #[test]
    fn the_site_sets_lokis_retention_and_volume_and_nothing_else() {
        let v = site_values("loki", &site("")).unwrap();
        let limits = &v["loki"]["limits_config"];
        assert_eq!(limits["retention_period"].as_str(), Some("720h"));
        assert_eq!(
            limits["retention_stream"][0]["selector"].as_str(),
            Some(r#"{stream="audit"}"#)
        );
        assert_eq!(
            limits["retention_stream"][0]["period"].as_str(),
            Some("8760h")
        );
        let pv = &v["singleBinary"]["persistence"];
        assert_eq!(pv["size"].as_str(), Some("20Gi"));
        assert_eq!(pv["storageClass"].as_str(), Some("fast"));
        for other in ["alloy", "cnpg", "cert-manager", "gateway", "barman-cloud"] {
            assert!(site_values(other, &site("")).is_none(), "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write_site("loki", &site(""), dir.path()).unwrap().unwrap();
        assert_eq!(path, dir.path().join("site/loki.yaml"));
        let back: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, v);
        assert!(write_site("alloy", &site(""), dir.path())
            .unwrap()
            .is_none());
    }
}
