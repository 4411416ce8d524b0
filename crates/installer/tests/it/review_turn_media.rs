//! The review of issue 16, items 4, 5, 7 and 8, against the rendered chart:
//!
//! - coturn (7): each TURN node announces its own external address (`turn.externalIPs`,
//!   mapped from the node's address), relays never reach the cluster's pod, service and node
//!   networks, the TLS certificate is reloaded when cert-manager renews it, and the relay
//!   ports hold the profile's allocations; Debian's coturn runs the rendered configuration on
//!   loopback and enforces it;
//! - Pod Security (8): coturn, the one host-network workload, is alone in its own namespace;
//! - media (4): a scheduled rclone copy of the media volume to the bucket, one media instance,
//!   no planned growth on a StorageClass that cannot expand;
//! - Garage (5): the layout follows the StatefulSet's nodes by Garage's layout rules, and a
//!   single-node store says it is not durable.
//!
//! Needs `helm`, `busybox` (the images' shell and tools), Debian's `coturn` and `openssl`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_norway::Value;
use test_support::ports::reserved_port;
use test_support::{p, require, run};

use crate::stack_chart::{
    chart, config_map_key, documents, find, render, site_file, template, write, NAMESPACE, RELEASE,
};

const PROFILES: &[&str] = &["100", "1k", "5k", "10k", "20k"];
const TURN_NAMESPACE: &str = "matrix-turn";

fn kind_name(d: &Value) -> (String, String) {
    (
        d["kind"].as_str().unwrap_or_default().to_owned(),
        d["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The pod spec of a workload, if `d` is one.
fn pod_spec(d: &Value) -> Option<&Value> {
    match d["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => Some(&d["spec"]["template"]["spec"]),
        "CronJob" => Some(&d["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// `(key, value)` of every `key=value` line of a coturn configuration, in order.
fn conf_lines(conf: &str) -> Vec<(String, String)> {
    conf.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (l.to_owned(), String::new()),
        })
        .collect()
}

fn conf_values(conf: &str, key: &str) -> Vec<String> {
    conf_lines(conf)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect()
}

/// An IPv4 address as an integer.
fn ip(text: &str) -> u32 {
    text.parse::<std::net::Ipv4Addr>().unwrap().into()
}

/// A coturn IPv4 range `a-b` or `a` as (first, last); `None` for IPv6.
fn ipv4_range(range: &str) -> Option<(u32, u32)> {
    let (a, b) = range.split_once('-').unwrap_or((range, range));
    if a.contains(':') {
        return None;
    }
    Some((ip(a), ip(b)))
}

fn covered(ranges: &[String], addr: &str) -> bool {
    let a = ip(addr);
    ranges
        .iter()
        .filter_map(|r| ipv4_range(r))
        .any(|(lo, hi)| lo <= a && a <= hi)
}

/// A directory of busybox applets (the alpine images' shell and tools) plus `extra` links.
fn busybox_bin(dir: &Path, extra: &[(&str, &str)]) -> PathBuf {
    require("busybox", "busybox");
    let busybox = which("busybox");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for applet in [
        "sh", "cat", "md5sum", "cp", "cut", "date", "grep", "head", "kill", "sed", "sleep", "tr",
        "wget", "echo", "printf",
    ] {
        std::os::unix::fs::symlink(&busybox, bin.join(applet)).unwrap();
    }
    for (name, target) in extra {
        std::os::unix::fs::symlink(target, bin.join(name)).unwrap();
    }
    bin
}

fn which(tool: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}

// ---------------------------------------------------------------------------------------
// 7. coturn

/// The node-to-external address map, the peer rules and the quota, at every profile.
#[test]
fn each_turn_node_announces_its_external_address_and_relays_never_reach_the_cluster() {
    for profile in PROFILES {
        let docs = documents(&render(profile, &[]));
        let map = config_map_key(&docs, "msg-coturn", "external-ips");
        // No NAT in the fixture: each node holds its external address.
        assert_eq!(
            map.lines().collect::<Vec<_>>(),
            ["10.20.0.11 10.20.0.11", "10.20.0.12 10.20.0.12"],
            "{profile}"
        );
        let start = config_map_key(&docs, "msg-coturn", "start.sh");
        assert!(
            !start.contains("external-ip=%s/")
                && !start.contains("\"$HOST_IP\" \"$HOST_IP\" \"$HOST_IP\""),
            "{profile}: external-ip must be the node's external address, not $HOST_IP"
        );
        let conf = config_map_key(&docs, "msg-coturn", "turnserver.conf");
        assert!(
            conf_values(&conf, "external-ip").is_empty(),
            "{profile}: the node's address is appended at start"
        );
        let denied = conf_values(&conf, "denied-peer-ip");
        let allowed = conf_values(&conf, "allowed-peer-ip");
        // The fixture's pod, service and node networks, and the usual special ranges.
        for addr in [
            "10.244.3.7",     // pod
            "10.96.0.1",      // service (the API server's ClusterIP)
            "10.111.255.254", // last service address of 10.96.0.0/12
            "10.20.0.11",     // a node (a TURN node's own address)
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
        ] {
            assert!(
                covered(&denied, addr),
                "{profile}: {addr} not denied: {denied:?}"
            );
            assert!(
                !covered(&allowed, addr),
                "{profile}: {addr} allowed: {allowed:?}"
            );
        }
        // What calls need: the users' networks (turn.clientCIDRs), and only them.
        assert_eq!(allowed, ["10.30.0.0-10.30.255.255"], "{profile}");
        assert!(
            covered(&denied, "10.30.1.1"),
            "{profile}: private stays denied"
        );
        assert!(!covered(&denied, "8.8.8.8"), "{profile}");
        assert!(denied.contains(&"::ffff:0.0.0.0-::ffff:255.255.255.255".to_owned()));
        assert!(conf_lines(&conf).contains(&("no-tcp-relay".into(), String::new())));
        // Relay ports hold the profile's allocations; the quota is those allocations.
        let port = |k: &str| conf_values(&conf, k)[0].parse::<u64>().unwrap();
        let ports = port("max-port") - port("min-port") + 1;
        let total = port("total-quota");
        let user = port("user-quota");
        let users: u64 = match *profile {
            "100" => 100,
            "1k" => 1000,
            "5k" => 5000,
            "10k" => 10000,
            _ => 20000,
        };
        assert_eq!(
            total,
            users * 3 / 10,
            "{profile}: 10% in calls × 3 allocations per node"
        );
        assert!(
            total <= ports,
            "{profile}: total-quota {total} > {ports} relay ports"
        );
        assert!(user <= total, "{profile}");
    }
}

/// Behind NAT, each node's own address maps to the external address clients reach it at.
#[test]
fn behind_nat_each_node_address_maps_to_its_external_address() {
    let docs = documents(&render(
        "1k",
        &[
            "--set-json",
            r#"turn.nodeIPs=["192.168.7.11","192.168.7.12"]"#,
        ],
    ));
    let map = config_map_key(&docs, "msg-coturn", "external-ips");
    assert_eq!(
        map.lines().collect::<Vec<_>>(),
        ["192.168.7.11 10.20.0.11", "192.168.7.12 10.20.0.12"]
    );
    // Synapse still hands out the external addresses.
    let hs = config_map_key(&docs, "msg-synapse", "homeserver.yaml");
    for uri in [
        "turn:10.20.0.11:3478?transport=udp",
        "turn:10.20.0.12:3478?transport=tcp",
        "turns:turn.example.test:5349?transport=tcp",
    ] {
        assert!(hs.contains(uri), "{uri}");
    }
    assert!(!hs.contains("192.168.7."));
    // A NAT address outside the cluster's networks is a peer for relay-to-relay calls.
    let docs = documents(&render(
        "1k",
        &[
            "--set-json",
            r#"turn.externalIPs=["198.51.100.7","198.51.100.8"]"#,
            "--set-json",
            r#"turn.nodeIPs=["10.20.0.11","10.20.0.12"]"#,
        ],
    ));
    let conf = config_map_key(&docs, "msg-coturn", "turnserver.conf");
    let allowed = conf_values(&conf, "allowed-peer-ip");
    assert!(allowed.contains(&"198.51.100.7".to_owned()), "{allowed:?}");
    assert!(!covered(&allowed, "10.20.0.11"), "{allowed:?}");
}

#[test]
fn turn_without_the_cluster_networks_or_with_clients_inside_them_is_refused() {
    let out = template("1k", &["--set-json", "cluster.serviceCIDRs=[]"]).failed();
    assert!(
        out.stderr
            .contains("cluster.serviceCIDRs: required when TURN is on"),
        "{}",
        out.stderr
    );
    let out = template(
        "1k",
        &["--set-json", r#"turn.clientCIDRs=["10.96.0.0/16"]"#],
    )
    .failed();
    assert!(
        out.stderr
            .contains("turn.clientCIDRs: 10.96.0.0/16 overlaps cluster.serviceCIDRs 10.96.0.0/12"),
        "{}",
        out.stderr
    );
    let out = template("1k", &["--set-json", r#"turn.nodeIPs=["10.1.1.1"]"#]).failed();
    assert!(
        out.stderr.contains("turn.nodeIPs: 1 node addresses for 2"),
        "{}",
        out.stderr
    );
    // TURN off: no cluster networks needed.
    template(
        "1k",
        &[
            "--set",
            "turn.enabled=false",
            "--set-json",
            "cluster.podCIDRs=[]",
        ],
    )
    .ok();
}

#[test]
fn a_relay_range_smaller_than_the_profiles_allocations_is_refused() {
    // 256 ports, today's former default, against 300 allocations at 1k.
    let out = template("1k", &["--set", "turn.relayPortMax=49407"]).failed();
    assert!(
        out.stderr
            .contains("256 relay ports per TURN node (49152-49407)")
            && out
                .stderr
                .contains("profile 1k plans 300 concurrent allocations"),
        "{}",
        out.stderr
    );
    template("100", &["--set", "turn.relayPortMax=49407"]).ok();
}

/// A turnserver started from the rendered files; killed (with its shell) on drop.
struct Turn {
    child: Child,
    log: PathBuf,
}

impl Turn {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_for_log(&self, text: &str, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "no {text:?} in coturn's log after {within:?}:\n{}",
            self.log()
        );
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh server certificate and key (of a new test CA) as tls.crt and tls.key in `tls`.
fn new_certificate(tls: &Path, name: &str) {
    let ca = test_support::registry::TestCa::create(&tls.join(format!("ca-{name}")));
    std::fs::copy(&ca.server_cert, tls.join("tls.crt")).unwrap();
    std::fs::copy(&ca.server_key, tls.join("tls.key")).unwrap();
}

/// The rendered coturn files under `dir`, with the container's paths moved there, ready to
/// start with `sh etc/start.sh` and HOST_IP.
fn coturn_files(dir: &Path, listen: u16, tls_port: u16) -> PathBuf {
    let ports = [
        "--set".to_owned(),
        format!("turn.port={listen}"),
        "--set".to_owned(),
        format!("turn.tlsPort={tls_port}"),
        "--set-json".to_owned(),
        r#"turn.nodeIPs=["127.0.0.1","127.0.0.2"]"#.to_owned(),
    ];
    let args: Vec<&str> = ports.iter().map(String::as_str).collect();
    let docs = documents(&render("1k", &args));
    let cm = find(&docs, "ConfigMap", "msg-coturn");
    for sub in ["etc", "run", "tls", "secrets"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let moved = |text: &str| {
        text.replace("/etc/coturn/", &format!("{}/etc/", dir.display()))
            .replace("/var/tmp/", &format!("{}/run/", dir.display()))
            .replace("/tls/", &format!("{}/tls/", dir.display()))
            .replace("/secrets/", &format!("{}/secrets/", dir.display()))
            .replace("sleep 30", "sleep 1")
    };
    for (key, text) in cm["data"].as_mapping().unwrap() {
        write(
            &dir.join("etc"),
            key.as_str().unwrap(),
            &moved(text.as_str().unwrap()),
        );
    }
    write(&dir.join("secrets"), "turn-shared-secret", "s3cret");
    new_certificate(&dir.join("tls"), "turn.example.test");
    busybox_bin(dir, &[("turnserver", p(&which("turnserver")))])
}

fn start_coturn(dir: &Path, bin: &Path, host_ip: &str, log: &str) -> Turn {
    use std::os::unix::process::CommandExt;
    let log = dir.join(log);
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin.join("sh"))
        .arg(dir.join("etc/start.sh"))
        .env_clear()
        .env("PATH", bin)
        .env("HOST_IP", host_ip)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .process_group(0)
        .spawn()
        .unwrap();
    Turn { child, log }
}

/// A TURN client allocating a relay on the server and asking for a permission to `peer`.
fn uclient(port: u16, peer: &str) -> String {
    let out = Command::new("timeout")
        .args([
            "10",
            "turnutils_uclient",
            "-v",
            "-p",
            &port.to_string(),
            "-W",
            "s3cret",
            "-u",
            "alice",
            "-e",
            peer,
            "-r",
            "5000",
            "-n",
            "1",
            "-m",
            "1",
            "-c",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Debian's coturn runs the rendered turnserver.conf through the container's start script on
/// loopback: every option and range is accepted, the relay announces the node's external
/// address, a cluster peer is refused and a client network is not, a renewed certificate is
/// reloaded, SIGTERM stops it, and a node the site does not name refuses to start.
#[test]
fn debians_coturn_runs_the_rendered_config_enforces_it_and_reloads_its_certificate() {
    require("turnserver", "coturn");
    require("turnutils_uclient", "coturn");
    require("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let (listen, tls_port) = (reserved_port(), reserved_port());
    let bin = coturn_files(dir.path(), listen, tls_port);
    let conf = std::fs::read_to_string(dir.path().join("etc/turnserver.conf")).unwrap();

    let turn = start_coturn(dir.path(), &bin, "127.0.0.1", "coturn.log");
    turn.wait_for_log("Relay ports initialization done", Duration::from_secs(20));
    let log = turn.log();
    assert!(
        log.contains("coturn: node 127.0.0.1, external address 10.20.0.11"),
        "{log}"
    );
    for bad in [
        "Wrong address format",
        "Whitelisting external-ip private part",
    ] {
        assert!(!log.contains(bad), "{bad}:\n{log}");
    }
    // Every option parses but the Prometheus exporter's, which Debian's build lacks and the
    // carried coturn has (monitoring_calls.rs).
    let start = std::fs::read_to_string(dir.path().join("etc/start.sh")).unwrap();
    crate::monitoring_calls::assert_only_the_exporter_is_skipped(&log, &conf, &start);
    // Every denied and allowed range was taken (coturn logs each as it parses it).
    let logged = |prefix: &str| -> BTreeSet<String> {
        log.lines()
            .filter_map(|l| l.split_once(prefix).map(|(_, r)| r.trim().to_owned()))
            .collect()
    };
    let set = |key: &str| -> BTreeSet<String> { conf_values(&conf, key).into_iter().collect() };
    assert_eq!(logged("Black listing: "), set("denied-peer-ip"), "{log}");
    assert_eq!(logged("White listing: "), set("allowed-peer-ip"), "{log}");

    // A pod address: refused (403 Forbidden IP).
    let denied = uclient(listen, "10.244.1.5");
    assert!(
        denied.contains("Received relay addr: 10.20.0.11:"),
        "{denied}"
    );
    assert!(denied.contains("error 403 (Forbidden IP)"), "{denied}");
    turn.wait_for_log("A peer IP 10.244.1.5 denied", Duration::from_secs(5));
    // A user's device (turn.clientCIDRs): permitted, and the relay is the external address.
    let allowed = uclient(listen, "10.30.1.5");
    assert!(
        allowed.contains("Received relay addr: 10.20.0.11:"),
        "{allowed}"
    );
    assert!(!allowed.contains("(Forbidden IP)"), "{allowed}");

    // cert-manager renews: the kubelet swaps the files; coturn reloads them.
    new_certificate(&dir.path().join("tls"), "turn.example.test");
    turn.wait_for_log(
        "Reloading TLS certificates and keys",
        Duration::from_secs(15),
    );

    // The pod stops: SIGTERM to the shell stops coturn.
    run("kill", &["-TERM", &turn.child.id().to_string()], dir.path()).ok();
    let mut turn = turn;
    let start = Instant::now();
    loop {
        if let Some(status) = turn.child.try_wait().unwrap() {
            assert!(start.elapsed() < Duration::from_secs(10), "{status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM:\n{}",
            turn.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = std::fs::read_to_string(dir.path().join("run/turnserver.pid")).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "turnserver {pid} outlived its shell"
    );

    // A node that is no TURN node of the site: no external address to announce, no start.
    let mut stray = start_coturn(dir.path(), &bin, "127.0.0.9", "stray.log");
    let status = stray.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", stray.log());
    assert!(
        stray.log().contains("127.0.0.9 is not a TURN node address"),
        "{}",
        stray.log()
    );
}

// ---------------------------------------------------------------------------------------
// 8. Pod Security: coturn alone in its namespace

#[test]
fn coturn_and_only_coturn_runs_in_the_turn_namespace_with_its_own_secret() {
    for profile in ["100", "1k", "20k"] {
        let docs = documents(&render(profile, &[]));
        let mut in_turn = Vec::new();
        for d in &docs {
            let (kind, name) = kind_name(d);
            let ns = d["metadata"]["namespace"].as_str();
            if kind == "GatewayClass" || kind == "EnvoyProxy" {
                continue; // cluster-scoped, or the Gateway's own namespace
            }
            if ns == Some(TURN_NAMESPACE) {
                in_turn.push(format!("{kind}/{name}"));
            } else {
                assert!(
                    !name.starts_with("msg-coturn"),
                    "{profile}: {kind}/{name} in {ns:?}"
                );
            }
            // No workload outside the TURN namespace uses the host.
            if let Some(spec) = pod_spec(d) {
                let host = ["hostNetwork", "hostPID", "hostIPC"]
                    .iter()
                    .any(|k| spec[*k].as_bool() == Some(true));
                assert_eq!(host, ns == Some(TURN_NAMESPACE), "{profile}: {kind}/{name}");
            }
        }
        in_turn.sort();
        assert_eq!(
            in_turn,
            [
                "Certificate/msg-coturn-tls",
                "ConfigMap/msg-coturn",
                "DaemonSet/msg-coturn",
                "NetworkPolicy/msg-coturn-default-deny",
                "NetworkPolicy/msg-coturn-metrics",
                "PodMonitor/msg-coturn",
                "ServiceAccount/msg-coturn",
            ],
            "{profile}"
        );
        // coturn mounts Secrets of its own namespace only: the TURN shared secret the
        // installer copies there, and its certificate.
        let ds = find(&docs, "DaemonSet", "msg-coturn");
        let volumes = ds["spec"]["template"]["spec"]["volumes"]
            .as_sequence()
            .unwrap();
        let secrets: BTreeMap<&str, Vec<&str>> = volumes
            .iter()
            .filter(|v| v["secret"].is_mapping())
            .map(|v| {
                (
                    v["secret"]["secretName"].as_str().unwrap(),
                    v["secret"]["items"]
                        .as_sequence()
                        .map(|i| i.iter().filter_map(|i| i["key"].as_str()).collect())
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            secrets,
            BTreeMap::from([
                ("msg-coturn-tls", vec![]),
                ("msg-turn-shared-secret", vec!["turn-shared-secret"]),
            ])
        );
        // Synapse keeps handing out the nodes' external addresses and the TURN host.
        let hs = config_map_key(&docs, "msg-synapse", "homeserver.yaml");
        assert!(
            hs.contains("turn:10.20.0.12:3478?transport=udp"),
            "{profile}"
        );
        assert!(
            hs.contains("turns:turn.example.test:5349?transport=tcp"),
            "{profile}"
        );
    }
    // The namespace is a site value; the release namespace is refused.
    let docs = documents(&render("1k", &["--set", "turn.namespace=calls"]));
    assert_eq!(
        find(&docs, "DaemonSet", "msg-coturn")["metadata"]["namespace"].as_str(),
        Some("calls")
    );
    let out = template("1k", &["--set", &format!("turn.namespace={NAMESPACE}")]).failed();
    assert!(
        out.stderr
            .contains("turn.namespace: coturn needs the privileged"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// 4. Media

fn media_backup(docs: &[Value]) -> &Value {
    find(docs, "CronJob", "msg-media-backup")
}

#[test]
fn the_media_backup_copies_the_media_volume_to_the_bucket_from_the_media_pods_node() {
    let toml = std::fs::read_to_string(crate::stack_chart::root().join("images.toml")).unwrap();
    for (variant, extra, secret, endpoint) in [
        (
            "garage",
            &[][..],
            "msg-s3",
            "http://msg-garage.matrix.svc.cluster.local:3900",
        ),
        (
            "external",
            &[
                "--set",
                "objectStorage.mode=external",
                "--set",
                "objectStorage.external.endpoint=https://s3.example.test:9000",
                "--set",
                "objectStorage.external.credentialsSecret=site-s3",
                "--set",
                "objectStorage.external.cidr=10.40.0.0/24",
            ][..],
            "site-s3",
            "https://s3.example.test:9000",
        ),
    ] {
        let docs = documents(&render("1k", extra));
        let cron = media_backup(&docs);
        assert_eq!(cron["spec"]["schedule"].as_str(), Some("30 3 * * *"));
        assert_eq!(cron["spec"]["concurrencyPolicy"].as_str(), Some("Forbid"));
        let spec = pod_spec(cron).unwrap();
        let c = &spec["containers"][0];
        let image = c["image"].as_str().unwrap();
        assert_eq!(image, "docker.io/rclone/rclone:1.71.0");
        assert!(toml.contains(&format!("ref = \"{image}\"")));
        crate::stack_chart::assert_rclone_s3_env(c, endpoint, secret, variant);
        // The one media volume, read-only, on the node of the pod that mounts it.
        let sts = find(&docs, "StatefulSet", "msg-synapse-media-repository");
        let claim = |spec: &Value| {
            spec["volumes"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|v| v["name"] == "media")
                .map(|v| {
                    v["persistentVolumeClaim"]["claimName"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
        };
        assert_eq!(claim(spec).as_deref(), Some("msg-media"));
        assert_eq!(
            claim(&sts["spec"]["template"]["spec"]).as_deref(),
            Some("msg-media")
        );
        assert!(sts["spec"]["volumeClaimTemplates"].is_null());
        let mount = c["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "media")
            .unwrap();
        assert_eq!(mount["readOnly"].as_bool(), Some(true));
        let term =
            &spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(term["topologyKey"].as_str(), Some("kubernetes.io/hostname"));
        assert_eq!(
            &term["labelSelector"]["matchLabels"],
            &sts["spec"]["selector"]["matchLabels"]
        );
        let pvc = find(&docs, "PersistentVolumeClaim", "msg-media");
        assert_eq!(
            pvc["spec"]["accessModes"][0].as_str(),
            Some("ReadWriteOnce")
        );
        assert_eq!(
            pvc["spec"]["resources"]["requests"]["storage"].as_str(),
            Some("500Gi")
        );
        assert_eq!(
            pvc["metadata"]["annotations"]["helm.sh/resource-policy"].as_str(),
            Some("keep")
        );
        // Restricted like every other pod, and a NetworkPolicy lets it reach the store only.
        assert_eq!(
            spec["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true)
        );
        assert_eq!(spec["automountServiceAccountToken"].as_bool(), Some(false));
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true)
        );
        let policy = find(&docs, "NetworkPolicy", "msg-media-backup");
        let port = policy["spec"]["egress"][0]["ports"][0]["port"].as_u64();
        assert_eq!(port, Some(if variant == "garage" { 3900 } else { 9000 }));
        if variant == "garage" {
            let garage = find(&docs, "NetworkPolicy", "msg-garage-media-backup");
            assert_eq!(
                garage["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
                    ["app.kubernetes.io/name"]
                    .as_str(),
                Some("media-backup")
            );
        }
    }
    let docs = documents(&render("1k", &["--set", "backup.media.enabled=false"]));
    assert!(!docs
        .iter()
        .any(|d| d["kind"] == "CronJob" && d["metadata"]["name"] == "msg-media-backup"));
}

/// The backup script with a stand-in `rclone` (busybox as in the image): one sync of the
/// volume to `current`, removed files to a dated set, and only the sets older than
/// backup.retention (30 days) purged.
#[test]
fn the_media_backup_script_syncs_and_drops_removed_sets_past_the_retention() {
    let docs = documents(&render("1k", &[]));
    let script = config_map_key(&docs, "msg-media-backup", "backup.sh");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("rclone.log");
    let day = |ago: i64| {
        let out = Command::new("date")
            .args([
                "-u",
                "-d",
                &format!("@{}", now() - ago * 86400),
                "+%Y%m%d%H%M%S",
            ])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (old, recent) = (day(31), day(29));
    let fake = write(
        dir.path(),
        "rclone",
        &format!(
            "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$1\" in lsf) printf '%s/\\n%s/\\nnot-a-set/\\n' {old} {recent} ;; esac\n",
            log = log.display()
        ),
    );
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let bin = busybox_bin(dir.path(), &[("rclone", p(&fake))]);
    let file = write(dir.path(), "backup.sh", &script);
    let out = Command::new(bin.join("sh"))
        .arg(&file)
        .env_clear()
        .env("PATH", &bin)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    let dest = ":s3:messenger-backups/media/msg";
    assert!(
        calls[0].starts_with(&format!(
            "sync /media {dest}/current --backup-dir {dest}/removed/"
        )),
        "{calls:?}"
    );
    assert!(calls[0].contains("--exclude /url_cache/**"), "{calls:?}");
    assert_eq!(calls[1], format!("lsf --dirs-only {dest}/removed/"));
    assert_eq!(
        calls[2..],
        [format!("purge {dest}/removed/{old}")],
        "{calls:?}"
    );
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn two_media_instances_and_growth_on_a_non_expandable_class_are_refused() {
    // (With the media background role on the pool, the worker table already refuses two.)
    let out = template(
        "20k",
        &[
            "--set",
            "synapse.workers.media-repository.replicas=2",
            "--set-json",
            "synapse.workers.media-repository.roles=[]",
        ],
    )
    .failed();
    assert!(
        out.stderr.contains(
            "synapse.workers.media-repository.replicas: 2 media instances, but the media store is one ReadWriteOnce volume"
        ),
        "{}",
        out.stderr
    );
    let out = template(
        "1k",
        &[
            "--set",
            "storage.expandable=false",
            "--set",
            "storage.mediaMax=2Ti",
        ],
    )
    .failed();
    assert!(
        out.stderr.contains(
            "storage.mediaMax: the site plans to grow the media volume from 500Gi to 2Ti, but storage.expandable is false (StorageClass local-ssd cannot expand volumes)"
        ),
        "{}",
        out.stderr
    );
    let out = template("1k", &["--set", "storage.mediaMax=100Gi"]).failed();
    assert!(out
        .stderr
        .contains("storage.mediaMax: 100Gi is below storage.media 500Gi"));
    // Growth on an expandable class, and no growth on a fixed one, render.
    template("1k", &["--set", "storage.mediaMax=2Ti"]).ok();
    template("1k", &["--set", "storage.expandable=false"]).ok();
}

// ---------------------------------------------------------------------------------------
// 5. Garage

/// Garage's admin API v2 layout rules, as a stand-in reached as an HTTP proxy (the script
/// runs unchanged against the in-cluster names): node `msg-garage-N` has the ID of N
/// repeated; UpdateClusterLayout stages role changes (last writer wins), RevertClusterLayout
/// drops them, ApplyClusterLayout takes exactly the current version + 1 and refuses fewer
/// storage nodes than the replication factor (garage src/rpc/layout/history.rs and
/// version.rs, v2.0), GetClusterLayout answers pretty-printed like Garage.
#[derive(Default)]
struct Layout {
    replication: usize,
    version: u64,
    roles: BTreeMap<String, u64>,
    staged: BTreeMap<String, Option<u64>>,
    applied: Vec<u64>,
    calls: Vec<String>,
    refused: Vec<String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Role {
    id: String,
    zone: &'static str,
    tags: Vec<String>,
    capacity: u64,
    stored_partitions: u64,
    usable_capacity: u64,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct LayoutResponse {
    version: u64,
    roles: Vec<Role>,
    parameters: serde_json::Value,
    partition_size: u64,
    staged_role_changes: Vec<serde_json::Value>,
    staged_parameters: Option<serde_json::Value>,
}

impl Layout {
    fn response(&self) -> String {
        let roles = self
            .roles
            .iter()
            .map(|(id, capacity)| Role {
                id: id.clone(),
                zone: "z1",
                tags: vec![],
                capacity: *capacity,
                stored_partitions: 256,
                usable_capacity: *capacity,
            })
            .collect();
        let staged = self
            .staged
            .iter()
            .map(|(id, c)| match c {
                Some(c) => serde_json::json!({"id": id, "zone": "z1", "tags": [], "capacity": c}),
                None => serde_json::json!({"id": id, "remove": true}),
            })
            .collect();
        serde_json::to_string_pretty(&LayoutResponse {
            version: self.version,
            roles,
            parameters: serde_json::json!({"zoneRedundancy": "maximum"}),
            partition_size: 1 << 30,
            staged_role_changes: staged,
            staged_parameters: None,
        })
        .unwrap()
    }

    /// (status, body) of one admin call.
    fn call(&mut self, host: &str, op: &str, body: &str) -> (u16, String) {
        self.calls.push(format!("{host} {op}"));
        let node = host.split('.').next().unwrap().rsplit('-').next().unwrap();
        match op {
            "GetNodeInfo" => {
                let id = node.repeat(64);
                (
                    200,
                    format!(r#"{{"success":{{"{id}":{{"nodeId": "{id}"}}}},"error":{{}}}}"#),
                )
            }
            "GetClusterLayout" => (200, self.response()),
            "RevertClusterLayout" => {
                self.staged.clear();
                (200, self.response())
            }
            "UpdateClusterLayout" => {
                let req: serde_json::Value = serde_json::from_str(body).unwrap();
                for r in req["roles"].as_array().unwrap() {
                    let id = r["id"].as_str().unwrap().to_owned();
                    let change = if r["remove"] == true {
                        None
                    } else {
                        assert_eq!(r["zone"], "z1");
                        Some(r["capacity"].as_u64().unwrap())
                    };
                    self.staged.insert(id, change);
                }
                (200, self.response())
            }
            "ApplyClusterLayout" => {
                let req: serde_json::Value = serde_json::from_str(body).unwrap();
                let version = req["version"].as_u64().unwrap();
                if version != self.version + 1 {
                    self.refused.push(format!("version {version}"));
                    return (400, r#"{"message":"Invalid new layout version"}"#.into());
                }
                let mut roles = self.roles.clone();
                for (id, change) in &self.staged {
                    match change {
                        Some(c) => roles.insert(id.clone(), *c),
                        None => roles.remove(id),
                    };
                }
                if roles.len() < self.replication {
                    self.refused.push(format!("{} nodes", roles.len()));
                    return (
                        400,
                        format!(
                            r#"{{"message":"The number of nodes with positive capacity ({}) is smaller than the replication factor ({})."}}"#,
                            roles.len(),
                            self.replication
                        ),
                    );
                }
                self.roles = roles;
                self.version = version;
                self.staged.clear();
                self.applied.push(version);
                (200, r#"{"message":[],"layout":{}}"#.into())
            }
            "GetBucketInfo" => (200, format!(r#"{{"id": "{}"}}"#, "b".repeat(64))),
            _ => (200, "{}".into()),
        }
    }
}

/// Serves `layout` as every Garage node's admin API, through an HTTP proxy port.
fn serve_garage(layout: Arc<Mutex<Layout>>) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let url = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                let header = header.trim_end().to_ascii_lowercase();
                if header.is_empty() {
                    break;
                }
                if let Some(v) = header.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let host = url
                .split('/')
                .nth(2)
                .unwrap_or("")
                .split(':')
                .next()
                .unwrap();
            let op = url
                .split("/v2/")
                .nth(1)
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap();
            let (status, reply) =
                layout
                    .lock()
                    .unwrap()
                    .call(host, op, &String::from_utf8(body).unwrap());
            let mut conn = conn;
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    port
}

/// Runs the setup script of `profile`'s render against `layout` with busybox (the rclone
/// image's shell and wget); returns whether it succeeded and its output.
fn run_setup(profile: &str, layout: &Arc<Mutex<Layout>>) -> (bool, String) {
    let docs = documents(&render(profile, &[]));
    let script = config_map_key(&docs, "msg-garage", "setup.sh");
    let dir = tempfile::tempdir().unwrap();
    let bin = busybox_bin(dir.path(), &[]);
    let file = write(dir.path(), "setup.sh", &script);
    let port = serve_garage(layout.clone());
    let out = Command::new(bin.join("sh"))
        .arg(&file)
        .env_clear()
        .env("PATH", &bin)
        .env("http_proxy", format!("http://127.0.0.1:{port}"))
        .env("GARAGE_ADMIN_TOKEN", "admin-token")
        .env("ACCESS_KEY_ID", "GK0123456789abcdef01234567")
        .env("ACCESS_SECRET_KEY", "s".repeat(64))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string().repeat(64)).collect()
}

const GIB200: u64 = 200 << 30;

#[test]
fn the_garage_layout_follows_the_node_count_from_profile_to_profile() {
    let layout = Arc::new(Mutex::new(Layout {
        replication: 3,
        ..Default::default()
    }));
    // 1k: three nodes, a new cluster: version 1 assigns them.
    let (ok, out) = run_setup("1k", &layout);
    assert!(ok, "{out}");
    {
        let l = layout.lock().unwrap();
        assert_eq!(l.applied, [1]);
        assert_eq!(l.roles.keys().cloned().collect::<Vec<_>>(), ids(3));
        assert!(l.roles.values().all(|c| *c == GIB200));
    }
    // 20k: a fourth node joins: version 2 adds it, the three keep their roles.
    let (ok, out) = run_setup("20k", &layout);
    assert!(ok, "{out}");
    assert!(
        out.contains("layout version 2: 1 node(s) assigned or resized, 0 removed"),
        "{out}"
    );
    {
        let l = layout.lock().unwrap();
        assert_eq!(l.applied, [1, 2]);
        assert_eq!(l.roles.keys().cloned().collect::<Vec<_>>(), ids(4));
    }
    // Again at 20k: nothing to change, no new version.
    let (ok, out) = run_setup("20k", &layout);
    assert!(ok, "{out}");
    assert!(
        out.contains("layout version 2 already assigns the 4 Garage node(s)"),
        "{out}"
    );
    // Back to 1k: the fourth node leaves the layout in version 3.
    let (ok, out) = run_setup("1k", &layout);
    assert!(ok, "{out}");
    let l = layout.lock().unwrap();
    assert_eq!(l.applied, [1, 2, 3]);
    assert_eq!(l.roles.keys().cloned().collect::<Vec<_>>(), ids(3));
    assert!(l.refused.is_empty(), "{:?}", l.refused);
    // Every layout call went to one node, as Garage's layout rules ask.
    let layout_hosts: Vec<&String> = l
        .calls
        .iter()
        .filter(|c| c.contains("ClusterLayout"))
        .collect();
    assert!(layout_hosts
        .iter()
        .all(|c| c.starts_with("msg-garage-0.msg-garage.matrix.svc.cluster.local ")));
}

#[test]
fn a_garage_layout_left_with_staged_changes_or_resized_is_applied_once_more() {
    // A node's volume was replaced (new ID 9…) and a failed run left a stray staged change.
    let mut roles: BTreeMap<String, u64> = ids(3).into_iter().map(|i| (i, GIB200)).collect();
    roles.remove(&ids(3)[2]);
    roles.insert("9".repeat(64), GIB200);
    let layout = Arc::new(Mutex::new(Layout {
        replication: 3,
        version: 7,
        roles,
        staged: BTreeMap::from([("8".repeat(64), Some(1))]),
        ..Default::default()
    }));
    let (ok, out) = run_setup("5k", &layout);
    assert!(ok, "{out}");
    let l = layout.lock().unwrap();
    assert_eq!(l.applied, [8]);
    assert_eq!(l.roles.keys().cloned().collect::<Vec<_>>(), ids(3));
}

#[test]
fn removing_as_many_garage_nodes_as_copies_is_refused() {
    // Six nodes in the layout, three in the StatefulSet: every copy of some partitions would go.
    let layout = Arc::new(Mutex::new(Layout {
        replication: 3,
        version: 4,
        roles: ids(6).into_iter().map(|i| (i, GIB200)).collect(),
        ..Default::default()
    }));
    let (ok, out) = run_setup("1k", &layout);
    assert!(!ok, "{out}");
    assert!(
        out.contains("removing 3 nodes at once would lose every copy"),
        "{out}"
    );
    assert!(layout.lock().unwrap().applied.is_empty());
}

/// The 100 profile's store: one node, one copy: said at install (NOTES) and in the docs.
#[test]
fn a_single_node_garage_store_is_called_out_as_not_durable() {
    let notes = |profile: &str| {
        let profile_file = chart().join(format!("profiles/{profile}.yaml"));
        run(
            "helm",
            &[
                "install",
                "--dry-run=client",
                RELEASE,
                p(&chart()),
                "-n",
                NAMESPACE,
                "-f",
                p(&site_file()),
                "-f",
                p(&profile_file),
            ],
            &chart(),
        )
        .ok()
        .stdout
    };
    let out = notes("100");
    let notes_100 = &out[out.find("NOTES:").expect("no NOTES")..];
    assert!(
        notes_100.contains(
            "NOT DURABLE: the backup store is 1 Garage node(s) with replication factor 1"
        ),
        "{notes_100}"
    );
    let out = notes("1k");
    assert!(!out.contains("NOT DURABLE"), "{out}");
    assert!(out.contains("Backups: 3 Garage nodes, 3 copies"), "{out}");
    let capacity =
        std::fs::read_to_string(crate::stack_chart::root().join("docs/capacity.md")).unwrap();
    assert!(capacity.contains("not durable"), "docs/capacity.md");
}
