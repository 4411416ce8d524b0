//! Runs a plan against a cluster, step by step, recording each in the journal: a rerun of
//! the same bundle and site file resumes after the last finished step; a deploy over another
//! bundle is an upgrade, refused when it would take Synapse back or PostgreSQL to an older
//! major version; `rollback` returns every release to its previous revision, last first.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::journal::{Journal, ReleaseRecord, StepRecord, StepState};
use super::namespaces;
use super::plan::{Plan, Rendered, Step};
use super::DeployError;
use crate::kube::{readiness, Cluster, ObjectRef, Readiness};
use crate::pin::BundleImages;
use crate::secrets::objects;
use crate::secrets::SiteSecrets;

/// The steps that do not talk to the cluster's API, done by the caller.
pub trait Outside {
    /// Every problem the preflight finds (none: go on).
    fn preflight(&self, cluster: &dyn Cluster) -> Vec<String>;
    /// Makes sure the site registry holds every image; what was done.
    fn load(&self) -> Result<String, String>;
    /// The site CA's Secret and ClusterIssuer to apply, if the caller has the CA.
    fn ca_manifests(&self) -> Option<String>;
    /// The end-to-end check; what it showed.
    fn smoke(&self) -> Result<String, String>;
}

/// How long to wait for readiness.
#[derive(Debug, Clone, Copy)]
pub struct Waits {
    /// Per step.
    pub timeout: Duration,
    /// Between two looks.
    pub poll: Duration,
}

/// What the deploy is doing, for a progress view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Progress {
    /// A step starts.
    Started {
        /// The step.
        step: String,
    },
    /// A step is done (or was done by an earlier run).
    Done {
        /// The step.
        step: String,
        /// What it did.
        detail: String,
    },
    /// A step is skipped.
    Skipped {
        /// The step.
        step: String,
        /// Why.
        reason: String,
    },
    /// Waiting for objects.
    Waiting {
        /// The step.
        step: String,
        /// How many are ready.
        ready: usize,
        /// Of how many.
        total: usize,
        /// The first one not ready, and why.
        first_pending: String,
    },
}

/// Everything a deploy needs.
pub struct Deploy<'a> {
    /// The cluster.
    pub cluster: &'a dyn Cluster,
    /// The plan and its rendered releases.
    pub plan: &'a Plan,
    /// The pinned manifests of each release.
    pub rendered: &'a [Rendered],
    /// The journal this deploy starts (bundle, site and versions set, no steps).
    pub journal: Journal,
    /// The local mirror of the journal.
    pub local_journal: &'a Path,
    /// The steps outside the API.
    pub outside: &'a dyn Outside,
    /// Readiness waits.
    pub waits: Waits,
    /// Progress reports.
    pub progress: &'a dyn Fn(&Progress),
}

/// Runs the deploy; the final journal. On failure the journal records the failed step and
/// the error explains it.
pub fn run(mut deploy: Deploy<'_>) -> Result<Journal, DeployError> {
    let cluster = deploy.cluster;
    // The preflight runs first, every time: it only reads, and nothing is written to the
    // cluster (not even the journal) until it passes.
    let preflight = preflight(&mut deploy)?;
    let previous = Journal::read(cluster)?;
    if let Some(previous) = &previous {
        if previous.same_deploy(&deploy.journal) {
            deploy.journal.steps = previous.steps.clone();
        } else {
            check_upgrade(&previous.versions, &deploy.journal.versions)?;
        }
    }
    for step in &deploy.plan.steps {
        if let (PREFLIGHT, Some(detail)) = (step.name.as_str(), &preflight) {
            deploy.journal.record(StepRecord {
                name: step.name.clone(),
                state: StepState::Done,
                detail: detail.clone(),
                releases: Vec::new(),
            });
            deploy.journal.save(cluster, deploy.local_journal)?;
            continue;
        }
        let done = deploy
            .journal
            .step(&step.name)
            .is_some_and(|r| matches!(r.state, StepState::Done | StepState::Skipped));
        if done {
            let detail = deploy
                .journal
                .step(&step.name)
                .map(|r| r.detail.clone())
                .unwrap_or_default();
            (deploy.progress)(&Progress::Done {
                step: step.name.clone(),
                detail: format!("done by an earlier run: {detail}"),
            });
            continue;
        }
        if let Some(reason) = &step.skipped {
            deploy.journal.record(StepRecord {
                name: step.name.clone(),
                state: StepState::Skipped,
                detail: reason.clone(),
                releases: Vec::new(),
            });
            deploy.journal.save(cluster, deploy.local_journal)?;
            (deploy.progress)(&Progress::Skipped {
                step: step.name.clone(),
                reason: reason.clone(),
            });
            continue;
        }
        (deploy.progress)(&Progress::Started {
            step: step.name.clone(),
        });
        deploy.journal.record(StepRecord {
            name: step.name.clone(),
            state: StepState::Running,
            detail: String::new(),
            releases: Vec::new(),
        });
        deploy.journal.save(cluster, deploy.local_journal)?;
        let outcome = run_step(&deploy, step);
        match outcome {
            Ok((detail, releases)) => {
                deploy.journal.record(StepRecord {
                    name: step.name.clone(),
                    state: StepState::Done,
                    detail: detail.clone(),
                    releases,
                });
                deploy.journal.save(cluster, deploy.local_journal)?;
                (deploy.progress)(&Progress::Done {
                    step: step.name.clone(),
                    detail,
                });
            }
            Err((message, releases)) => {
                deploy.journal.record(StepRecord {
                    name: step.name.clone(),
                    state: StepState::Failed,
                    detail: message.clone(),
                    releases,
                });
                deploy.journal.save(cluster, deploy.local_journal)?;
                return Err(DeployError::StepFailed {
                    step: step.name.clone(),
                    message,
                });
            }
        }
    }
    Ok(deploy.journal)
}

/// The preflight step's name.
const PREFLIGHT: &str = "preflight";

/// Runs the preflight unless the plan skips it: what it found (nothing), or the failed step
/// recorded in the local journal only.
fn preflight(deploy: &mut Deploy<'_>) -> Result<Option<String>, DeployError> {
    let planned = deploy
        .plan
        .steps
        .iter()
        .any(|s| s.name == PREFLIGHT && s.skipped.is_none());
    if !planned {
        return Ok(None);
    }
    (deploy.progress)(&Progress::Started {
        step: PREFLIGHT.into(),
    });
    let problems = deploy.outside.preflight(deploy.cluster);
    if problems.is_empty() {
        let detail = "every check passed".to_string();
        (deploy.progress)(&Progress::Done {
            step: PREFLIGHT.into(),
            detail: detail.clone(),
        });
        return Ok(Some(detail));
    }
    let message = format!(
        "{} problem(s), nothing was changed:\n{}",
        problems.len(),
        problems
            .iter()
            .map(|p| format!("  - {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    deploy.journal.record(StepRecord {
        name: PREFLIGHT.into(),
        state: StepState::Failed,
        detail: message.clone(),
        releases: Vec::new(),
    });
    deploy.journal.save_local(deploy.local_journal)?;
    Err(DeployError::StepFailed {
        step: PREFLIGHT.into(),
        message,
    })
}

/// What a step did, and the releases it installed; or why it failed.
type StepOutcome = Result<(String, Vec<ReleaseRecord>), (String, Vec<ReleaseRecord>)>;

fn run_step(deploy: &Deploy<'_>, step: &Step) -> StepOutcome {
    let cluster = deploy.cluster;
    let fail = |message: String| Err((message, Vec::new()));
    match step.name.as_str() {
        "load" => match deploy.outside.load() {
            Ok(detail) => Ok((detail, Vec::new())),
            Err(e) => fail(e),
        },
        "namespaces" => {
            let manifest: String = deploy
                .plan
                .namespaces
                .iter()
                .map(namespaces::manifest)
                .collect();
            match cluster.apply(&manifest) {
                Ok(()) => Ok((
                    format!("{} namespace(s)", deploy.plan.namespaces.len()),
                    Vec::new(),
                )),
                Err(e) => fail(e.to_string()),
            }
        }
        "ca-issuer" => ca_issuer(deploy),
        "secrets" => secrets(deploy),
        _ if !step.releases.is_empty() => {
            let mut records = Vec::new();
            for planned in &step.releases {
                let Some(rendered) = deploy
                    .rendered
                    .iter()
                    .find(|r| r.release.name == planned.name)
                else {
                    return Err((
                        format!("release {} was not rendered", planned.name),
                        records,
                    ));
                };
                let input = &rendered.input;
                let installed = cluster
                    .release_revision(&input.name, &input.namespace)
                    .and_then(|previous| {
                        cluster
                            .install_release(input, &rendered.manifests)
                            .map(|revision| (previous, revision))
                    });
                match installed {
                    Ok((previous, revision)) => records.push(ReleaseRecord {
                        name: input.name.clone(),
                        namespace: input.namespace.clone(),
                        chart: planned.chart.clone(),
                        previous,
                        revision,
                        images: planned.images.clone(),
                    }),
                    Err(e) => return Err((e.to_string(), records)),
                }
                // Each release is ready before the next goes in (an operator's webhook before
                // the objects of the next one that it admits). The stack's own objects are
                // waited for part by part, in the wait steps (its step lists no waits).
                if !step.waits.is_empty() {
                    if let Err(e) = wait(deploy, &step.name, &planned.waits) {
                        return Err((format!("release {}: {e}", planned.name), records));
                    }
                }
            }
            let waited = if step.waits.is_empty() {
                "nothing to wait for".to_string()
            } else {
                format!("{} object(s) ready", step.waits.len())
            };
            Ok((waited, records))
        }
        _ if !step.waits.is_empty() => match wait(deploy, &step.name, &step.waits) {
            Ok(detail) => Ok((detail, Vec::new())),
            Err(e) => fail(e),
        },
        "smoke" => match deploy.outside.smoke() {
            Ok(detail) => Ok((detail, Vec::new())),
            Err(e) => fail(e),
        },
        other => fail(format!("step {other} has nothing to do and is not skipped")),
    }
}

/// Applies the site CA, or checks the ClusterIssuer is already there.
fn ca_issuer(deploy: &Deploy<'_>) -> StepOutcome {
    let issuer = &deploy.plan.issuer;
    if let Some(manifests) = deploy.outside.ca_manifests() {
        return match deploy.cluster.apply(&manifests) {
            Ok(()) => Ok((format!("ClusterIssuer {issuer} applied"), Vec::new())),
            Err(e) => Err((e.to_string(), Vec::new())),
        };
    }
    let object = ObjectRef {
        kind: "ClusterIssuer".into(),
        namespace: None,
        name: issuer.clone(),
    };
    match deploy.cluster.get(&object) {
        Ok(Some(_)) => Ok((format!("ClusterIssuer {issuer} already exists"), Vec::new())),
        Ok(None) => Err((
            format!(
                "ClusterIssuer {issuer} (tls.clusterIssuer) does not exist and no site CA was \
                 given: give --ca-dir DIR (docs/ca.md)"
            ),
            Vec::new(),
        )),
        Err(e) => Err((e.to_string(), Vec::new())),
    }
}

/// Completes the site's secrets from the cluster's and applies every Secret.
fn secrets(deploy: &Deploy<'_>) -> StepOutcome {
    let Some(stack) = deploy.plan.steps.iter().find(|s| s.name == "stack") else {
        return Err(("the plan has no stack step".into(), Vec::new()));
    };
    let Some(release) = stack.releases.first() else {
        return Err(("the stack step installs no release".into(), Vec::new()));
    };
    let object = ObjectRef {
        kind: "Secret".into(),
        namespace: Some(release.namespace.clone()),
        name: objects::generated_name(&release.name),
    };
    let outcome = (|| -> Result<String, String> {
        let existing = match deploy.cluster.get(&object).map_err(|e| e.to_string())? {
            Some(secret) => {
                objects::values_of(&secret, &format!("in {object}")).map_err(|e| e.to_string())?
            }
            None => BTreeMap::new(),
        };
        let kept = existing.len();
        let (values, generated) =
            SiteSecrets::complete(existing, &format!("in {object}")).map_err(|e| e.to_string())?;
        let secrets = objects::secrets(
            &release.name,
            &release.namespace,
            &values,
            &deploy.plan.parts,
        );
        let manifest: String = secrets.iter().map(|s| format!("---\n{s}\n")).collect();
        deploy.cluster.apply(&manifest).map_err(|e| e.to_string())?;
        Ok(format!(
            "{} Secret(s) applied; {kept} value(s) kept, {} generated",
            secrets.len(),
            generated.len()
        ))
    })();
    outcome
        .map(|d| (d, Vec::new()))
        .map_err(|e| (e, Vec::new()))
}

/// Waits until every object of `waits` is ready; on timeout or failure, why, with the
/// objects that are not ready and their latest events.
fn wait(deploy: &Deploy<'_>, step: &str, waits: &[String]) -> Result<String, String> {
    if waits.is_empty() {
        return Ok("nothing to wait for".into());
    }
    let objects: Vec<ObjectRef> = waits.iter().filter_map(|w| ObjectRef::parse(w)).collect();
    let deadline = Instant::now() + deploy.waits.timeout;
    loop {
        let mut pending = Vec::new();
        let mut failed = Vec::new();
        for object in &objects {
            match deploy.cluster.get(object) {
                Ok(Some(value)) => match readiness(&value) {
                    Readiness::Ready => {}
                    Readiness::Pending(why) => pending.push((object, why)),
                    Readiness::Failed(why) => failed.push((object, why)),
                },
                Ok(None) => pending.push((object, "not created yet".to_string())),
                Err(e) => pending.push((object, e.to_string())),
            }
        }
        if pending.is_empty() && failed.is_empty() {
            return Ok(format!("{} object(s) ready", objects.len()));
        }
        (deploy.progress)(&Progress::Waiting {
            step: step.to_string(),
            ready: objects.len() - pending.len() - failed.len(),
            total: objects.len(),
            first_pending: failed
                .iter()
                .chain(&pending)
                .next()
                .map(|(o, why)| format!("{o}: {why}"))
                .unwrap_or_default(),
        });
        if !failed.is_empty() || Instant::now() >= deadline {
            let mut lines = Vec::new();
            for (object, why) in failed.iter().chain(&pending) {
                lines.push(format!("  - {object}: {why}"));
                for event in deploy
                    .cluster
                    .events(object)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                {
                    lines.push(format!("      {event}"));
                }
            }
            let what = if failed.is_empty() {
                format!("not ready after {}s", deploy.waits.timeout.as_secs())
            } else {
                "failed".to_string()
            };
            return Err(format!(
                "{} of {} object(s) {what}:\n{}",
                failed.len() + pending.len(),
                objects.len(),
                lines.join("\n")
            ));
        }
        std::thread::sleep(deploy.waits.poll);
    }
}

/// Refuses an upgrade from `old` to `new` versions that Synapse or PostgreSQL cannot take.
pub fn check_upgrade(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Result<(), DeployError> {
    let refuse = |reason: String| Err(DeployError::Upgrade(reason));
    if let (Some(old), Some(new)) = (old.get("synapse"), new.get("synapse")) {
        if numbers(new) < numbers(old) {
            return refuse(format!(
                "Synapse {old} -> {new} is a downgrade: the database schema the running \
                 version migrated to cannot be used by an older Synapse"
            ));
        }
    }
    if let (Some(old), Some(new)) = (old.get("postgresql"), new.get("postgresql")) {
        let (old_major, new_major) = (numbers(old).first().copied(), numbers(new).first().copied());
        if new_major < old_major {
            return refuse(format!(
                "PostgreSQL {old} -> {new} goes back a major version: the data directory of \
                 a newer major version cannot be read by an older one"
            ));
        }
    }
    Ok(())
}

/// The versions an upgrade is checked on, from the images the bundle carries: Synapse's tag
/// and the PostgreSQL image's.
pub fn versions(images: &BundleImages) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, repository) in [("synapse", "synapse"), ("postgresql", "postgresql")] {
        if let Some(tag) = images
            .tags_of(repository)
            .into_iter()
            .max_by_key(|t| numbers(t))
        {
            out.insert(name.to_string(), tag.to_string());
        }
    }
    out
}

/// The numbers of a version (`v1.164.2` -> 1, 164, 2; `17.6-bookworm` -> 17, 6).
fn numbers(version: &str) -> Vec<u64> {
    version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map_while(|part| part.parse().ok())
        .collect()
}

/// Returns every release the journal records to its revision before the deploy, last
/// installed first; releases the deploy installed fresh are left in place (their data
/// volumes and the Secrets are never touched). What was done, one line per release.
pub fn rollback(cluster: &dyn Cluster, local: &Path) -> Result<Vec<String>, DeployError> {
    let Some(mut journal) = Journal::read(cluster)? else {
        return Err(DeployError::Upgrade(
            "no deploy journal in the cluster: nothing to roll back".into(),
        ));
    };
    let mut lines = Vec::new();
    for index in (0..journal.steps.len()).rev() {
        let step = journal.steps[index].clone();
        if step.releases.is_empty() || step.state == StepState::RolledBack {
            continue;
        }
        for release in step.releases.iter().rev() {
            match release.previous {
                Some(previous) => {
                    cluster
                        .rollback_release(&release.name, &release.namespace, previous)
                        .map_err(DeployError::Cluster)?;
                    lines.push(format!(
                        "{}: revision {} -> {previous}",
                        release.name, release.revision
                    ));
                }
                None => lines.push(format!(
                    "{}: installed by this deploy, no earlier revision: left in place",
                    release.name
                )),
            }
        }
        journal.steps[index].state = StepState::RolledBack;
        journal.save(cluster, local)?;
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(synapse: &str, pg: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("synapse".to_string(), synapse.to_string()),
            ("postgresql".to_string(), pg.to_string()),
        ])
    }

    #[test]
    fn upgrades_refuse_going_back() {
        let old = versions("v1.164.2", "17.6");
        assert!(check_upgrade(&old, &versions("v1.165.0", "17.7")).is_ok());
        assert!(check_upgrade(&old, &versions("v1.164.2", "18.1")).is_ok());
        let e = check_upgrade(&old, &versions("v1.150.0", "17.6"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Synapse v1.164.2 -> v1.150.0 is a downgrade"),
            "{e}"
        );
        let e = check_upgrade(&old, &versions("v1.164.2", "16.9"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PostgreSQL 17.6 -> 16.9"), "{e}");
        // A minor step back within the major is PostgreSQL's to allow.
        assert!(check_upgrade(&old, &versions("v1.164.2", "17.5")).is_ok());
    }
}
