//! The deploy plan: every step in order, each release with its chart, values and the objects
//! to wait for, from `releases.toml`, the site file and the bundle's charts. Building it
//! renders every release (through the pinning post-renderer), so a plan exists only for a
//! site file the chart accepts and images the bundle carries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bundle_file::archive::ReadAt;
use bundle_file::Bundle;
use online::discover::{documents, image_fields, object_name};
use online::spec::{Release, RenderPlan, LOCKED_PREFIX};
use serde::Serialize;
use serde_norway::Value;

use super::charts::{self, BundleChart};
use super::namespaces::{self, PlannedNamespace};
use super::render::{Helm, ReleaseInput};
use super::site::{self, Site};
use super::steps::{wait_step_of, RELEASE_STEPS, STEPS, WAITED_KINDS, WAIT_STEPS};
use super::upstream_values;
use super::DeployError;
use crate::ca::CERT_MANAGER_NAMESPACE;
use crate::secrets::objects::{self, secrets, Parts};
use crate::secrets::SiteSecrets;

/// The release whose Grafana takes its admin login from the installer's Secret.
const MONITORING_RELEASE: &str = "monitoring";

/// The label that names an object's part of the stack.
const PART: &str = "app.kubernetes.io/name";

/// The whole deploy, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// The site file.
    pub site: PathBuf,
    /// Its scale profile.
    pub profile: String,
    /// The namespaces the releases go into, with their Pod Security levels.
    pub namespaces: Vec<PlannedNamespace>,
    /// The cert-manager ClusterIssuer of the site CA (site value `tls.clusterIssuer`), also
    /// the name of its Secret in cert-manager's namespace.
    pub issuer: String,
    /// The parts of the stack that decide its Secrets.
    pub parts: Parts,
    /// The site release's values: the chart's, the site file's and the profile's, merged
    /// as helm merges them (what the preflight checks the cluster against).
    #[serde(skip)]
    pub values: Value,
    /// Every step, in order, with what it does or why it is skipped.
    pub steps: Vec<Step>,
}

/// One step of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Its name (see `STEPS`).
    pub name: String,
    /// What it does.
    pub about: String,
    /// Why it does nothing this time, if it does not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The releases it installs, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<PlannedRelease>,
    /// Objects the installer itself creates in it (`Kind/name`, values never shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub creates: Vec<String>,
    /// The objects it waits for (`namespace/Kind/name`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<String>,
}

/// One release of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRelease {
    /// Release name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Chart name and version from the bundle.
    pub chart: String,
    /// Values files, in order (the site file, then the profile's file from the chart).
    pub values: Vec<String>,
    /// Objects rendered.
    pub objects: usize,
    /// Every image the pinned manifests name.
    pub images: Vec<String>,
    /// Objects whose readiness the step waits for (`namespace/Kind/name`).
    pub waits: Vec<String>,
}

/// A rendered, pinned release.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The release's plan.
    pub release: PlannedRelease,
    /// helm's inputs.
    pub input: ReleaseInput,
    /// Its pinned manifests.
    pub manifests: String,
}

/// What the plan is made from.
pub struct PlanInputs<'a> {
    /// The releases the installer deploys.
    pub releases: &'a RenderPlan,
    /// The site file.
    pub site: &'a Site,
    /// Only these releases (all when empty).
    pub only: &'a [String],
    /// Where charts and values are written.
    pub work: &'a Path,
}

/// Builds the plan: writes the charts out of `bundle`, renders every release that runs with
/// `helm` and collects waits. Every problem (a chart missing, a release helm refuses) is
/// reported together.
pub fn build<S: ReadAt>(
    bundle: &Bundle<S>,
    inputs: &PlanInputs<'_>,
    helm: &Helm,
) -> Result<(Plan, Vec<Rendered>), DeployError> {
    let site_release = site_release(inputs.releases)?;
    for name in inputs.only {
        if !inputs.releases.releases.iter().any(|r| r.name == *name) {
            return Err(DeployError::Unknown {
                what: "release".into(),
                name: name.clone(),
                known: names(inputs.releases.releases.iter().map(|r| r.name.as_str())),
            });
        }
    }
    for release in &inputs.releases.releases {
        if !RELEASE_STEPS.contains(&release.step.as_str()) {
            return Err(DeployError::Unknown {
                what: format!(
                    "step of release {} (releases.toml line {})",
                    release.name, release.line
                ),
                name: release.step.clone(),
                known: RELEASE_STEPS.join(", "),
            });
        }
    }
    let bundle_charts = charts::list(bundle)?;
    let chart_dir = inputs.work.join("charts");
    let mut problems = Vec::new();

    // The site release first: its values decide which other releases run.
    let site_chart = find_chart(&bundle_charts, site_release)?;
    let site_archive = charts::write(bundle, site_chart, &chart_dir)?;
    let profile_file = write_profile(&site_archive, inputs, site_chart)?;
    let mut values = match charts::read_file(&site_archive, "values.yaml")? {
        Some(text) => serde_norway::from_str(&text).map_err(|e| DeployError::Bundle {
            what: format!("{}:values.yaml", site_chart.member),
            message: e.to_string(),
        })?,
        None => site::empty(),
    };
    capacity::merge(&mut values, inputs.site.values.clone());
    let profile_values: Value = serde_norway::from_str(
        &std::fs::read_to_string(&profile_file).map_err(|e| DeployError::io(&profile_file, e))?,
    )
    .map_err(|e| DeployError::Bundle {
        what: profile_file.display().to_string(),
        message: e.to_string(),
    })?;
    capacity::merge(&mut values, profile_values);
    // The images the build made for this site: the download page's and clamd's.
    let built_images =
        super::built_images::write_values(bundle, &values, &inputs.work.join("values"))?;

    let mut steps: Vec<Step> = STEPS
        .iter()
        .map(|(name, about)| Step {
            name: name.to_string(),
            about: about.to_string(),
            skipped: None,
            releases: Vec::new(),
            creates: Vec::new(),
            waits: Vec::new(),
        })
        .collect();
    let mut rendered = Vec::new();
    for step in RELEASE_STEPS {
        for release in inputs.releases.releases.iter().filter(|r| r.step == *step) {
            if !inputs.only.is_empty() && !inputs.only.contains(&release.name) {
                continue;
            }
            if let Some(when) = &release.when {
                if !site::switch(&values, when) {
                    continue;
                }
            }
            let chart = match find_chart(&bundle_charts, release) {
                Ok(chart) => chart,
                Err(e) => {
                    problems.push(e.to_string());
                    continue;
                }
            };
            let input = if release.name == site_release.name {
                ReleaseInput {
                    name: release.name.clone(),
                    namespace: release.namespace.clone(),
                    chart: site_archive.clone(),
                    values: [inputs.site.path.clone(), profile_file.clone()]
                        .into_iter()
                        .chain(built_images.clone())
                        .collect(),
                }
            } else {
                // The release's values files, compiled in with releases.toml, then what the
                // site decides for it (monitoring's retention, volumes, receiver).
                let site_file = upstream_values::write_site(
                    &release.name,
                    &values,
                    &inputs.work.join("values"),
                )?;
                let values = match upstream_values::write(release, &inputs.work.join("values")) {
                    Ok(paths) => paths.into_iter().chain(site_file).collect(),
                    Err(e @ DeployError::Io { .. }) => return Err(e),
                    Err(e) => {
                        problems.push(e.to_string());
                        continue;
                    }
                };
                ReleaseInput {
                    name: release.name.clone(),
                    namespace: release.namespace.clone(),
                    chart: charts::write(bundle, chart, &chart_dir)?,
                    values,
                }
            };
            match helm.template(&input) {
                Ok(manifests) => {
                    let planned = describe(&input, chart, &manifests)?;
                    rendered.push(Rendered {
                        release: planned,
                        input,
                        manifests,
                    });
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    if !problems.is_empty() {
        return Err(DeployError::Plan(problems));
    }
    let issuer = match values.get("tls").and_then(|t| t.get("clusterIssuer")) {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => {
            return Err(DeployError::Site {
                path: inputs.site.path.clone(),
                message: "missing property 'tls.clusterIssuer'".into(),
            })
        }
    };
    let parts = Parts {
        turn: site::switch(&values, "turn.enabled")
            .then(|| rendered_namespace(&rendered, site_release, "DaemonSet", "-coturn"))
            .flatten(),
        garage: values
            .get("objectStorage")
            .and_then(|o| o.get("mode"))
            .and_then(Value::as_str)
            == Some("garage"),
        monitoring: rendered
            .iter()
            .find(|r| r.release.name == MONITORING_RELEASE)
            .map(|r| r.release.namespace.clone()),
        calls: site::switch(&values, "calls.enabled")
            .then(|| rendered_namespace(&rendered, site_release, "Deployment", "-livekit"))
            .flatten(),
        // Lawful intercept: where synapse-li is rendered (li.namespace).
        li: site::switch(&values, "li.enabled")
            .then(|| rendered_namespace(&rendered, site_release, "Deployment", "-synapse-li"))
            .flatten(),
    };
    let namespaces = namespaces::plan(&rendered);
    fill_steps(&mut steps, &rendered, inputs, site_release, &values);
    for step in &mut steps {
        match step.name.as_str() {
            "namespaces" => {
                step.creates = namespaces
                    .iter()
                    .map(|n| format!("Namespace/{} (enforce {})", n.name, n.enforce))
                    .collect()
            }
            "secrets" if step.skipped.is_none() => {
                let none = SiteSecrets::default();
                let objects = secrets(&site_release.name, &site_release.namespace, &none, &parts);
                step.creates = objects::names(&objects);
            }
            "ca-issuer" => {
                step.creates = vec![
                    format!("ClusterIssuer/{issuer}"),
                    format!("{CERT_MANAGER_NAMESPACE}/Secret/{issuer} (the site CA)"),
                ]
            }
            _ => {}
        }
    }
    Ok((
        Plan {
            site: inputs.site.path.clone(),
            profile: inputs.site.profile.clone(),
            namespaces,
            issuer,
            parts,
            values,
            steps,
        },
        rendered,
    ))
}

/// The namespace the site release renders its `kind` named `<release>-<suffix>` into, if it
/// renders one (coturn's DaemonSet, LiveKit's Deployment: the release's own namespace or the
/// TURN one).
fn rendered_namespace(
    rendered: &[Rendered],
    site_release: &Release,
    kind: &str,
    suffix: &str,
) -> Option<String> {
    let release = rendered
        .iter()
        .find(|r| r.release.name == site_release.name)?;
    documents(&release.manifests)
        .unwrap_or_default()
        .into_iter()
        .find(|d| {
            d.value.get("kind").and_then(Value::as_str) == Some(kind)
                && object_name(&d.value).ends_with(suffix)
        })
        .map(|d| {
            d.value
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .unwrap_or(&release.input.namespace)
                .to_string()
        })
}

/// The release that takes the site file and its profile: the one rendered per profile.
fn site_release(releases: &RenderPlan) -> Result<&Release, DeployError> {
    let mut site = releases.releases.iter().filter(|r| r.profiles);
    match (site.next(), site.next()) {
        (Some(release), None) => Ok(release),
        _ => Err(DeployError::Bundle {
            what: "releases.toml".into(),
            message: "exactly one release must take profiles (the site's chart)".into(),
        }),
    }
}

/// The bundle's chart of `release`: `charts/NAME` or `locked:NAME` names chart NAME.
fn find_chart<'a>(
    charts: &'a BTreeMap<String, BundleChart>,
    release: &Release,
) -> Result<&'a BundleChart, DeployError> {
    let written = &release.chart.written;
    let name = written.strip_prefix(LOCKED_PREFIX).unwrap_or_else(|| {
        written
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(written)
    });
    charts.get(name).ok_or_else(|| DeployError::MissingChart {
        chart: name.to_string(),
        release: release.name.clone(),
        line: release.line,
        carried: names(charts.keys().map(String::as_str)),
    })
}

/// Writes the profile's values file out of the chart; an unknown profile names the known.
fn write_profile(
    archive: &Path,
    inputs: &PlanInputs<'_>,
    chart: &BundleChart,
) -> Result<PathBuf, DeployError> {
    let profile = &inputs.site.profile;
    let text =
        charts::read_file(archive, &format!("profiles/{profile}.yaml"))?.ok_or_else(|| {
            DeployError::Site {
                path: inputs.site.path.clone(),
                message: format!(
                "profile {profile:?}: chart {}-{} has no profiles/{profile}.yaml (profiles: {})",
                chart.name,
                chart.version,
                names(inputs.releases.profiles.iter().map(|p| p.name.as_str()))
            ),
            }
        })?;
    let dir = inputs.work.join("values");
    std::fs::create_dir_all(&dir).map_err(|e| DeployError::io(&dir, e))?;
    let path = dir.join(format!("profile-{profile}.yaml"));
    std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
    Ok(path)
}

/// The plan entry of a rendered release: objects, images and waits.
fn describe(
    input: &ReleaseInput,
    chart: &BundleChart,
    manifests: &str,
) -> Result<PlannedRelease, DeployError> {
    let docs = documents(manifests).map_err(|bad| DeployError::Helm {
        release: input.name.clone(),
        message: format!("template {}: {}", bad.template, bad.message),
    })?;
    let mut images = BTreeSet::new();
    let mut waits = Vec::new();
    for doc in &docs {
        let fields = image_fields(&doc.value).map_err(|bad| DeployError::Helm {
            release: input.name.clone(),
            message: format!(
                "{}: field {}: {}",
                object_name(&doc.value),
                bad.field,
                bad.reason
            ),
        })?;
        images.extend(fields.into_iter().map(|f| f.written));
        if let Some(wait) = waited(&doc.value, &input.namespace) {
            waits.push(wait);
        }
    }
    Ok(PlannedRelease {
        name: input.name.clone(),
        namespace: input.namespace.clone(),
        chart: format!("{}-{}", chart.name, chart.version),
        values: input
            .values
            .iter()
            .map(|v| v.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(Option::unwrap_or_default)
            .collect(),
        objects: docs.len(),
        images: images.into_iter().collect(),
        waits,
    })
}

/// `namespace/Kind/name` of an object the deploy waits for.
fn waited(object: &Value, default_namespace: &str) -> Option<String> {
    let kind = object.get("kind")?.as_str()?;
    if !WAITED_KINDS.contains(&kind) {
        return None;
    }
    let metadata = object.get("metadata")?;
    let namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(default_namespace);
    Some(format!("{namespace}/{}", object_name(object)))
}

/// Fills each step's releases, waits and skip reasons.
fn fill_steps(
    steps: &mut [Step],
    rendered: &[Rendered],
    inputs: &PlanInputs<'_>,
    site_release: &Release,
    values: &Value,
) {
    let selected = |name: &str| inputs.only.is_empty() || inputs.only.iter().any(|o| o == name);
    for step in steps.iter_mut() {
        let name = step.name.as_str();
        if RELEASE_STEPS.contains(&name) {
            step.releases = inputs
                .releases
                .releases
                .iter()
                .filter(|r| r.step == name)
                .filter_map(|r| rendered.iter().find(|x| x.release.name == r.name))
                .map(|x| x.release.clone())
                .collect();
            step.waits = step.releases.iter().flat_map(|r| r.waits.clone()).collect();
            if name == "stack" {
                // The stack's objects are waited for part by part, in the wait steps.
                step.waits.clear();
            }
            // A release step that is also a wait step (li: the lawful-intercept instance is
            // part of the stack's release) waits for its part of the stack when no release of
            // its own belongs to it.
            if step.releases.is_empty() && WAIT_STEPS.iter().any(|(s, _)| *s == name) {
                step.waits = rendered
                    .iter()
                    .find(|x| x.release.name == site_release.name)
                    .map(|x| part_waits(&x.manifests, &x.input.namespace, name))
                    .unwrap_or_default();
            }
            if step.releases.is_empty() && step.waits.is_empty() {
                step.skipped = Some(release_skip_reason(inputs, name, values));
            }
        } else if WAIT_STEPS.iter().any(|(s, _)| *s == name) {
            let stack = rendered
                .iter()
                .find(|x| x.release.name == site_release.name);
            step.waits = stack
                .map(|x| part_waits(&x.manifests, &x.input.namespace, name))
                .unwrap_or_default();
            if step.waits.is_empty() {
                step.skipped = Some(match stack {
                    None => format!("release {} is not deployed this time", site_release.name),
                    Some(_) => "nothing of it is rendered for this site".to_string(),
                });
            }
        } else if matches!(name, "secrets" | "smoke") && !selected(&site_release.name) {
            step.skipped = Some(format!("release {} is not selected", site_release.name));
        }
    }
}

/// Why a release step installs nothing.
fn release_skip_reason(inputs: &PlanInputs<'_>, step: &str, values: &Value) -> String {
    let releases: Vec<&Release> = inputs
        .releases
        .releases
        .iter()
        .filter(|r| r.step == step)
        .collect();
    if releases.is_empty() {
        return "no release of this version belongs to it".to_string();
    }
    let reasons: Vec<String> = releases
        .iter()
        .map(|r| {
            if !inputs.only.is_empty() && !inputs.only.contains(&r.name) {
                format!("{}: not selected", r.name)
            } else if let Some(when) = r.when.as_deref().filter(|w| !site::switch(values, w)) {
                format!("{}: {when} is off", r.name)
            } else {
                format!("{}: not rendered", r.name)
            }
        })
        .collect();
    reasons.join("; ")
}

/// The waited objects of a release's manifests that belong to wait step `step`.
fn part_waits(manifests: &str, namespace: &str, step: &str) -> Vec<String> {
    let Ok(docs) = documents(manifests) else {
        return Vec::new();
    };
    docs.iter()
        .filter(|d| {
            d.value
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get(PART))
                .and_then(Value::as_str)
                .and_then(wait_step_of)
                == Some(step)
        })
        .filter_map(|d| waited(&d.value, namespace))
        .collect()
}

/// `a, b, c` (or `none`).
fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = items.collect();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}
