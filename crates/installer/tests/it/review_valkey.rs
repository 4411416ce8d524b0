//! The review of issue 16, item 10: Valkey's Sentinels authenticate, no password is on a
//! command line, and Sentinel's state survives restarts.
//!
//! The chart's own start scripts and configuration files (ConfigMap `<release>-valkey`) run
//! here with Debian's redis-server and redis-sentinel, each "pod" on its own loopback address
//! (127.x.y.10+i for Valkey, .20+i for Sentinel, so every one keeps the chart's ports 6379 and
//! 26379) and its own directories standing in for the pod's volumes. Only the cluster host
//! names, the mount paths, the listening address and the program names are rewritten.
//! Before the commit that added this file the scripts passed `--requirepass` on the command line
//! and the probe `-a`, the Sentinels had no password, and Sentinels restarted together fell
//! back to pod 0 even after a failover (their state was on an emptyDir).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use test_support::net::wait_for;
use test_support::process::Service;

use crate::harness::chart::{self, Rendered};
use crate::stack_chart::{documents, render, root, site_file, NAMESPACE, RELEASE};

const VALKEYS: usize = 3;
const SENTINELS: usize = 3;

/// One stand-in pod: its loopback address, its directories, its process.
struct Pod {
    ip: String,
    dir: PathBuf,
    service: Option<Service>,
}

/// Valkey and Sentinel pods started from the chart's scripts.
struct Set {
    files: BTreeMap<String, String>,
    password: String,
    valkeys: Vec<Pod>,
    sentinels: Vec<Pod>,
    /// Cluster host name → loopback address.
    hosts: Vec<(String, String)>,
}

fn rendered() -> Rendered {
    let chart = root().join("charts/messenger");
    let profile = chart.join("profiles/100.yaml");
    chart::render(&chart, RELEASE, NAMESPACE, &[&site_file(), &profile])
}

/// A /24 of loopback addresses nothing else here uses (the tests elsewhere use 127.0.0.1).
fn free_subnet() -> String {
    for _ in 0..50 {
        let [a, b] = rand_pair();
        let base = format!("127.{a}.{b}");
        let free = (0..30).all(|i| {
            std::net::TcpListener::bind(format!("{base}.{i}:6379")).is_ok()
                && std::net::TcpListener::bind(format!("{base}.{i}:26379")).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free loopback /24 for the Valkey pods");
}

fn rand_pair() -> [u8; 2] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mix = nanos ^ std::process::id().wrapping_mul(2_654_435_761);
    [100 + (mix % 150) as u8, 1 + ((mix >> 8) % 250) as u8]
}

impl Set {
    fn new(rendered: &Rendered, dir: &Path) -> Set {
        for tool in ["redis-server", "redis-sentinel", "redis-cli"] {
            test_support::require(tool, "apt-get install -y redis-server redis-sentinel");
        }
        let name = format!("{RELEASE}-valkey");
        let files = [
            "valkey.conf",
            "sentinel.conf",
            "common.sh",
            "valkey-start.sh",
            "sentinel-start.sh",
        ]
        .into_iter()
        .map(|key| {
            let text = rendered
                .config_map(&name, key)
                .unwrap_or_else(|| panic!("ConfigMap {name} has no {key}"));
            (key.to_string(), text)
        })
        .collect();
        let password = rendered
            .secret(&format!("{RELEASE}-valkey-auth"), "password")
            .expect("Secret <release>-valkey-auth has password");
        let subnet = free_subnet();
        let mut hosts = Vec::new();
        let mut pods = |kind: &str, count: usize, first: usize| -> Vec<Pod> {
            (0..count)
                .map(|i| {
                    let service = format!("{RELEASE}-{kind}");
                    let ip = format!("{subnet}.{}", first + i);
                    hosts.push((
                        format!("{service}-{i}.{service}.{NAMESPACE}.svc.cluster.local"),
                        ip.clone(),
                    ));
                    let dir = dir.join(format!("{kind}-{i}"));
                    for sub in ["etc", "data", "run", "tmp"] {
                        std::fs::create_dir_all(dir.join(sub)).unwrap();
                    }
                    Pod {
                        ip,
                        dir,
                        service: None,
                    }
                })
                .collect()
        };
        let valkeys = pods("valkey", VALKEYS, 10);
        let sentinels = pods("valkey-sentinel", SENTINELS, 20);
        // Longest names first: `msg-valkey-sentinel-0...` before `msg-valkey-0...` cannot
        // clash, but the order keeps the rewrite independent of that.
        hosts.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        Set {
            files,
            password,
            valkeys,
            sentinels,
            hosts,
        }
    }

    /// The chart's file as `pod` (at `ip`, in `dir`) sees it here.
    fn local_file(&self, key: &str, pod: &Pod, service: &str) -> String {
        let mut text = self.files[key].clone();
        for (name, ip) in &self.hosts {
            text = text.replace(name, ip);
        }
        let dir = pod.dir.display();
        text.replace(
            &format!("${{POD_NAME}}.{service}.{NAMESPACE}.svc.cluster.local"),
            &pod.ip,
        )
        .replace("bind * -::*", &format!("bind {}", pod.ip))
        .replace("/etc/valkey/", &format!("{dir}/etc/"))
        .replace("/run/valkey/", &format!("{dir}/run/"))
        .replace("dir /tmp", &format!("dir {dir}/tmp"))
        .replace("dir /data", &format!("dir {dir}/data"))
        .replace("=/data/", &format!("={dir}/data/"))
        .replace("valkey-cli ", "redis-cli ")
        .replace("valkey-server ", "redis-server ")
        .replace("valkey-sentinel ", "redis-sentinel ")
    }

    fn start(&mut self, sentinel: bool, i: usize, logs: &Path) {
        let (kind, script) = if sentinel {
            ("valkey-sentinel", "sentinel-start.sh")
        } else {
            ("valkey", "valkey-start.sh")
        };
        let service = format!("{RELEASE}-{kind}");
        let pod = if sentinel {
            &self.sentinels[i]
        } else {
            &self.valkeys[i]
        };
        for key in self.files.keys() {
            let text = self.local_file(key, pod, &service);
            std::fs::write(pod.dir.join("etc").join(key), text).unwrap();
        }
        let mut command = Command::new("sh");
        command
            .arg(pod.dir.join("etc").join(script))
            .env("POD_NAME", format!("{service}-{i}"))
            .env("REDISCLI_AUTH", &self.password);
        let name = format!("{kind}-{i}");
        let started = Service::spawn(&name, command, &logs.join(format!("{name}.log")));
        let pod = if sentinel {
            &mut self.sentinels[i]
        } else {
            &mut self.valkeys[i]
        };
        pod.service = Some(started);
    }

    fn stop(&mut self, sentinel: bool, i: usize) {
        let pods = if sentinel {
            &mut self.sentinels
        } else {
            &mut self.valkeys
        };
        if let Some(mut service) = pods[i].service.take() {
            service.kill();
        }
    }

    /// `redis-cli` against `ip:port`, with the password or without; stdout and stderr.
    fn cli(&self, ip: &str, port: u16, auth: bool, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-h", ip, "-p", &port.to_string()]).args(args);
        if auth {
            command.env("REDISCLI_AUTH", &self.password);
        }
        let out = command.output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The primary a Sentinel names, as a loopback address.
    fn primary_named_by(&self, sentinel: usize) -> Option<String> {
        let answer = self.cli(
            &self.sentinels[sentinel].ip,
            26379,
            true,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "messenger"],
        );
        let first = answer.lines().next()?.trim().to_string();
        self.valkeys.iter().any(|v| v.ip == first).then_some(first)
    }

    /// A field of `SENTINEL MASTER messenger` as a Sentinel answers it.
    fn sentinel_field(&self, sentinel: usize, field: &str) -> Option<String> {
        let answer = self.cli(
            &self.sentinels[sentinel].ip,
            26379,
            true,
            &["SENTINEL", "MASTER", "messenger"],
        );
        let lines: Vec<&str> = answer.lines().collect();
        let at = lines.iter().position(|l| *l == field)?;
        lines.get(at + 1).map(|v| v.to_string())
    }

    /// Every Sentinel names `primary` and knows the other Sentinels and the replicas.
    fn settled_on(&self, primary: &str) -> bool {
        (0..SENTINELS).all(|s| {
            self.primary_named_by(s).as_deref() == Some(primary)
                && self.sentinel_field(s, "num-other-sentinels")
                    == Some((SENTINELS - 1).to_string())
                && self.sentinel_field(s, "num-slaves") == Some((VALKEYS - 1).to_string())
        })
    }

    fn start_all(&mut self, logs: &Path) {
        self.start(false, 0, logs);
        let ip = self.valkeys[0].ip.clone();
        self.wait("valkey-0 answers", 20, |set| {
            set.cli(&ip, 6379, true, &["PING"]).contains("PONG")
        });
        for i in 1..VALKEYS {
            self.start(false, i, logs);
        }
        for i in 0..SENTINELS {
            self.start(true, i, logs);
        }
        let first = self.valkeys[0].ip.clone();
        self.wait(
            "the Sentinels know the primary, each other and the replicas",
            60,
            |set| set.settled_on(&first),
        );
    }

    /// Waits up to `secs` for `ready`; panics with every pod's log if it never holds.
    fn wait(&self, what: &str, secs: u64, mut ready: impl FnMut(&Set) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !ready(self) {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not after {secs}s\n{}",
                self.log_tails()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tails(&self) -> String {
        self.valkeys
            .iter()
            .chain(&self.sentinels)
            .filter_map(|p| p.service.as_ref())
            .map(|s| format!("--- {}\n{}", s.name, s.log_text()))
            .collect()
    }
}

#[test]
fn valkey_and_its_sentinels_refuse_clients_without_the_password_which_no_command_line_holds() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = rendered();
    let mut set = Set::new(&rendered, dir.path());
    set.start_all(dir.path());

    for (pods, port) in [(&set.valkeys, 6379), (&set.sentinels, 26379)] {
        for pod in pods.iter() {
            let bare = set.cli(&pod.ip, port, false, &["PING"]);
            assert!(
                bare.contains("NOAUTH"),
                "{}:{port} answered a client without the password: {bare}",
                pod.ip
            );
            let authed = set.cli(&pod.ip, port, true, &["PING"]);
            assert!(authed.contains("PONG"), "{}:{port}: {authed}", pod.ip);
        }
    }
    // The Sentinels' own links (to each other, to the servers) authenticate: they found
    // each other and the replicas above, and a wrong password is refused.
    let wrong = Command::new("redis-cli")
        .args(["-h", &set.sentinels[0].ip, "-p", "26379", "PING"])
        .env("REDISCLI_AUTH", "wrong")
        .output()
        .unwrap();
    let wrong = String::from_utf8_lossy(&wrong.stdout).to_string()
        + &String::from_utf8_lossy(&wrong.stderr);
    assert!(
        wrong.contains("WRONGPASS") || wrong.contains("invalid"),
        "{wrong}"
    );

    // No command in the start scripts carries the password as an argument: it goes into the
    // generated files, and valkey-cli reads it from REDISCLI_AUTH.
    for key in ["common.sh", "valkey-start.sh", "sentinel-start.sh"] {
        for line in set.files[key].lines() {
            for flag in [" -a ", "--requirepass", "--masterauth", "--pass "] {
                assert!(
                    !line.contains(flag),
                    "{key} passes a password as an argument: {line}"
                );
            }
        }
    }

    // Nor does any container's command, arguments or probe in the rendered chart.
    let docs = documents(&render("100", &[]));
    let mut commands = Vec::new();
    for doc in &docs {
        let spec = &doc["spec"]["template"]["spec"];
        for container in spec["containers"].as_sequence().into_iter().flatten() {
            for key in ["command", "args"] {
                commands.push(serde_norway::to_string(&container[key]).unwrap());
            }
            for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                commands.push(serde_norway::to_string(&container[probe]).unwrap());
            }
        }
    }
    for text in commands.iter().filter(|t| t.contains("valkey")) {
        for flag in [" -a ", "--requirepass", "--masterauth", "--pass "] {
            assert!(
                !text.contains(flag),
                "a password flag on a command line: {text}"
            );
        }
    }
    drop(set);
}

#[test]
fn sentinels_restarted_together_after_a_failover_follow_the_promoted_primary() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = rendered();
    let mut set = Set::new(&rendered, dir.path());
    set.start_all(dir.path());

    // The primary (pod 0) dies; the Sentinels promote a replica.
    set.stop(false, 0);
    let old = set.valkeys[0].ip.clone();
    let mut promoted = String::new();
    wait_for(
        "a replica promoted",
        Duration::from_secs(60),
        || match set.primary_named_by(0) {
            Some(p) if p != old => {
                promoted = p;
                true
            }
            _ => false,
        },
    );
    // Pod 0 comes back as the new primary's replica (it asks the Sentinels).
    set.start(false, 0, dir.path());
    let promoted_ip = promoted.clone();
    wait_for(
        "pod 0 replicates the promoted primary",
        Duration::from_secs(30),
        || {
            let info = set.cli(&old, 6379, true, &["INFO", "replication"]);
            info.contains("role:slave")
                && info.contains(&format!("master_host:{promoted_ip}"))
                && info.contains("master_link_status:up")
        },
    );
    wait_for("the Sentinels settle", Duration::from_secs(60), || {
        set.settled_on(&promoted)
    });

    // Every Sentinel stops, then all start at once: none can ask a peer, so each has only
    // what it kept on its volume.
    for i in 0..SENTINELS {
        set.stop(true, i);
    }
    for i in 0..SENTINELS {
        set.start(true, i, dir.path());
    }
    wait_for(
        "the restarted Sentinels follow the promoted primary",
        Duration::from_secs(60),
        || set.settled_on(&promoted),
    );
    // And keep following it: no failover back to pod 0 (down-after is 5 s).
    std::thread::sleep(Duration::from_secs(7));
    for s in 0..SENTINELS {
        assert_eq!(
            set.primary_named_by(s).as_deref(),
            Some(promoted.as_str()),
            "Sentinel {s} moved off the promoted primary:\n{}",
            set.log_tails()
        );
    }
    let info = set.cli(&promoted, 6379, true, &["INFO", "replication"]);
    assert!(info.contains("role:master"), "{info}");
    assert!(
        info.contains(&format!("connected_slaves:{}", VALKEYS - 1)),
        "{info}"
    );
}
