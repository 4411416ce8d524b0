//! `installer smoke` against a real single-process Synapse: a healthy homeserver passes every
//! step; a wrong registration secret fails at the registration step with Synapse's answer.

mod harness;

use harness::net::free_port;
use harness::process::Service;
use std::path::Path;
use std::process::{Command, Output};

const SERVER_NAME: &str = "smoke.test";
const SECRET: &str = "smoke-shared-secret";

/// A running single-process Synapse and its client port.
struct Homeserver {
    port: u16,
    _synapse: Service,
}

fn homeserver(dir: &Path) -> Homeserver {
    harness::synapse::require();
    let port = free_port();
    let config = harness::synapse::write_standalone(dir, SERVER_NAME, port, SECRET);
    let mut synapse = harness::synapse::spawn_main(&[config], &dir.join("synapse.log"));
    harness::synapse::wait_healthy(&mut synapse, port);
    Homeserver {
        port,
        _synapse: synapse,
    }
}

fn smoke(port: u16, secret_file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_installer"))
        .arg("smoke")
        .args(["--base-url", &format!("http://127.0.0.1:{port}")])
        .args(["--server-name", SERVER_NAME])
        .arg("--registration-secret-file")
        .arg(secret_file)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn smoke_passes_every_step_against_a_healthy_homeserver() {
    let dir = tempfile::tempdir().unwrap();
    let server = homeserver(dir.path());
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();

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
    assert_eq!(steps.len(), 4 + expected_tail.len(), "{steps:?}");
    assert!(steps[0].starts_with("register smoke-"), "{steps:?}");
    assert!(steps[2].starts_with("log in smoke-"), "{steps:?}");
    assert_eq!(steps[4..], expected_tail);

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
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "not-the-secret").unwrap();

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
}
