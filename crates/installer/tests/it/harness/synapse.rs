//! Synapse processes: the main process and generic workers, started from configuration files,
//! plus a single-process configuration for the smoke test.

use base64::Engine as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_support::net::{http_get, wait_for};
use test_support::process::Service;

/// Time a Synapse process may take to answer `/health` (first start runs the migrations).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Fails the test with an install hint unless Synapse is installed.
pub fn require() {
    test_support::require("python3", "install python3");
    test_support::require_python("synapse", HINT);
}

/// Fails the test with an install hint unless Synapse's PostgreSQL and Redis support are
/// installed.
pub fn require_postgres_and_redis() {
    require();
    for module in ["psycopg2", "txredisapi", "hiredis"] {
        test_support::require_python(module, HINT);
    }
}

const HINT: &str = "install it with `pip install 'matrix-synapse[postgres,redis]'`";

/// Starts the main process with `configs` (later files override earlier ones).
pub fn spawn_main(configs: &[PathBuf], log: &Path) -> Service {
    spawn("synapse-main", "synapse.app.homeserver", configs, log)
}

fn spawn(name: &str, module: &str, configs: &[PathBuf], log: &Path) -> Service {
    spawn_with_path(name, module, configs, log, None)
}

/// Starts `python3 -m <module>` as `name` with `configs`, and `python_path` (modules the
/// chart mounts, such as the antivirus module) on PYTHONPATH.
pub fn spawn_with_path(
    name: &str,
    module: &str,
    configs: &[PathBuf],
    log: &Path,
    python_path: Option<&Path>,
) -> Service {
    let mut command = Command::new("python3");
    command.args(["-m", module]);
    for config in configs {
        command.arg("-c").arg(config);
    }
    command.env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(path) = python_path {
        command.env("PYTHONPATH", path);
    }
    Service::spawn(name, command, log)
}

/// Waits until the process answers `/health` on `port`; panics with its log if it died.
pub fn wait_healthy(service: &mut Service, port: u16) {
    let name = service.name.clone();
    wait_for(&name, START_TIMEOUT, || {
        service.assert_running();
        matches!(http_get(port, "/health"), Some((200, _)))
    });
}

/// The value of a Prometheus counter or gauge on a metrics listener (summed over labels).
pub fn metric(port: u16, name: &str) -> f64 {
    let Some((200, body)) = http_get(port, "/_synapse/metrics") else {
        return 0.0;
    };
    body.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Writes a Python logging configuration sending INFO and above (access log included) to
/// stderr, which the harness captures.
pub fn write_log_config(path: &Path) {
    std::fs::write(
        path,
        "version: 1\n\
         formatters:\n  plain:\n    format: '%(asctime)s %(name)s %(levelname)s %(message)s'\n\
         handlers:\n  console:\n    class: logging.StreamHandler\n    formatter: plain\n\
         root:\n  level: INFO\n  handlers: [console]\n\
         disable_existing_loggers: false\n",
    )
    .unwrap();
}

/// Writes a fresh ed25519 signing key in Synapse's format.
pub fn write_signing_key(path: &Path) {
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .unwrap();
    let key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
    std::fs::write(path, format!("ed25519 a_test {key}\n")).unwrap();
}

/// Settings that keep a test homeserver to itself and let tests go fast.
pub const TEST_SETTINGS: &str = "\
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
enable_authenticated_media: true
rc_message: {per_second: 1000, burst_count: 1000}
rc_registration: {per_second: 1000, burst_count: 1000}
rc_login:
  address: {per_second: 1000, burst_count: 1000}
  account: {per_second: 1000, burst_count: 1000}
  failed_attempts: {per_second: 1000, burst_count: 1000}
rc_joins:
  local: {per_second: 1000, burst_count: 1000}
  remote: {per_second: 1000, burst_count: 1000}
rc_invites:
  per_room: {per_second: 1000, burst_count: 1000}
  per_user: {per_second: 1000, burst_count: 1000}
rc_media_create: {per_second: 1000, burst_count: 1000}
";

/// Writes a single-process homeserver (SQLite, client API on `port`, no federation, the given
/// `settings` such as [`TEST_SETTINGS`]) in `dir`; returns its configuration file.
pub fn write_standalone(
    dir: &Path,
    server_name: &str,
    port: u16,
    shared_secret: &str,
    settings: &str,
) -> PathBuf {
    let log_config = dir.join("log.yaml");
    write_log_config(&log_config);
    let signing_key = dir.join("signing.key");
    write_signing_key(&signing_key);
    let config = format!(
        "server_name: {server_name}\n\
         pid_file: {dir}/homeserver.pid\n\
         public_baseurl: http://127.0.0.1:{port}/\n\
         listeners:\n  - port: {port}\n    bind_addresses: ['127.0.0.1']\n    type: http\n    \
         tls: false\n    x_forwarded: false\n    resources:\n      - names: [client]\n\
         database:\n  name: sqlite3\n  args:\n    database: {dir}/homeserver.db\n\
         log_config: {log}\n\
         media_store_path: {dir}/media\n\
         signing_key_path: {key}\n\
         registration_shared_secret: \"{shared_secret}\"\n\
         macaroon_secret_key: \"{shared_secret}-macaroon\"\n\
         form_secret: \"{shared_secret}-form\"\n\
         {settings}",
        dir = dir.display(),
        log = log_config.display(),
        key = signing_key.display(),
    );
    let path = dir.join("homeserver.yaml");
    std::fs::write(&path, config).unwrap();
    path
}
