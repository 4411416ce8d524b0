//! HAProxy with a given configuration, checked with `haproxy -c` before it starts.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::net::{listening, wait_for};
use test_support::process::Service;

/// Writes `config` as `<dir>/<name>.cfg`, checks it, starts HAProxy in the foreground with
/// `env` (variables the configuration names) and waits until every port of `ports` accepts
/// connections.
pub fn start(dir: &Path, name: &str, config: &str, env: &[(&str, &str)], ports: &[u16]) -> Service {
    test_support::require("haproxy", "install it with `apt-get install -y haproxy`");
    let path = dir.join(format!("{name}.cfg"));
    std::fs::write(&path, config).unwrap();
    let check = Command::new("haproxy")
        .envs(env.iter().copied())
        .args(["-c", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{name}: haproxy -c refused the configuration:\n{}\n{config}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut command = Command::new("haproxy");
    command
        .envs(env.iter().copied())
        .args(["-db", "-f"])
        .arg(&path);
    let mut service = Service::spawn(name, command, &dir.join(format!("{name}.log")));
    wait_for(name, Duration::from_secs(10), || {
        service.assert_running();
        ports.iter().all(|p| listening(*p))
    });
    service
}
