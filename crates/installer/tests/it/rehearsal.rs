//! The deployment rehearsal: the chart's own Synapse, HAProxy and Valkey-proxy configurations
//! (profile 100, with one instance of every worker type) run as local processes. Through the chart's HAProxy, the smoke client passes
//! every step, /sync is served by the synchrotron and events are persisted by the event
//! persister; when the Redis primary dies, Sentinel promotes a replica, the proxy follows it,
//! and messages flow again within 30 seconds with none lost.

use crate::harness::stack::{self, Source, Stack};
use installer::smoke::{await_messages, MatrixClient, MatrixError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long messages may stop flowing while Redis fails over.
const FAILOVER_BUDGET: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    test_support::workspace_root()
}

fn start(dir: &Path) -> Stack {
    let repo = repo();
    let chart = repo.join("charts/messenger");
    let site = repo.join("tests/fixtures/site/site.yaml");
    let profile = chart.join("profiles/100.yaml");
    let every_worker = repo.join("tests/fixtures/site/every-worker.yaml");
    stack::start(
        &Source {
            chart: &chart,
            release: "msg",
            namespace: "matrix",
            values: &[&site, &profile, &every_worker],
        },
        dir,
    )
}

/// Two logged-in users sharing a room, and B's sync token after joining.
struct Conversation {
    a: MatrixClient,
    b: MatrixClient,
    room: String,
    since: String,
}

/// `installer --json smoke` through the stack's HAProxy: whether it passed, its report and
/// what it printed on stderr.
fn smoke(stack: &Stack, client: &MatrixClient) -> (bool, serde_json::Value, String) {
    let out = tokio::task::block_in_place(|| {
        Command::new(test_support::bin("installer"))
            .args(["--json", "smoke", "--base-url", client.base_url()])
            .args([
                "--admin-url",
                &format!("http://127.0.0.1:{}", stack.admin_port),
            ])
            .args(["--server-name", &stack.server_name])
            .arg("--registration-secret-file")
            .arg(&stack.secrets_file)
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("smoke printed no report ({e}): {stdout}"));
    (
        out.status.success(),
        report,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn conversation(stack: &Stack, client: &MatrixClient) -> Conversation {
    let secret = stack.registration_secret.as_bytes();
    // The registrations' tokens, not logins: Synapse limits logins per address, and the
    // smoke runs below log in too.
    let admin = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.admin_port), None).unwrap();
    let a = client.acting_as(
        &admin
            .register(secret, "rehearsal-a", "rehearsal-pw")
            .await
            .unwrap(),
    );
    let b = client.acting_as(
        &admin
            .register(secret, "rehearsal-b", "rehearsal-pw")
            .await
            .unwrap(),
    );
    let room = a.create_room("failover").await.unwrap();
    a.invite(&room, b.user_id().unwrap()).await.unwrap();
    b.join(&room).await.unwrap();
    let since = b.sync(None, Duration::ZERO).await.unwrap().next_batch;
    Conversation { a, b, room, since }
}

/// Sends `body`, retrying (same transaction, so at most once) while the stack cannot answer.
async fn send_until(
    a: &MatrixClient,
    room: &str,
    txn: &str,
    body: &str,
    deadline: Instant,
) -> String {
    loop {
        match a.send_text(room, txn, body).await {
            Ok(id) => return id,
            Err(e @ (MatrixError::Transport { .. } | MatrixError::Http { .. }))
                if e.status().is_none_or(|s| s >= 500) && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("sending {body:?}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_stack_serves_clients_through_haproxy_and_survives_a_redis_failover() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut stack = tokio::task::block_in_place(|| start(dir.path()));
    let startup = started.elapsed();
    let client =
        MatrixClient::new(&format!("http://127.0.0.1:{}", stack.front_port), None).unwrap();

    // The field engineer's smoke test passes through the chart's HAProxy, given the rendered
    // secrets.yaml as it would be taken from the Secret.
    let (ok, report, stderr) = smoke(&stack, &client);
    assert!(ok, "{report:#}{stderr}");
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(11),
        "{report:#}"
    );

    // Valkey runs the chart's own server and sentinel files.
    let primary = stack.redis.primary_port().unwrap();
    let policy = stack
        .redis
        .cli(primary, &["CONFIG", "GET", "maxmemory-policy"]);
    assert!(policy.contains("volatile-lru"), "{policy}");

    // Main and one process of every worker type ran.
    let mut instances: Vec<&str> = stack.synapse.iter().map(|p| p.instance.as_str()).collect();
    instances.sort_unstable();
    assert_eq!(
        instances,
        [
            "account-data-0",
            "background-0",
            "client-reader-0",
            "device-lists-0",
            "event-creator-0",
            "event-persister-0",
            "federation-reader-0",
            "federation-sender-0",
            "initial-sync-0",
            "main",
            "media-repository-0",
            "presence-0",
            "push-rules-0",
            "pusher-0",
            "receipts-0",
            "synchrotron-0",
            "to-device-0",
            "typing-0",
        ],
    );

    // Each route reached the worker the chart's routing names.
    let sync_request = "\"GET /_matrix/client/v3/sync";
    let initial_sync = stack.synapse("initial-sync-0").service.log_text();
    assert!(
        initial_sync.contains(sync_request),
        "the initial-sync pool served no first /sync"
    );
    let synchrotron = stack.synapse("synchrotron-0").service.log_text();
    assert!(
        synchrotron.contains(sync_request),
        "the synchrotron served no /sync"
    );
    let main = stack.synapse("main").service.log_text();
    assert!(!main.contains(sync_request), "main served /sync");
    let media = stack.synapse("media-repository-0").service.log_text();
    assert!(
        media.contains("\"POST /_matrix/media/v3/upload"),
        "media upload went elsewhere"
    );
    let event_creator = stack.synapse("event-creator-0").service.log_text();
    assert!(
        event_creator.contains("/send/m.room.message/"),
        "sends went elsewhere"
    );
    let client_reader = stack.synapse("client-reader-0").service.log_text();
    for request in [
        "\"POST /_matrix/client/v3/createRoom",
        "\"POST /_matrix/client/v3/login",
    ] {
        assert!(client_reader.contains(request), "{request} went elsewhere");
    }
    assert!(
        main.contains("\"POST /_synapse/admin/v1/register"),
        "admin registration went elsewhere"
    );
    let persisted = "synapse_storage_events_persisted_events_total";
    let persister = stack.synapse("event-persister-0");
    let persisted_there =
        crate::harness::synapse::metric(persister.metrics_port.unwrap(), persisted);
    assert!(
        persisted_there >= 5.0,
        "the event persister persisted {persisted_there} events"
    );
    let main_metrics = stack.synapse("main").metrics_port.unwrap();
    assert_eq!(
        crate::harness::synapse::metric(main_metrics, persisted),
        0.0,
        "main persisted events"
    );

    // Messages flow before the Redis primary dies...
    let talk = conversation(&stack, &client).await;
    let mut sent = Vec::new();
    let far = Instant::now() + FAILOVER_BUDGET;
    for i in 0..3 {
        sent.push(
            send_until(
                &talk.a,
                &talk.room,
                &format!("before-{i}"),
                &format!("before {i}"),
                far,
            )
            .await,
        );
    }
    let since = await_messages(
        &talk.b,
        &talk.room,
        &talk.since,
        &sent,
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // ... and again, all of them, within the budget after it is killed.
    let old_primary = stack.redis.primary_port().unwrap();
    let killed = Instant::now();
    stack.redis.primary().unwrap().service.kill();
    let deadline = killed + FAILOVER_BUDGET;
    let send = |i: usize| {
        let (a, room) = (&talk.a, &talk.room);
        async move {
            send_until(
                a,
                room,
                &format!("after-{i}"),
                &format!("after {i}"),
                deadline,
            )
            .await
        }
    };
    // One message while the primary is gone, two once Sentinel has promoted a replica.
    let mut after = vec![send(0).await];
    let promoted_port = tokio::task::block_in_place(|| {
        let mut port = None;
        test_support::net::wait_for("Sentinel promotion", FAILOVER_BUDGET, || {
            port = stack.redis.primary_port().filter(|p| *p != old_primary);
            port.is_some()
        });
        port
    });
    let promoted_in = killed.elapsed();
    for i in 1..3 {
        after.push(send(i).await);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    await_messages(&talk.b, &talk.room, &since, &after, left)
        .await
        .unwrap_or_else(|e| panic!("after the failover: {e}"));
    let recovered = killed.elapsed();
    let promoted = stack
        .redis
        .servers
        .iter()
        .position(|n| Some(n.port) == promoted_port);
    let proxy_log = stack.valkey_proxy.log_text();
    assert!(
        proxy_log.contains(&format!("/valkey-{} is UP", promoted.unwrap())),
        "the Valkey proxy never took the promoted replica:\n{proxy_log}"
    );
    sent.extend(after);

    // B's timeline holds every message, once, in order, seen from a fresh login (Synapse
    // caches a device's identical /sync requests for a while). Its initial sync is served by
    // the initial-sync worker, which may still be catching up on the replication stream after
    // its Redis connection moved to the new primary: give it the same failover budget.
    let b_again = client.login("rehearsal-b", "rehearsal-pw").await.unwrap();
    let caught_up_by = Instant::now() + FAILOVER_BUDGET;
    let seen = loop {
        let timeline = b_again.sync(None, Duration::ZERO).await.unwrap();
        let seen: Vec<String> = timeline
            .messages
            .into_iter()
            .filter(|m| m.room_id == talk.room)
            .map(|m| m.event_id)
            .collect();
        if seen.len() >= sent.len() || Instant::now() >= caught_up_by {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(seen, sent, "B's timeline");

    // A stopped worker breaks its routes: the smoke test fails, naming the step that uses
    // them. First the media repository (uploads), then the event creator (membership
    // changes and sends: the invite is the first step that needs it).
    for (worker, step) in [
        ("media-repository-0", "upload media"),
        ("event-creator-0", "invite B"),
    ] {
        stack.synapse_mut(worker).service.kill();
        let (ok, report, stderr) = smoke(&stack, &client);
        assert!(!ok, "smoke passed without {worker}: {report:#}");
        let failed: Vec<&str> = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["ok"] == false)
            .filter_map(|s| s["step"].as_str())
            .collect();
        assert_eq!(failed, [step], "without {worker}: {report:#}");
        assert!(
            stderr.contains(&format!("smoke test failed at step `{step}`")),
            "{stderr}"
        );
    }
    eprintln!(
        "rehearsal: stack up in {startup:?}; the Redis primary killed, a replica promoted \
         after {promoted_in:?}, every message through after {recovered:?}; total {:?}",
        started.elapsed()
    );
}
