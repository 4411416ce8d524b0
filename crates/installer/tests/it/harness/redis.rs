//! Redis replication with Sentinel: a primary, replicas, and sentinels that promote a replica
//! when the primary dies.

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use test_support::net::wait_for;
use test_support::ports::reserved_port;
use test_support::process::Service;

/// The name sentinels monitor the primary under.
pub const MASTER_NAME: &str = "mymaster";

/// How quickly sentinels act.
#[derive(Debug, Clone, Copy)]
pub struct SentinelTiming {
    /// Silence after which a sentinel deems the primary down.
    pub down_after_ms: u64,
    /// Time a failover may take before another is tried.
    pub failover_timeout_ms: u64,
}

impl Default for SentinelTiming {
    fn default() -> Self {
        SentinelTiming {
            down_after_ms: 1000,
            failover_timeout_ms: 10_000,
        }
    }
}

/// The configuration files the servers and sentinels start from (the chart's); the harness
/// appends its loopback port, address, directory and replication lines, which take
/// precedence.
#[derive(Debug, Clone)]
pub struct BaseConfig {
    /// Base of every server's configuration.
    pub server: String,
    /// Base of every sentinel's configuration.
    pub sentinel: String,
}

impl BaseConfig {
    /// `base` without the directives the harness sets itself: the listening port and
    /// address, and the directory (redis changes into it while reading the file).
    fn without_local(base: &str) -> String {
        base.lines()
            .filter(|line| {
                !matches!(
                    line.split_whitespace().next(),
                    Some("port" | "bind" | "dir")
                )
            })
            .map(|line| format!("{line}\n"))
            .collect()
    }
}

/// One `redis-server` or `redis-sentinel`.
pub struct Node {
    pub port: u16,
    pub service: Service,
}

/// A primary, its replicas and the sentinels watching them.
pub struct Replicated {
    pub servers: Vec<Node>,
    pub sentinels: Vec<Node>,
    password: Option<String>,
}

/// Starts a primary, `replicas` replicas and `sentinels` sentinels (quorum: a majority) in
/// `dir`; waits until the replicas are in sync and the sentinels know each other.
pub fn start(
    dir: &Path,
    replicas: usize,
    sentinels: usize,
    password: Option<&str>,
    timing: SentinelTiming,
    base: &BaseConfig,
) -> Replicated {
    test_support::require(
        "redis-server",
        "install it with `apt-get install -y redis-server`",
    );
    test_support::require(
        "redis-sentinel",
        "install it with `apt-get install -y redis-sentinel`",
    );
    test_support::require(
        "redis-cli",
        "install it with `apt-get install -y redis-tools`",
    );
    std::fs::create_dir_all(dir).unwrap();
    let auth = password
        .map(|p| format!("requirepass {0}\nmasterauth {0}\n", quoted(p)))
        .unwrap_or_default();
    let primary_port = reserved_port();
    let mut servers = Vec::new();
    for i in 0..=replicas {
        let port = if i == 0 {
            primary_port
        } else {
            reserved_port()
        };
        let follow = if i == 0 {
            String::new()
        } else {
            format!("replicaof 127.0.0.1 {primary_port}\n")
        };
        let name = format!("redis-{i}");
        let node_dir = dir.join(&name);
        std::fs::create_dir_all(&node_dir).unwrap();
        let config = node_dir.join("redis.conf");
        std::fs::write(
            &config,
            format!(
                "{}\nport {port}\nbind 127.0.0.1\ndir {}\n\
                 daemonize no\nreplica-priority 100\n{auth}{follow}",
                BaseConfig::without_local(&base.server),
                node_dir.display()
            ),
        )
        .unwrap();
        let mut command = Command::new("redis-server");
        command.arg(&config);
        let service = Service::spawn(&name, command, &dir.join(format!("{name}.log")));
        servers.push(Node { port, service });
    }
    let quorum = sentinels / 2 + 1;
    let mut watchers = Vec::new();
    for i in 0..sentinels {
        let port = reserved_port();
        let name = format!("sentinel-{i}");
        let config = dir.join(format!("{name}.conf"));
        let auth = password
            .map(|p| format!("sentinel auth-pass {MASTER_NAME} {}\n", quoted(p)))
            .unwrap_or_default();
        std::fs::write(
            &config,
            format!(
                "{}\nport {port}\nbind 127.0.0.1\ndaemonize no\ndir {}\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {quorum}\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {}\n\
                 sentinel failover-timeout {MASTER_NAME} {}\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n{auth}",
                BaseConfig::without_local(&base.sentinel),
                dir.display(),
                timing.down_after_ms,
                timing.failover_timeout_ms,
            ),
        )
        .unwrap();
        let mut command = Command::new("redis-sentinel");
        command.arg(&config);
        let service = Service::spawn(&name, command, &dir.join(format!("{name}.log")));
        watchers.push(Node { port, service });
    }
    let set = Replicated {
        servers,
        sentinels: watchers,
        password: password.map(str::to_string),
    };
    wait_for("redis replicas in sync", Duration::from_secs(20), || {
        set.cli(primary_port, &["INFO", "replication"])
            .contains(&format!("connected_slaves:{replicas}"))
    });
    wait_for("sentinels know each other", Duration::from_secs(30), || {
        set.sentinels.iter().all(|s| {
            let master = set.cli(s.port, &["SENTINEL", "MASTER", MASTER_NAME]);
            let fields: Vec<&str> = master.lines().collect();
            let value = |key: &str| {
                fields
                    .iter()
                    .position(|f| *f == key)
                    .and_then(|i| fields.get(i + 1))
                    .copied()
            };
            value("num-other-sentinels") == Some(&(sentinels - 1).to_string())
                && value("num-slaves") == Some(&replicas.to_string())
        })
    });
    set
}

/// `value` as a double-quoted Redis configuration string.
fn quoted(value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

impl Replicated {
    /// `redis-cli` against a loopback port; its output (errors included).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        let is_server = self.servers.iter().any(|s| s.port == port);
        if let (true, Some(password)) = (is_server, &self.password) {
            command.env("REDISCLI_AUTH", password);
        }
        command
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The port of the server the first sentinel names as primary.
    pub fn primary_port(&self) -> Option<u16> {
        let answer = self.cli(
            self.sentinels[0].port,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        );
        answer.lines().nth(1)?.trim().parse().ok()
    }

    /// The server currently serving as primary.
    pub fn primary(&mut self) -> Option<&mut Node> {
        let port = self.primary_port()?;
        self.servers.iter_mut().find(|n| n.port == port)
    }
}
