//! `releases.toml`, the render plan: the releases the installer deploys and the scale
//! profiles layered on top of them.
//!
//! ```toml
//! kube_version = "1.33.0"            # optional: helm template --kube-version
//!
//! [profiles]                         # profile name -> values files layered last, in order
//! "1k" = ["charts/messenger/profiles/1k.yaml"]
//! "10k" = ["charts/messenger/profiles/10k.yaml"]
//!
//! [[release]]
//! name = "cnpg"                      # helm release name
//! namespace = "cnpg-system"
//! chart = "locked:cloudnative-pg"    # chart directory, packaged .tgz, or `locked:NAME`: the
//!                                    # upstream chart manifests.lock pins (from the cache)
//! values = ["values/cnpg.yaml"]      # -f files, in order (optional)
//! profiles = false                   # rendered once, without profiles (default true)
//! ```
//!
//! Paths are relative to the plan file. Rules, each reported as `FILE:LINE[:COLUMN]: message`:
//! unknown keys are errors; release names and namespaces are DNS labels; no release is listed
//! twice in one namespace; there is at least one release; when loaded from disk, every chart
//! and values file exists.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::spec::error::{line_of, read_text};
use crate::spec::{Location, SpecError};

/// How a release names an upstream chart pinned in manifests.lock.
pub const LOCKED_PREFIX: &str = "locked:";

/// The deploy step of a release that names none.
pub const DEFAULT_STEP: &str = "stack";

/// A parsed and validated render plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderPlan {
    /// The file it was read from (used in messages).
    pub path: PathBuf,
    /// Passed to `helm template --kube-version` when set.
    pub kube_version: Option<String>,
    /// The scale profiles, in file order.
    pub profiles: Vec<Profile>,
    /// The releases, in file order.
    pub releases: Vec<Release>,
}

/// One scale profile: values files layered on top of every release that takes profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name (`1k`).
    pub name: String,
    /// Its values files, in order.
    pub values: Vec<PlanFile>,
    /// Line of its entry.
    pub line: usize,
}

/// One `[[release]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The helm release name.
    pub name: String,
    /// The namespace it is installed into.
    pub namespace: String,
    /// The chart: a directory or a packaged `.tgz`.
    pub chart: PlanFile,
    /// Values files, in order.
    pub values: Vec<PlanFile>,
    /// Whether the release is rendered once per profile (`true`) or once without any.
    pub profiles: bool,
    /// The installer's deploy step the release belongs to (`step`, default [`DEFAULT_STEP`]).
    pub step: String,
    /// A boolean site value (dotted path, `monitoring.enabled`) that must be true for the
    /// installer to deploy the release; none means always.
    pub when: Option<String>,
    /// Line of the release's `name`.
    pub line: usize,
}

/// A path named in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// As written in the plan.
    pub written: String,
    /// Resolved against the plan's directory.
    pub path: PathBuf,
    /// Line where it is written.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    kube_version: Option<Spanned<String>>,
    #[serde(default)]
    profiles: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    release: Vec<Spanned<RawRelease>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelease {
    name: Spanned<String>,
    namespace: Spanned<String>,
    chart: Spanned<String>,
    #[serde(default)]
    values: Vec<Spanned<String>>,
    #[serde(default = "take_profiles")]
    profiles: bool,
    #[serde(default)]
    step: Option<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
}

fn take_profiles() -> bool {
    true
}

impl RenderPlan {
    /// Reads and parses `path`, then checks that every chart and values file exists.
    pub fn load(path: &Path) -> Result<RenderPlan, SpecError> {
        let text = read_text(path)?;
        let plan = RenderPlan::parse(&text, path)?;
        plan.check_files()?;
        Ok(plan)
    }

    /// Parses `text`; `path` names the file in messages, and relative paths are resolved
    /// against its directory. Files are not looked at.
    pub fn parse(text: &str, path: &Path) -> Result<RenderPlan, SpecError> {
        let raw: RawPlan =
            toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path))?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let at = |span: Range<usize>| Location::line(path, line_of(text, span.start));
        let file = |item: &Spanned<String>, what: &str| -> Result<PlanFile, SpecError> {
            let written = item.get_ref().clone();
            if written.trim().is_empty() {
                return Err(SpecError::invalid(
                    at(item.span()),
                    format!("{what} is empty"),
                ));
            }
            let path = if written.starts_with(LOCKED_PREFIX) {
                PathBuf::new()
            } else {
                base.join(&written)
            };
            Ok(PlanFile {
                path,
                written,
                line: line_of(text, item.span().start),
            })
        };

        let kube_version = match &raw.kube_version {
            Some(v) if v.get_ref().trim().is_empty() => {
                return Err(SpecError::invalid(at(v.span()), "kube_version is empty"))
            }
            Some(v) => Some(v.get_ref().clone()),
            None => None,
        };

        let mut profiles = Vec::with_capacity(raw.profiles.len());
        for (name, values) in &raw.profiles {
            let ok = !name.get_ref().is_empty()
                && name
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(SpecError::invalid(
                    at(name.span()),
                    format!(
                        "invalid profile name {:?} (letters, digits, '.', '_', '-')",
                        name.get_ref()
                    ),
                ));
            }
            profiles.push(Profile {
                name: name.get_ref().clone(),
                values: values
                    .iter()
                    .map(|v| file(v, "a values file"))
                    .collect::<Result<_, _>>()?,
                line: line_of(text, name.span().start),
            });
        }
        profiles.sort_by_key(|p| p.line);

        if raw.release.is_empty() {
            return Err(SpecError::invalid(
                Location::line(path, 0),
                "no [[release]] entries: the plan must name at least one release",
            ));
        }
        let mut releases: Vec<Release> = Vec::with_capacity(raw.release.len());
        for entry in &raw.release {
            let entry = entry.get_ref();
            check_label(&entry.name, "release name", 53)
                .map_err(|m| SpecError::invalid(at(entry.name.span()), m))?;
            check_label(&entry.namespace, "namespace", 63)
                .map_err(|m| SpecError::invalid(at(entry.namespace.span()), m))?;
            let line = line_of(text, entry.name.span().start);
            if let Some(first) = releases.iter().find(|r| {
                r.name == *entry.name.get_ref() && r.namespace == *entry.namespace.get_ref()
            }) {
                return Err(SpecError::invalid(
                    at(entry.name.span()),
                    format!(
                        "release {} in namespace {} is listed twice (first at line {})",
                        first.name, first.namespace, first.line
                    ),
                ));
            }
            releases.push(Release {
                name: entry.name.get_ref().clone(),
                namespace: entry.namespace.get_ref().clone(),
                chart: file(&entry.chart, "chart")?,
                values: entry
                    .values
                    .iter()
                    .map(|v| file(v, "a values file"))
                    .collect::<Result<_, _>>()?,
                profiles: entry.profiles,
                step: match &entry.step {
                    Some(step) => {
                        check_label(step, "step", 63)
                            .map_err(|m| SpecError::invalid(at(step.span()), m))?;
                        step.get_ref().clone()
                    }
                    None => DEFAULT_STEP.to_string(),
                },
                when: match &entry.when {
                    Some(when) => {
                        let ok = !when.get_ref().is_empty()
                            && when.get_ref().split('.').all(|k| {
                                !k.is_empty()
                                    && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                            });
                        if !ok {
                            return Err(SpecError::invalid(
                                at(when.span()),
                                format!(
                                    "when {:?} is not a dotted path of site values (turn.enabled)",
                                    when.get_ref()
                                ),
                            ));
                        }
                        Some(when.get_ref().clone())
                    }
                    None => None,
                },
                line,
            });
        }

        Ok(RenderPlan {
            path: path.to_path_buf(),
            kube_version,
            profiles,
            releases,
        })
    }

    /// The upstream charts the plan names as `locked:NAME`, by name.
    pub fn locked_charts(&self) -> Vec<&str> {
        self.releases
            .iter()
            .filter_map(|r| r.chart.written.strip_prefix(LOCKED_PREFIX))
            .collect()
    }

    /// Points every `locked:NAME` chart at the file `resolve` gives for NAME; a name it does
    /// not know is an error naming the plan's line.
    pub fn resolve_locked(
        &mut self,
        resolve: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<(), SpecError> {
        for release in &mut self.releases {
            if let Some(name) = release.chart.written.strip_prefix(LOCKED_PREFIX) {
                release.chart.path = resolve(name).ok_or_else(|| {
                    SpecError::invalid(
                        Location::line(&self.path, release.chart.line),
                        format!("manifests.lock pins no chart named {name:?}"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Checks that every chart and values file the plan names exists (`locked:` charts once
    /// resolved).
    pub fn check_files(&self) -> Result<(), SpecError> {
        let files = self
            .releases
            .iter()
            .flat_map(|r| std::iter::once(&r.chart).chain(&r.values))
            .chain(self.profiles.iter().flat_map(|p| &p.values))
            .filter(|f| !f.path.as_os_str().is_empty());
        for file in files {
            if !file.path.exists() {
                return Err(SpecError::invalid(
                    Location::line(&self.path, file.line),
                    format!("{} does not exist ({})", file.written, file.path.display()),
                ));
            }
        }
        Ok(())
    }

    /// The same plan with only the named profiles (all of them when `names` is empty).
    pub fn only_profiles(&self, names: &[String]) -> Result<RenderPlan, SpecError> {
        if let Some(unknown) = names
            .iter()
            .find(|n| !self.profiles.iter().any(|p| &p.name == *n))
        {
            return Err(SpecError::UnknownProfile {
                profile: unknown.clone(),
                plan: self.path.clone(),
                known: self
                    .profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let mut plan = self.clone();
        if !names.is_empty() {
            plan.profiles.retain(|p| names.contains(&p.name));
        }
        Ok(plan)
    }
}

/// An RFC 1123 label of at most `max` characters, as helm wants release names and
/// Kubernetes namespaces.
fn check_label(value: &Spanned<String>, what: &str, max: usize) -> Result<(), String> {
    let v = value.get_ref();
    let ok = !v.is_empty()
        && v.len() <= max
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} {v:?}: lower-case letters, digits and '-', at most {max} characters, \
             starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RenderPlan, SpecError> {
        RenderPlan::parse(text, Path::new("deploy/releases.toml"))
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(plan) => panic!("parsed: {plan:?}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = r#"kube_version = "1.33.0"

[profiles]
"1k" = ["charts/app/profiles/1k.yaml"]
"10k" = ["charts/app/profiles/10k.yaml", "extra.yaml"]

[[release]]
name = "cnpg"
namespace = "cnpg-system"
chart = "upstream/cloudnative-pg-0.29.0.tgz"
profiles = false

[[release]]
name = "messenger"
namespace = "matrix"
chart = "charts/app"
values = ["charts/app/values.yaml", "/etc/site.yaml"]
"#;

    #[test]
    fn parses_a_complete_plan() {
        let plan = parse(GOOD).unwrap();
        assert_eq!(plan.kube_version.as_deref(), Some("1.33.0"));
        let names: Vec<_> = plan.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["1k", "10k"], "file order, not sorted");
        assert_eq!(
            plan.profiles[1].values[1].path,
            Path::new("deploy/extra.yaml")
        );
        assert_eq!(plan.profiles[1].line, 5);
        let cnpg = &plan.releases[0];
        assert_eq!(
            (
                cnpg.name.as_str(),
                cnpg.namespace.as_str(),
                cnpg.profiles,
                cnpg.line
            ),
            ("cnpg", "cnpg-system", false, 8)
        );
        assert_eq!(
            cnpg.chart.path,
            Path::new("deploy/upstream/cloudnative-pg-0.29.0.tgz")
        );
        assert!(cnpg.values.is_empty());
        let app = &plan.releases[1];
        assert!(app.profiles);
        assert_eq!(app.values[0].written, "charts/app/values.yaml");
        assert_eq!(app.values[0].line, 17);
        assert_eq!(app.values[1].path, Path::new("/etc/site.yaml"));
    }

    #[test]
    fn shape_errors_name_line_and_column() {
        let e = error("[[release]]\nname = \"a\"\nnamespace = \"b\"\nchart = \"c\"\nvalue = []\n");
        assert!(
            e.starts_with("deploy/releases.toml:5:1: unknown field `value`"),
            "{e}"
        );
        let e = error("[[release]]\nname = \"a\"\nchart = \"c\"\n");
        assert!(e.contains("missing field `namespace`"), "{e}");
        let e = error("[profiles]\nsmall = \"x.yaml\"\n");
        assert!(e.starts_with("deploy/releases.toml:2:"), "{e}");
    }

    #[test]
    fn steps_and_switches_are_read_and_checked() {
        let base = "[[release]]\nname = \"a\"\nnamespace = \"x\"\nchart = \"c\"\n";
        let plan = parse(base).unwrap();
        assert_eq!(plan.releases[0].step, DEFAULT_STEP);
        assert_eq!(plan.releases[0].when, None);
        let plan = parse(&format!(
            "{base}step = \"operators\"\nwhen = \"turn.enabled\"\n"
        ))
        .unwrap();
        assert_eq!(plan.releases[0].step, "operators");
        assert_eq!(plan.releases[0].when.as_deref(), Some("turn.enabled"));
        let e = error(&format!("{base}step = \"Big\"\n"));
        assert!(e.starts_with("deploy/releases.toml:5: invalid step"), "{e}");
        let e = error(&format!("{base}when = \"turn..enabled\"\n"));
        assert!(
            e.starts_with("deploy/releases.toml:5: when \"turn..enabled\""),
            "{e}"
        );
    }

    #[test]
    fn rules_name_the_line() {
        let release = |name: &str, ns: &str| {
            format!("[[release]]\nname = \"{name}\"\nnamespace = \"{ns}\"\nchart = \"c\"\n")
        };
        assert_eq!(
            error(""),
            "deploy/releases.toml: no [[release]] entries: the plan must name at least one release"
        );
        assert!(error(&release("App", "x"))
            .starts_with("deploy/releases.toml:2: invalid release name \"App\""));
        assert!(error(&release("a", "-x")).starts_with("deploy/releases.toml:3: invalid namespace"));
        let twice = format!("{}{}", release("a", "x"), release("a", "x"));
        assert_eq!(
            error(&twice),
            "deploy/releases.toml:6: release a in namespace x is listed twice (first at line 2)"
        );
        let other_ns = format!("{}{}", release("a", "x"), release("a", "y"));
        assert_eq!(parse(&other_ns).unwrap().releases.len(), 2);
        let e = error(&format!(
            "[profiles]\n\"big one\" = []\n{}",
            release("a", "x")
        ));
        assert!(
            e.starts_with("deploy/releases.toml:2: invalid profile name"),
            "{e}"
        );
        let e = error("[[release]]\nname = \"a\"\nnamespace = \"x\"\nchart = \"\"\n");
        assert_eq!(e, "deploy/releases.toml:4: chart is empty");
    }

    #[test]
    fn missing_files_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("releases.toml");
        std::fs::create_dir(dir.path().join("chart")).unwrap();
        let text = "[[release]]\nname = \"a\"\nnamespace = \"x\"\nchart = \"chart\"\nvalues = [\n  \"nope.yaml\",\n]\n";
        std::fs::write(&path, text).unwrap();
        let e = RenderPlan::load(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}:6: nope.yaml does not exist", path.display())),
            "{e}"
        );
    }

    #[test]
    fn profiles_can_be_narrowed() {
        let plan = parse(GOOD).unwrap();
        let only = plan.only_profiles(&["10k".to_string()]).unwrap();
        assert_eq!(only.profiles.len(), 1);
        assert_eq!(only.profiles[0].name, "10k");
        assert_eq!(plan.only_profiles(&[]).unwrap(), plan);
        let e = plan.only_profiles(&["2k".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "profile \"2k\" is not in deploy/releases.toml (known: 1k, 10k)"
        );
    }
}
