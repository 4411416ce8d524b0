//! The chart's antivirus on loopback: Debian's clamd started with the rendered clamd.conf and a
//! database `sigtool` builds, the rehearsal Synapse loading the chart's module exactly as
//! rendered (only clamd's address made local), the PyPI matrix-content-scanner 1.4.0 with the
//! rendered configuration and scan script behind the chart's HAProxy, and the rescan Job's
//! container run as the chart renders it against the rehearsal's admin API.

use crate::harness::antivirus::{signature, MARKER, MARKER_SIGNATURE};
use crate::harness::chart;
use crate::harness::stack::{self, Source, Stack};
use installer::antivirus::{rescan_job, roll_signatures, ROLLED_AT};
use installer::kube::{Cluster, MemoryCluster, ObjectRef};
use installer::smoke::MatrixClient;
use serde_norway::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const RELEASE: &str = "msg";
const NAMESPACE: &str = "matrix";

/// Content the updated signatures add (clean for the first database).
const LATER_MARKER: &[u8] = b"MESSENGER-ANTIVIRUS-TEST-MARKER-TWO";
const LATER_SIGNATURE: &str = "Messenger.Test.MarkerTwo";

fn repo() -> PathBuf {
    test_support::workspace_root()
}

/// The site fixture with profile 100, the admin host reachable from loopback (the
/// rehearsal's stand-in for the Gateway), plus `extra` values files; written into `dir`.
fn values(dir: &Path, extra: &[&Path]) -> Vec<PathBuf> {
    let repo = repo();
    let loopback = dir.join("loopback-admin.yaml");
    std::fs::write(&loopback, "admin:\n  allowedCIDRs: [127.0.0.1/32]\n").unwrap();
    let mut files = vec![
        repo.join("tests/fixtures/site/site.yaml"),
        repo.join("charts/messenger/profiles/100.yaml"),
        loopback,
    ];
    files.extend(extra.iter().map(|p| p.to_path_buf()));
    files
}

fn start(dir: &Path, values: &[PathBuf]) -> Stack {
    let chart = repo().join("charts/messenger");
    let values: Vec<&Path> = values.iter().map(PathBuf::as_path).collect();
    stack::start(
        &Source {
            chart: &chart,
            release: RELEASE,
            namespace: NAMESPACE,
            values: &values,
        },
        dir,
    )
}

/// A registered user's client through the chart's HAProxy.
async fn user(stack: &Stack, name: &str) -> MatrixClient {
    let admin = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.admin_port), None).unwrap();
    let front = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.front_port), None).unwrap();
    front.acting_as(
        &admin
            .register(stack.registration_secret.as_bytes(), name, "antivirus-pw")
            .await
            .unwrap(),
    )
}

/// Files in the media store's local content.
fn stored_files(dir: &Path) -> usize {
    fn count(path: &Path) -> usize {
        std::fs::read_dir(path)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&dir.join("media/local_content"))
}

/// The media instance's log (where uploads land).
fn media_log(stack: &Stack) -> String {
    stack.synapse("media-repository-0").service.log_text()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The rescan Job's container as the chart renders it (suspended CronJob
/// `<release>-antivirus-rescan`): its command and environment, every cluster address made
/// local and its mounts mapped into `dir`; returns its exit status and output.
fn run_rescan(stack: &Stack, dir: &Path, since_ms: u64) -> (bool, String) {
    let rendered = chart::render(
        &repo().join("charts/messenger"),
        RELEASE,
        NAMESPACE,
        &values(dir, &[])
            .iter()
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
    );
    let cron = rendered.object_of("CronJob", &format!("{RELEASE}-antivirus-rescan"));
    assert_eq!(cron["spec"]["suspend"].as_bool(), Some(true));
    // The Job exactly as `installer antivirus-update` creates it from the CronJob.
    let cron: serde_json::Value = serde_json::to_value(cron).unwrap();
    let job = rescan_job(&cron, "rescan-test", NAMESPACE, Some(since_ms));
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let av = stack.antivirus.as_ref().unwrap();
    let local_url = |url: &str| -> String {
        // http://<instance host>:8008 -> the instance's loopback port.
        let host = url.trim_start_matches("http://").trim_end_matches(":8008");
        let instance = host
            .split('.')
            .next()
            .unwrap()
            .trim_start_matches(&format!("{RELEASE}-synapse-"))
            .to_string();
        // StatefulSet pod names: <release>-synapse-<pool>-<i>; main's is main-0.
        let instance = if instance == "main-0" {
            "main".to_string()
        } else {
            instance
        };
        format!("http://127.0.0.1:{}", stack.synapse(&instance).http_port)
    };
    let words: Vec<String> = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(words[0], "python");
    let mut command = Command::new("python3");
    for word in &words[1..] {
        command.arg(match word.strip_prefix("/antivirus/") {
            Some(file) => av.module_dir.join(file).display().to_string(),
            None => word.clone(),
        });
    }
    for env in container["env"].as_array().unwrap() {
        let key = env["name"].as_str().unwrap();
        let value = env["value"].as_str().unwrap_or_default();
        let value = match key {
            "SYNAPSE_URL" | "MEDIA_URL" => local_url(value),
            "CLAMD_HOST" => {
                assert_eq!(value, av.clamd_host);
                "127.0.0.1".into()
            }
            "CLAMD_PORT" => av.clamd.port.to_string(),
            "SECRETS_FILE" => {
                assert_eq!(value, "/secrets/secrets.yaml");
                stack.secrets_file.display().to_string()
            }
            "RESCAN_SINCE_MS" => {
                assert_eq!(value, since_ms.to_string(), "the Job carries the time");
                value.to_string()
            }
            _ => value.to_string(),
        };
        command.env(key, value);
    }
    command.current_dir(dir);
    let out = tokio::task::block_in_place(|| command.output().unwrap());
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A GET through the chart's HAProxy with `token`: status and body.
async fn get(stack: &Stack, path: &str, token: &str) -> (u16, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}{path}", stack.front_port))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

fn media_path(mxc: &str) -> String {
    mxc.trim_start_matches("mxc://").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_downloads_are_scanned_and_a_signature_update_quarantines_older_media() {
    let dir = tempfile::tempdir().unwrap();
    let mut stack = tokio::task::block_in_place(|| start(dir.path(), &values(dir.path(), &[])));
    let alice = user(&stack, "av-alice").await;
    let token = login_token(&stack, "av-alice").await;

    // A clean upload is stored; it is served through HAProxy and the content scanner.
    let clean = b"just a harmless file\n".repeat(100);
    let clean_uri = alice
        .upload(clean.clone(), "text/plain", "clean.txt")
        .await
        .unwrap();
    let stored = stored_files(dir.path());
    assert_eq!(stored, 1, "the clean upload is in the media store");
    let (status, body) = get(
        &stack,
        &format!(
            "/_matrix/client/v1/media/download/{}",
            media_path(&clean_uri)
        ),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, clean);
    let scanner_log = stack.content_scanner.as_ref().unwrap().service.log_text();
    assert!(
        scanner_log.contains(&media_path(&clean_uri)),
        "the download went through the content scanner:\n{scanner_log}"
    );

    // An upload matching the test signature is refused, and nothing is stored.
    let mut infected = b"some text before ".to_vec();
    infected.extend_from_slice(MARKER);
    let refused = alice
        .upload(infected.clone(), "application/octet-stream", "bad.bin")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(refused.to_string().contains("Bad content"), "{refused}");
    let log = media_log(&stack);
    assert!(
        log.contains(&format!("infected with {MARKER_SIGNATURE}")),
        "the media instance logs the signature:\n{log}"
    );
    assert_eq!(stored_files(dir.path()), stored, "nothing stored");
    let metrics = stack.synapse("media-repository-0").metrics_port.unwrap();
    assert_eq!(
        crate::harness::synapse::metric(metrics, "messenger_antivirus_detections_total"),
        1.0
    );
    assert!(crate::harness::synapse::metric(metrics, "messenger_antivirus_scans_total") >= 2.0);

    // Uploaded before the update: clean for the first signatures.
    let since = now_ms();
    let mut later = b"harmless until the update: ".to_vec();
    later.extend_from_slice(LATER_MARKER);
    let later_uri = alice
        .upload(later.clone(), "application/octet-stream", "later.bin")
        .await
        .unwrap();

    // The signature update: clamd restarted on a database with one more signature (what
    // rolling the clamd pods to the new image does).
    let av = stack.antivirus.as_mut().unwrap();
    av.clamd.load(&[
        signature("Messenger.Test.MarkerOne", MARKER),
        signature(LATER_SIGNATURE, LATER_MARKER),
    ]);

    // The content scanner now refuses to serve it.
    let (status, body) = get(
        &stack,
        &format!(
            "/_matrix/client/v1/media/download/{}",
            media_path(&later_uri)
        ),
        &token,
    )
    .await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("MCS_MEDIA_NOT_CLEAN"), "{body}");

    // The rescan Job quarantines it through the admin API, and only it.
    let (ok, output) = run_rescan(&stack, dir.path(), since);
    assert!(
        ok,
        "the rescan failed:\n{output}\nmedia instance:\n{}",
        test_support::process::tail(&media_log(&stack), 60)
    );
    let later_id = later_uri.rsplit('/').next().unwrap();
    let quarantined: Vec<serde_json::Value> = output
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["event"] == "quarantined")
        .collect();
    assert_eq!(quarantined.len(), 1, "{output}");
    assert_eq!(quarantined[0]["media_id"], later_id, "{output}");
    assert_eq!(
        quarantined[0]["signature"],
        format!("{LATER_SIGNATURE}.UNOFFICIAL"),
        "{output}"
    );
    assert!(
        output.contains("messenger_antivirus_rescan_quarantined_total 1"),
        "{output}"
    );
    // Quarantined media is gone for clients; the older clean file is untouched.
    let direct = format!(
        "http://127.0.0.1:{}/_matrix/client/v1/media/download/{}",
        stack.synapse("media-repository-0").http_port,
        media_path(&later_uri)
    );
    let status = reqwest::Client::new()
        .get(direct)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404, "Synapse no longer serves the quarantined file");
    assert_eq!(alice.download(&clean_uri).await.unwrap(), clean);

    // clamd stopped: the chart's default (failClosed) rejects uploads.
    stack.antivirus.as_mut().unwrap().clamd.stop();
    let refused = alice
        .upload(clean.clone(), "text/plain", "while-down.txt")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(
        media_log(&stack).contains("no verdict"),
        "{}",
        media_log(&stack)
    );
    assert_eq!(
        crate::harness::synapse::metric(metrics, "messenger_antivirus_failures_total"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fail_open_uploads_are_accepted_while_clamd_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("fail-open.yaml");
    std::fs::write(&open, "antivirus:\n  failClosed: false\n").unwrap();
    let mut stack =
        tokio::task::block_in_place(|| start(dir.path(), &values(dir.path(), &[&open])));
    let homeserver = std::fs::read_to_string(dir.path().join("config/homeserver.yaml")).unwrap();
    let doc: Value = serde_norway::from_str(&homeserver).unwrap();
    assert_eq!(
        doc["modules"][0]["config"]["fail_closed"].as_bool(),
        Some(false)
    );
    let bob = user(&stack, "av-bob").await;
    // Still scanned while clamd is up.
    let mut infected = MARKER.to_vec();
    infected.extend_from_slice(b" trailer");
    let refused = bob
        .upload(infected.clone(), "application/octet-stream", "bad.bin")
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");

    stack.antivirus.as_mut().unwrap().clamd.stop();
    let uri = bob
        .upload(
            infected.clone(),
            "application/octet-stream",
            "unscanned.bin",
        )
        .await
        .unwrap();
    // Downloads go through the content scanner, which has no verdict either: never served.
    assert!(bob.download(&uri).await.is_err());
    assert!(
        media_log(&stack).contains("accepting upload"),
        "{}",
        media_log(&stack)
    );
}

/// An access token for `local`'s password, by a login through the chart's HAProxy (for
/// requests MatrixClient does not make).
async fn login_token(stack: &Stack, local: &str) -> String {
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/_matrix/client/v3/login",
            stack.front_port
        ))
        .json(&serde_json::json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": local},
            "password": "antivirus-pw",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("login: {reply}"))
        .to_string()
}

#[test]
fn antivirus_update_rolls_clamd_and_starts_a_rescan_since_the_previous_roll() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = chart::render(
        &repo().join("charts/messenger"),
        RELEASE,
        NAMESPACE,
        &values(dir.path(), &[])
            .iter()
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
    );
    let cluster = MemoryCluster::new("v1.34.0");
    for (kind, name) in [
        ("Deployment", format!("{RELEASE}-clamd")),
        ("CronJob", format!("{RELEASE}-antivirus-rescan")),
    ] {
        let mut object = serde_json::to_value(rendered.object_of(kind, &name)).unwrap();
        if kind == "Deployment" {
            // The memory cluster derives a ready status from the applied part alone (one
            // replica, as the patch names none): one replica keeps the two in step.
            object["spec"]["replicas"] = 1.into();
        }
        cluster.insert(object);
    }
    let deployment = ObjectRef {
        kind: "Deployment".into(),
        namespace: Some(NAMESPACE.into()),
        name: format!("{RELEASE}-clamd"),
    };
    let first = "registry.example.test/clamav/clamav:1.4_base-db.main-62.daily-27001";
    let rolled = roll_signatures(
        &cluster,
        RELEASE,
        NAMESPACE,
        first,
        1_000,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    // The chart's default before any update: the base image; no earlier roll recorded.
    assert_eq!(rolled.previous_image, "docker.io/clamav/clamav:1.4_base");
    assert_eq!(rolled.since_ms, None);
    let now = cluster.get(&deployment).unwrap().unwrap();
    assert_eq!(
        now["spec"]["template"]["spec"]["containers"][0]["image"],
        first
    );
    assert_eq!(now["metadata"]["annotations"][ROLLED_AT], "1000");

    let second = "registry.example.test/clamav/clamav:1.4_base-db.main-62.daily-27002";
    let rolled = roll_signatures(
        &cluster,
        RELEASE,
        NAMESPACE,
        second,
        2_000,
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(rolled.previous_image, first);
    assert_eq!(rolled.since_ms, Some(1_000), "uploads since the first roll");
    let job = cluster
        .get(&ObjectRef {
            kind: "Job".into(),
            namespace: Some(NAMESPACE.into()),
            name: rolled.job.clone(),
        })
        .unwrap()
        .unwrap_or_else(|| panic!("no Job {}", rolled.job));
    let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let since = env.iter().find(|v| v["name"] == "RESCAN_SINCE_MS").unwrap();
    assert_eq!(since["value"], "1000");
    assert!(cluster.calls().iter().any(|c| c.starts_with("apply")));

    // Without the chart's antivirus there is nothing to roll.
    let empty = MemoryCluster::new("v1.34.0");
    let err = roll_signatures(
        &empty,
        RELEASE,
        NAMESPACE,
        second,
        3_000,
        std::time::Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("antivirus.enabled"), "{err}");
}

/// Upload times of a 10 MB file (random bytes: clamd scans it all) through the chart's
/// HAProxy, with the antivirus on and off, the 10 MB download through the content scanner,
/// and clamd's memory with the test database. Prints numbers, asserts none; run by
/// scripts/bench-antivirus.sh, never in the test suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run by hand"]
async fn bench_upload_scan_overhead() {
    const SIZE: usize = 10 * 1024 * 1024;
    const RUNS: usize = 7;
    let body = test_support::images::noise(7, SIZE);
    let mut results = Vec::new();
    for enabled in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let switch = dir.path().join("antivirus.yaml");
        std::fs::write(&switch, format!("antivirus:\n  enabled: {enabled}\n")).unwrap();
        let stack =
            tokio::task::block_in_place(|| start(dir.path(), &values(dir.path(), &[&switch])));
        let client = user(&stack, "av-bench").await;
        let mut uploads = Vec::new();
        let mut uri = String::new();
        for i in 0..RUNS {
            let started = std::time::Instant::now();
            uri = client
                .upload(
                    body.clone(),
                    "application/octet-stream",
                    &format!("b{i}.bin"),
                )
                .await
                .unwrap();
            uploads.push(started.elapsed());
        }
        uploads.sort();
        let started = std::time::Instant::now();
        let fetched = client.download(&uri).await.unwrap();
        let download = started.elapsed();
        assert_eq!(fetched.len(), SIZE);
        let rss = stack.antivirus.as_ref().and_then(|av| av.clamd.rss_kib());
        println!(
            "antivirus {enabled}: 10 MiB upload median {:?} (min {:?}, max {:?}, {RUNS} runs); \
             first download {download:?}; clamd RSS {rss:?} KiB",
            uploads[RUNS / 2],
            uploads[0],
            uploads[RUNS - 1]
        );
        results.push(uploads[RUNS / 2]);
    }
    println!(
        "scan overhead per 10 MiB upload (median): {:?}",
        results[0].saturating_sub(results[1])
    );
}
