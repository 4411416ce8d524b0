//! `installer smoke` against a real single-process Synapse: a healthy homeserver passes every
//! step; a wrong registration secret fails at the registration step with Synapse's answer.

use crate::harness::synapse::TEST_SETTINGS;
use std::path::Path;
use std::process::{Command, Output};
use test_support::ports::reserved_port;
use test_support::process::Service;

const SERVER_NAME: &str = "smoke.test";
const SECRET: &str = "smoke-shared-secret";

/// A running single-process Synapse and its client port.
struct Homeserver {
    port: u16,
    _synapse: Service,
}

fn homeserver(dir: &Path) -> Homeserver {
    homeserver_with(dir, crate::harness::synapse::TEST_SETTINGS)
}

/// A homeserver with `settings` (rate limits and the like) instead of the tests' defaults.
fn homeserver_with(dir: &Path, settings: &str) -> Homeserver {
    crate::harness::synapse::require();
    let port = reserved_port();
    let config =
        crate::harness::synapse::write_standalone(dir, SERVER_NAME, port, SECRET, settings);
    let mut synapse = crate::harness::synapse::spawn_main(&[config], &dir.join("synapse.log"));
    crate::harness::synapse::wait_healthy(&mut synapse, port);
    Homeserver {
        port,
        _synapse: synapse,
    }
}

fn smoke(port: u16, secret_file: &Path, extra: &[&str]) -> Output {
    smoke_at(&format!("http://127.0.0.1:{port}"), secret_file, extra)
}

fn smoke_at(base_url: &str, secret_file: &Path, extra: &[&str]) -> Output {
    Command::new(test_support::bin("installer"))
        .arg("smoke")
        .args(["--base-url", base_url])
        .args(["--server-name", SERVER_NAME])
        .arg("--registration-secret-file")
        .arg(secret_file)
        .args(extra)
        .output()
        .unwrap()
}

fn secret_file(dir: &Path, secret: &str) -> std::path::PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

#[test]
fn smoke_passes_every_step_against_a_healthy_homeserver() {
    let dir = tempfile::tempdir().unwrap();
    let server = homeserver(dir.path());
    let secret_file = secret_file(dir.path(), SECRET);

    let out = smoke(server.port, &secret_file, &["--json", "--messages", "7"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "smoke failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["ok"], true, "{s}");
            assert!(s["millis"].is_u64(), "{s}");
            s["step"].as_str().unwrap()
        })
        .collect();
    let expected_tail = [
        "create room",
        "invite B",
        "B joins",
        "B syncs",
        "A sends 7 messages",
        "B receives 7 messages",
        "upload media",
        "download media",
    ];
    assert_eq!(steps.len(), 3 + expected_tail.len(), "{steps:?}");
    assert!(steps[0].starts_with("register smoke-"), "{steps:?}");
    assert!(steps[1].starts_with("register smoke-"), "{steps:?}");
    assert!(steps[2].starts_with("log in smoke-"), "{steps:?}");
    assert_eq!(steps[3..], expected_tail);

    // The human report lists the same steps and the verdict.
    let out = smoke(server.port, &secret_file, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok     download media"), "{text}");
    assert!(text.trim_end().ends_with("smoke test passed"), "{text}");
}

#[test]
fn smoke_with_a_wrong_registration_secret_fails_at_registration() {
    let dir = tempfile::tempdir().unwrap();
    let server = homeserver(dir.path());
    let secret_file = secret_file(dir.path(), "not-the-secret");

    let out = smoke(server.port, &secret_file, &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("smoke test failed at step `register smoke-"),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    assert!(stderr.contains("HMAC incorrect"), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FAILED register smoke-"), "{text}");
    assert!(
        !text.contains("log in"),
        "no step after the failure runs: {text}"
    );
    assert!(text.trim_end().ends_with("smoke test failed"), "{text}");

    // With --json, stdout is still one document: the report, naming the failed step.
    let out = smoke(server.port, &secret_file, &["--json"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let failed = &report["steps"][0];
    assert_eq!(failed["ok"], false, "{report:#}");
    assert_eq!(failed["status"], 403, "{report:#}");
    assert_eq!(
        report["steps"].as_array().map(Vec::len),
        Some(1),
        "{report:#}"
    );
}

#[test]
fn smoke_waits_out_the_homeservers_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let strict = TEST_SETTINGS.replace(
        "rc_message: {per_second: 1000, burst_count: 1000}",
        "rc_message: {per_second: 2, burst_count: 2}",
    );
    assert_ne!(strict, TEST_SETTINGS);
    let server = homeserver_with(dir.path(), &strict);
    let secret_file = secret_file(dir.path(), SECRET);

    let out = smoke(server.port, &secret_file, &["--messages", "6"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok     B receives 6 messages"), "{stdout}");
    let log = server._synapse.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains(" 429 ") && l.contains("/send/m.room.message/")),
        "Synapse never rate-limited a send, so nothing was waited out"
    );
}

#[test]
fn smoke_over_tls_trusts_the_given_ca_and_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = homeserver(dir.path());
    let secret_file = secret_file(dir.path(), SECRET);
    let pki = crate::harness::tls::pki(dir.path());
    let tls_port = reserved_port();
    let config = format!(
        "global\n    log stdout format raw local0 info\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    \
         timeout server 60s\n\
         frontend tls\n    bind 127.0.0.1:{tls_port} ssl crt {bundle}\n    \
         default_backend synapse\n\
         backend synapse\n    server synapse 127.0.0.1:{port}\n",
        bundle = pki.server_bundle.display(),
        port = server.port,
    );
    let _tls = crate::harness::haproxy::start(dir.path(), "tls", &config, &[], &[tls_port]);
    let base_url = format!("https://localhost:{tls_port}");

    let ca = pki.ca.to_str().unwrap();
    let out = smoke_at(&base_url, &secret_file, &["--ca-file", ca]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with("smoke test passed"), "{stdout}");

    let out = smoke_at(&base_url, &secret_file, &[]);
    assert!(!out.status.success(), "an unknown CA was trusted");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed at step `register smoke-"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
