//! `installer deploy` against a cluster: the real plan (the fixture bundle of `deploy.rs`,
//! rendered by the real helm through the installer's post-renderer) run on the in-memory
//! cluster: step order, resume after a failure at each step, readiness failures with the
//! events that explain them, secrets kept across runs, upgrade refusal and rollback order.
//! The real cluster is behind the same trait; `scripts/e2e-cluster.sh` runs it on kind or k3s.

use std::cell::RefCell;
use std::path::Path;
use std::time::Duration;

use bundle_file::Bundle;
use installer::deploy::journal::{Journal, ReleaseRecord, StepRecord, StepState};
use installer::deploy::plan::{self, Plan, PlanInputs, Rendered};
use installer::deploy::render::Helm;
use installer::deploy::run::{self, Deploy, Outside, Progress, Waits};
use installer::deploy::site::Site;
use installer::deploy::status;
use installer::kube::{Cluster, MemoryCluster, ObjectRef};
use installer::load::Target;
use installer::pin::BundleImages;
use installer::secrets::backup::Origin;
use installer::secrets::store;
use online::ca::{Identity, KeyProtection};
use serde_json::json;
use test_support::p;

use crate::deploy::{fixture, site, PREFIX, REGISTRY};

/// The plan of the fixture bundle for a site file (only the messenger release: the bundle
/// carries no upstream chart).
fn real_plan(site_file: &Path, work: &Path) -> (Plan, Vec<Rendered>, Journal) {
    let f = fixture();
    let bundle_path = f.dir.path().join("bundle.tar.zst");
    let bundle = Bundle::open_path(&bundle_path).unwrap();
    let releases = installer::deploy::releases().unwrap();
    let site = Site::read(site_file).unwrap();
    let target = Target {
        registry: REGISTRY.into(),
        prefix: Some(PREFIX.into()),
    };
    let trust = vec![
        p(&bundle_path).to_string(),
        "--key".to_string(),
        p(&f.public).to_string(),
    ];
    let helm = Helm::new(
        Path::new("helm"),
        work,
        &test_support::bin("installer"),
        &trust,
        &target,
        releases.kube_version.as_deref(),
    )
    .unwrap();
    let only = vec!["messenger".to_string()];
    let inputs = PlanInputs {
        releases: &releases,
        site: &site,
        only: &only,
        work,
    };
    let (plan, rendered) = plan::build(&bundle, &inputs, &helm).unwrap();
    let images = BundleImages::read(&bundle).unwrap();
    let site_digest = test_support::images::sha256(&std::fs::read(site_file).unwrap());
    let journal = Journal::new(
        "fixture 1".into(),
        bundle.toc_sha256(),
        site_digest,
        run::versions(&images),
    );
    (plan, rendered, journal)
}

/// The steps outside the API: each succeeds unless told to fail.
#[derive(Default)]
struct Steps {
    fail_smoke: RefCell<bool>,
    smoked: RefCell<usize>,
}

impl Outside for Steps {
    fn preflight(&self, cluster: &dyn Cluster) -> Vec<String> {
        match cluster.server_version() {
            Ok(v) if v.starts_with("v1.") => Vec::new(),
            other => vec![format!("API version {other:?}")],
        }
    }
    fn load(&self) -> Result<String, String> {
        Ok("the registry holds every image".into())
    }
    fn ca_manifests(&self) -> Option<String> {
        None
    }
    fn smoke(&self) -> Result<String, String> {
        *self.smoked.borrow_mut() += 1;
        if *self.fail_smoke.borrow() {
            Err("room message not delivered".into())
        } else {
            Ok("users, room, messages and media work".into())
        }
    }
}

/// A cluster with the site's ClusterIssuer.
fn cluster() -> MemoryCluster {
    let cluster = MemoryCluster::new("v1.33.4");
    cluster.insert(
        json!({"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
        "metadata": {"name": "messenger-ca"}}),
    );
    cluster
}

fn deploy<'a>(
    cluster: &'a MemoryCluster,
    planned: &'a (Plan, Vec<Rendered>, Journal),
    outside: &'a Steps,
    local: &'a Path,
    progress: &'a dyn Fn(&Progress),
) -> Deploy<'a> {
    Deploy {
        cluster,
        plan: &planned.0,
        rendered: &planned.1,
        journal: planned.2.clone(),
        local_journal: local,
        outside,
        waits: Waits {
            timeout: Duration::from_millis(50),
            poll: Duration::from_millis(5),
        },
        progress,
    }
}

fn quiet(_: &Progress) {}

fn generated_secret(cluster: &MemoryCluster) -> serde_json::Value {
    cluster
        .get(&ObjectRef::parse("matrix/Secret/messenger-generated").unwrap())
        .unwrap()
        .expect("the generated Secret exists")
}

#[test]
fn a_deploy_runs_the_steps_in_order_and_a_rerun_repeats_nothing() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "1k", ""), work.path());
    let cluster = cluster();
    let outside = Steps::default();
    let local = work.path().join("journal.json");
    let seen = RefCell::new(Vec::new());
    let progress = |p: &Progress| seen.borrow_mut().push(p.clone());
    let journal = run::run(deploy(&cluster, &planned, &outside, &local, &progress)).unwrap();
    let states: Vec<(String, StepState)> = journal
        .steps
        .iter()
        .map(|s| (s.name.clone(), s.state))
        .collect();
    let names: Vec<&str> = planned.0.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        states.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        names
    );
    for (name, state) in &states {
        let skipped = planned
            .0
            .steps
            .iter()
            .any(|s| s.name == *name && s.skipped.is_some());
        let want = if skipped {
            StepState::Skipped
        } else {
            StepState::Done
        };
        assert_eq!(*state, want, "{name}");
    }
    let stack = journal.step("stack").unwrap();
    assert_eq!(stack.releases[0].name, "messenger");
    assert_eq!(stack.releases[0].previous, None);
    assert_eq!(stack.releases[0].revision, 1);
    assert!(stack.releases[0]
        .images
        .iter()
        .all(|i| i.starts_with(REGISTRY)));
    // Namespaces, then the Secrets, then the release; the journal saved around each step.
    let calls: Vec<String> = cluster
        .calls()
        .into_iter()
        .filter(|c| !c.contains("messenger-deploy-journal"))
        .collect();
    assert!(calls[0].starts_with("apply Namespace/matrix"), "{calls:?}");
    assert!(
        calls[1].starts_with("apply Secret/messenger-generated Secret/messenger-synapse-secrets"),
        "{calls:?}"
    );
    assert_eq!(calls[2], "install messenger");
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert_eq!(*outside.smoked.borrow(), 1);
    // The local mirror is the cluster's journal.
    let local_copy: Journal =
        serde_json::from_str(&std::fs::read_to_string(&local).unwrap()).unwrap();
    assert_eq!(Some(local_copy), Journal::read(&cluster).unwrap());
    assert!(seen
        .borrow()
        .iter()
        .any(|p| matches!(p, Progress::Done { step, .. } if step == "synapse")));

    // Same bundle, same site file: every step was done; nothing is asked of the cluster.
    let before = cluster.calls().len();
    let again = run::run(deploy(&cluster, &planned, &outside, &local, &quiet)).unwrap();
    assert_eq!(again.steps, journal.steps);
    let after: Vec<String> = cluster.calls()[before..]
        .iter()
        .filter(|c| !c.contains("messenger-deploy-journal"))
        .cloned()
        .collect();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(*outside.smoked.borrow(), 1);
}

#[test]
fn a_failure_at_any_step_stops_there_and_a_rerun_resumes_from_it() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "100", ""), work.path());
    let local = work.path().join("journal.json");
    // Each cluster call a step starts with, and the step it belongs to.
    for (fault, step) in [
        ("apply Namespace", "namespaces"),
        ("apply Secret", "secrets"),
        ("install messenger", "stack"),
    ] {
        let cluster = cluster();
        cluster.fail_on(fault);
        let outside = Steps::default();
        let e = run::run(deploy(&cluster, &planned, &outside, &local, &quiet))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("step {step} failed")),
            "{fault}: {e}"
        );
        assert!(e.contains("installer rollback"), "{e}");
        let journal = Journal::read(&cluster).unwrap().unwrap();
        assert_eq!(journal.step(step).unwrap().state, StepState::Failed);
        let done_before: Vec<String> = journal
            .steps
            .iter()
            .filter(|s| s.state == StepState::Done)
            .map(|s| s.name.clone())
            .collect();
        let calls_before = cluster.calls();
        let resumed = run::run(deploy(&cluster, &planned, &outside, &local, &quiet)).unwrap();
        assert_eq!(
            resumed.step(step).unwrap().state,
            StepState::Done,
            "{fault}"
        );
        // What was done before the failure is not done again.
        let new_calls: Vec<String> = cluster.calls()[calls_before.len()..]
            .iter()
            .filter(|c| !c.contains("messenger-deploy-journal"))
            .cloned()
            .collect();
        for done in &done_before {
            let again = match done.as_str() {
                "namespaces" => new_calls.iter().any(|c| c.starts_with("apply Namespace")),
                "secrets" => new_calls.iter().any(|c| c.starts_with("apply Secret")),
                _ => false,
            };
            assert!(!again, "{fault}: step {done} ran again: {new_calls:?}");
        }
        assert_eq!(
            cluster
                .calls()
                .iter()
                .filter(|c| *c == "install messenger")
                .count(),
            1,
            "{fault}"
        );
    }
    // A failure outside the API (the smoke test) resumes at the smoke test.
    let cluster = cluster();
    let outside = Steps::default();
    *outside.fail_smoke.borrow_mut() = true;
    let e = run::run(deploy(&cluster, &planned, &outside, &local, &quiet))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("step smoke failed: room message not delivered"),
        "{e}"
    );
    *outside.fail_smoke.borrow_mut() = false;
    let installs = cluster.calls().len();
    run::run(deploy(&cluster, &planned, &outside, &local, &quiet)).unwrap();
    assert_eq!(*outside.smoked.borrow(), 2);
    assert!(cluster.calls()[installs..]
        .iter()
        .all(|c| c.contains("messenger-deploy-journal")));
}

#[test]
fn an_object_that_never_gets_ready_fails_its_step_with_its_events() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "1k", ""), work.path());
    let cluster = cluster();
    cluster.never_ready("messenger-haproxy");
    let outside = Steps::default();
    let local = work.path().join("journal.json");
    let e = run::run(deploy(&cluster, &planned, &outside, &local, &quiet))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("step synapse failed"), "{e}");
    assert!(e.contains("matrix/Deployment/messenger-haproxy"), "{e}");
    assert!(e.contains("not ready after"), "{e}");
    assert!(e.contains("FailedScheduling"), "{e}");
    let journal = Journal::read(&cluster).unwrap().unwrap();
    assert_eq!(journal.step("data").unwrap().state, StepState::Done);
    assert_eq!(journal.step("synapse").unwrap().state, StepState::Failed);
    assert!(journal.step("clients").is_none());
}

#[test]
fn secrets_are_generated_once_and_kept_by_every_later_deploy() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster();
    let outside = Steps::default();
    let local = work.path().join("journal.json");
    let first = real_plan(&site(work.path(), "1k", ""), work.path());
    run::run(deploy(&cluster, &first, &outside, &local, &quiet)).unwrap();
    let secret = generated_secret(&cluster);
    // Another site file (another profile): a new deploy, which upgrades the release and
    // keeps every secret.
    let second = real_plan(&site(work.path(), "5k", ""), work.path());
    let journal = run::run(deploy(&cluster, &second, &outside, &local, &quiet)).unwrap();
    assert_eq!(generated_secret(&cluster)["data"], secret["data"]);
    let detail = &journal.step("secrets").unwrap().detail;
    // Every value is generated on the first deploy, the LI instance's ten too (off here):
    // switching a part on later uses values made then.
    assert!(detail.contains("24 value(s) kept, 0 generated"), "{detail}");
    let stack = &journal.step("stack").unwrap().releases[0];
    assert_eq!((stack.previous, stack.revision), (Some(1), 2));
}

#[test]
fn an_upgrade_that_takes_synapse_back_is_refused_before_anything_changes() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "1k", ""), work.path());
    let cluster = cluster();
    let local = work.path().join("journal.json");
    let mut newer = planned.2.clone();
    newer.bundle_digest = "an older deploy".into();
    newer.versions.insert("synapse".into(), "v1.999.0".into());
    newer.save(&cluster, &local).unwrap();
    let before = cluster.calls().len();
    let outside = Steps::default();
    let e = run::run(deploy(&cluster, &planned, &outside, &local, &quiet))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Synapse v1.999.0 -> v1.164.2 is a downgrade"),
        "{e}"
    );
    assert_eq!(cluster.calls().len(), before);
}

#[test]
fn rollback_returns_releases_to_their_previous_revisions_last_first() {
    let work = tempfile::tempdir().unwrap();
    let cluster = cluster();
    let local = work.path().join("journal.json");
    let release =
        |name: &str, namespace: &str, previous: Option<u32>, revision: u32| ReleaseRecord {
            name: name.into(),
            namespace: namespace.into(),
            chart: format!("{name}-1.0.0"),
            previous,
            revision,
            images: Vec::new(),
        };
    let step = |name: &str, releases: Vec<ReleaseRecord>| StepRecord {
        name: name.into(),
        state: StepState::Done,
        detail: String::new(),
        releases,
    };
    let mut journal = Journal::new("b 2".into(), "d".into(), "s".into(), Default::default());
    journal.steps = vec![
        step(
            "operators",
            vec![
                release("cert-manager", "cert-manager", Some(3), 4),
                release("cnpg", "cnpg-system", Some(1), 2),
            ],
        ),
        step("secrets", Vec::new()),
        step("stack", vec![release("messenger", "matrix", Some(7), 8)]),
        step("monitoring", vec![release("loki", "monitoring", None, 1)]),
    ];
    journal.save(&cluster, &local).unwrap();
    let lines = run::rollback(&cluster, &local).unwrap();
    assert_eq!(
        lines,
        [
            "loki: installed by this deploy, no earlier revision: left in place",
            "messenger: revision 8 -> 7",
            "cnpg: revision 2 -> 1",
            "cert-manager: revision 4 -> 3"
        ]
    );
    let rollbacks: Vec<String> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("rollback"))
        .collect();
    assert_eq!(
        rollbacks,
        [
            "rollback messenger 7",
            "rollback cnpg 1",
            "rollback cert-manager 3"
        ]
    );
    // Secrets and volumes are not releases: nothing deletes them.
    assert!(!cluster.calls().iter().any(|c| c.contains("delete")));
    let after = Journal::read(&cluster).unwrap().unwrap();
    assert!(after
        .steps
        .iter()
        .filter(|s| !s.releases.is_empty())
        .all(|s| s.state == StepState::RolledBack));
    // A second rollback has nothing left to do.
    assert!(run::rollback(&cluster, &local).unwrap().is_empty());
}

#[test]
fn a_failed_preflight_changes_nothing_in_the_cluster() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "100", ""), work.path());
    let local = work.path().join("journal.json");
    let cluster = MemoryCluster::new("v0.9.0");
    let outside = Steps::default();
    let e = run::run(deploy(&cluster, &planned, &outside, &local, &quiet))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("step preflight failed: 1 problem(s), nothing was changed"),
        "{e}"
    );
    assert!(e.contains("v0.9.0"), "{e}");
    assert!(cluster.calls().is_empty(), "{:?}", cluster.calls());
    assert!(Journal::read(&cluster).unwrap().is_none());
    let local = Journal::read_local(&local).unwrap().unwrap();
    assert_eq!(local.steps.len(), 1);
    assert_eq!(local.steps[0].state, StepState::Failed);
}

#[test]
fn status_shows_steps_revisions_images_and_what_is_not_ready() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "100", ""), work.path());
    let local = work.path().join("journal.json");
    let cluster = cluster();
    assert!(status::status(&cluster).unwrap().is_none());
    let outside = Steps::default();
    run::run(deploy(&cluster, &planned, &outside, &local, &quiet)).unwrap();
    let healthy = status::status(&cluster).unwrap().unwrap();
    assert!(healthy.healthy(), "{healthy}");
    let messenger = healthy
        .releases
        .iter()
        .find(|r| r.name == "messenger")
        .unwrap();
    assert_eq!(
        (messenger.recorded_revision, messenger.current_revision),
        (1, Some(1))
    );
    assert!(messenger.images.iter().all(|i| i.contains("@sha256:")));
    let workloads: Vec<&str> = messenger
        .workloads
        .iter()
        .map(|w| w.object.as_str())
        .collect();
    assert!(
        workloads.iter().any(|w| w.contains("/Deployment/"))
            && workloads.iter().any(|w| w.contains("/StatefulSet/")),
        "{workloads:?}"
    );

    // One workload loses its replicas; a release is rolled back behind the journal's back.
    let first = ObjectRef::parse(messenger.workloads[0].object.as_str()).unwrap();
    let mut object = cluster.get(&first).unwrap().unwrap();
    object["status"]["readyReplicas"] = json!(0);
    object["status"]["availableReplicas"] = json!(0);
    object["status"]["numberReady"] = json!(0);
    cluster.insert(object);
    cluster.rollback_release("messenger", "matrix", 1).unwrap();
    let sick = status::status(&cluster).unwrap().unwrap();
    assert!(!sick.healthy());
    let text = sick.to_string();
    assert!(text.contains(&format!("NOT READY {first}")), "{text}");
    assert!(
        text.contains("revision 2 (the journal recorded 1)"),
        "{text}"
    );
    assert!(text.contains("  smoke       done"), "{text}");
}

#[test]
fn a_site_rebuilt_from_a_secrets_backup_keeps_every_value() {
    let work = tempfile::tempdir().unwrap();
    let planned = real_plan(&site(work.path(), "100", ""), work.path());
    let local = work.path().join("journal.json");
    let outside = Steps::default();
    let origin = Origin {
        release: "messenger".into(),
        namespace: "matrix".into(),
    };
    let first = cluster();
    let protection = KeyProtection::Passphrase("correct horse".into());
    let e = store::export(&first, &origin, &protection).unwrap_err();
    assert!(
        e.to_string()
            .contains("matrix/Secret/messenger-generated does not exist"),
        "{e}"
    );
    run::run(deploy(&first, &planned, &outside, &local, &quiet)).unwrap();
    let sealed = store::export(&first, &origin, &protection).unwrap();
    let text = String::from_utf8_lossy(&sealed);
    let signing = generated_secret(&first)["data"]["signingKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.contains(&signing), "the backup is encrypted");

    // A new cluster: import, then deploy; every value is the old site's.
    let rebuilt = cluster();
    let wrong = store::import(&rebuilt, &sealed, &Identity::Passphrase("wrong".into()));
    assert!(wrong.is_err());
    let restored = store::import(
        &rebuilt,
        &sealed,
        &Identity::Passphrase("correct horse".into()),
    )
    .unwrap();
    assert_eq!(restored, origin);
    run::run(deploy(&rebuilt, &planned, &outside, &local, &quiet)).unwrap();
    assert_eq!(
        generated_secret(&rebuilt)["data"],
        generated_secret(&first)["data"]
    );
    // Importing again is a no-op; into a site with other values, refused.
    store::import(
        &rebuilt,
        &sealed,
        &Identity::Passphrase("correct horse".into()),
    )
    .unwrap();
    let other = cluster();
    run::run(deploy(&other, &planned, &outside, &local, &quiet)).unwrap();
    let e = store::import(
        &other,
        &sealed,
        &Identity::Passphrase("correct horse".into()),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("already exists with other values"),
        "{e}"
    );
}
