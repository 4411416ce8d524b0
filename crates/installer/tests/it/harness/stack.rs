//! The rehearsal stack: the chart's rendered Synapse, HAProxy and Valkey-proxy configurations
//! run as local processes (PostgreSQL, Redis with Sentinel, the proxies, Synapse main and every
//! worker instance) through the local overlay.

use super::chart::{self, Workload};
use super::overlay::{cap_maxconn, listener_ports, local_binds, local_listeners, merge, Endpoints};
use super::postgres::{self, Postgres};
use super::redis::{self, Replicated};
use super::synapse;
use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use test_support::ports::reserved_port;
use test_support::process::Service;

/// The port the chart's HAProxy serves Matrix on.
const FRONT_PORT: u16 = 8008;
/// HAProxy's connection limit here, low enough for any file-descriptor limit.
const MAXCONN: u32 = 1000;

/// What to render.
pub struct Source<'a> {
    pub chart: &'a Path,
    pub release: &'a str,
    pub namespace: &'a str,
    pub values: &'a [&'a Path],
}

/// One Synapse process of the stack.
pub struct SynapseProcess {
    /// Its instance name (`main`, or the `worker_name` its pod gives it).
    pub instance: String,
    /// The port of its client listener.
    pub http_port: u16,
    /// The port of its metrics listener, if it has one.
    pub metrics_port: Option<u16>,
    pub service: Service,
}

/// The running stack; dropping it stops the front first and PostgreSQL last (fields drop in
/// order).
pub struct Stack {
    _admin_front: Service,
    _front: Service,
    pub synapse: Vec<SynapseProcess>,
    pub valkey_proxy: Service,
    pub redis: Replicated,
    /// The chart's antivirus (clamd, the module's files, the content scanner) when it is on.
    pub content_scanner: Option<super::antivirus::ContentScanner>,
    pub antivirus: Option<super::antivirus::Antivirus>,
    _postgres: Postgres,
    /// Where clients reach the stack (the chart's HAProxy).
    pub front_port: u16,
    /// Where the admin host is reached (a stand-in for the Gateway, then the chart's HAProxy).
    pub admin_port: u16,
    pub server_name: String,
    pub registration_secret: String,
    /// The rendered `secrets.yaml`, as a field engineer would take it from the Secret.
    pub secrets_file: PathBuf,
    /// Every `bind` port of the chart's HAProxy and its loopback port here (8405: its
    /// /metrics and health listener); for the monitoring tests.
    pub front_binds: BTreeMap<u16, u16>,
    /// PostgreSQL's loopback port (trust authentication, Synapse's user and database).
    pub postgres_port: u16,
    /// The Valkey password of this render (Secret <release>-valkey-auth).
    pub valkey_password: String,
}

/// `<hosts.admin>.<domain>` of the values files (the last one setting each wins).
fn admin_host(values: &[&Path]) -> String {
    let (mut label, mut domain) = ("admin".to_string(), String::new());
    for file in values {
        let doc = yaml(file);
        if let Some(d) = doc["domain"].as_str() {
            domain = d.to_string();
        }
        if let Some(l) = doc["hosts"]["admin"].as_str() {
            label = l.to_string();
        }
    }
    format!("{label}.{domain}")
}

/// A Synapse process as the chart's StatefulSet starts it.
struct Plan {
    instance: String,
    module: String,
    config_paths: Vec<String>,
}

impl Stack {
    /// The Synapse process called `instance`.
    pub fn synapse(&self, instance: &str) -> &SynapseProcess {
        self.synapse
            .iter()
            .find(|p| p.instance == instance)
            .unwrap_or_else(|| panic!("no Synapse instance {instance}"))
    }

    /// The Synapse process called `instance`, to stop it.
    pub fn synapse_mut(&mut self, instance: &str) -> &mut SynapseProcess {
        self.synapse
            .iter_mut()
            .find(|p| p.instance == instance)
            .unwrap_or_else(|| panic!("no Synapse instance {instance}"))
    }
}

/// Renders the chart and starts everything its Synapse needs, in `dir`.
pub fn start(source: &Source, dir: &Path) -> Stack {
    synapse::require_postgres_and_redis();
    let rendered = chart::render(
        source.chart,
        source.release,
        source.namespace,
        source.values,
    );
    let release = source.release;
    let synapse_cm = format!("{release}-synapse");
    let synapse_secret = format!("{release}-synapse-secrets");
    for (sub, keys, read) in [
        ("config", rendered.config_map_keys(&synapse_cm), true),
        ("secrets", rendered.secret_keys(&synapse_secret), false),
    ] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for key in keys {
            let text = if read {
                rendered.config_map(&synapse_cm, &key)
            } else {
                rendered.secret(&synapse_secret, &key)
            };
            std::fs::write(dir.join(sub).join(&key), text.unwrap()).unwrap();
        }
    }
    let homeserver = yaml(&dir.join("config/homeserver.yaml"));
    let secrets = yaml(&dir.join("secrets/secrets.yaml"));
    let server_name = homeserver["server_name"].as_str().unwrap().to_string();
    let registration_secret = secrets["registration_shared_secret"]
        .as_str()
        .expect("secrets.yaml has registration_shared_secret")
        .to_string();

    // PostgreSQL and Redis start side by side.
    let proxy_config = rendered
        .config_map(&format!("{release}-valkey-proxy"), "haproxy.cfg")
        .expect("ConfigMap <release>-valkey-proxy has haproxy.cfg");
    let valkey_hosts = server_addresses(&proxy_config);
    let valkey_password = rendered
        .secret(&format!("{release}-valkey-auth"), "password")
        .expect("Secret <release>-valkey-auth has password");
    let sentinel_timing = rendered
        .config_map(&format!("{release}-valkey"), "sentinel-start.sh")
        .map(|script| sentinel_timing(&script))
        .unwrap_or_default();
    // The chart's own server and sentinel files, under the harness's loopback settings.
    let valkey_config = redis::BaseConfig {
        server: rendered
            .config_map(&format!("{release}-valkey"), "valkey.conf")
            .expect("ConfigMap <release>-valkey has valkey.conf"),
        sentinel: rendered
            .config_map(&format!("{release}-valkey"), "sentinel.conf")
            .expect("ConfigMap <release>-valkey has sentinel.conf"),
    };
    let db = &homeserver["database"]["args"];
    let db_user = db["user"].as_str().unwrap_or("synapse").to_string();
    let db_name = db["dbname"].as_str().unwrap_or("synapse").to_string();
    let (postgres, redis) = std::thread::scope(|s| {
        let pg = s.spawn(|| postgres::start(&dir.join("postgres"), &db_user, &db_name));
        let rd = s.spawn(|| {
            redis::start(
                &dir.join("redis"),
                valkey_hosts.len() - 1,
                3,
                Some(&valkey_password),
                sentinel_timing,
                &valkey_config,
            )
        });
        (pg.join().unwrap(), rd.join().unwrap())
    });

    // Every cluster address the configurations name gets a loopback stand-in.
    let mut endpoints = Endpoints::default();
    for (i, (host, port)) in valkey_hosts.iter().enumerate() {
        endpoints.insert(host, *port, redis.servers[i].port);
    }
    endpoints.insert(
        db["host"].as_str().unwrap(),
        db["port"].as_u64().unwrap_or(5432),
        postgres.port,
    );
    let redis_host = homeserver["redis"]["host"].as_str().unwrap().to_string();
    let redis_port = homeserver["redis"]["port"].as_u64().unwrap_or(6379);
    let proxy_port = endpoints.add(&redis_host, redis_port);
    let antivirus = super::antivirus::Antivirus::prepare(
        &rendered,
        release,
        source.namespace,
        dir,
        &mut endpoints,
    );
    let python_path = antivirus.as_ref().map(|av| av.module_dir.as_path());
    let plans = plans(&rendered.stateful_sets(&format!("{release}-synapse-")));
    let mut merged_configs = Vec::new();
    for plan in &plans {
        let files: Vec<Value> = plan
            .config_paths
            .iter()
            .map(|p| yaml(&local_file(dir, &plan.instance, p)))
            .collect();
        let merged = merge(&files);
        let host = instance_host(&homeserver, &plan.instance);
        for key in ["listeners", "worker_listeners"] {
            for port in merged.get(key).map(listener_ports).unwrap_or_default() {
                endpoints.add(&host, port);
            }
        }
        merged_configs.push(merged);
    }

    let proxy_binds = bind_ports(&proxy_config, &[(redis_port, proxy_port)]);
    let valkey_proxy = super::haproxy::start(
        dir,
        "valkey-proxy",
        &endpoints.rewrite_text(&cap_maxconn(
            &local_binds(&proxy_config, &proxy_binds),
            MAXCONN,
        )),
        &[("VALKEY_PASSWORD", &valkey_password)],
        &[proxy_port],
    );

    // Synapse: main first (it prepares the database), then every worker at once.
    let log_config = dir.join("log.yaml");
    synapse::write_log_config(&log_config);
    let mut processes = Vec::new();
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|i| plans[*i].module != "synapse.app.homeserver");
    for (n, &i) in order.iter().enumerate() {
        let plan = &plans[i];
        let host = instance_host(&homeserver, &plan.instance);
        let overlay = overlay(&merged_configs[i], &host, &endpoints, dir, &plan.instance);
        let mut configs: Vec<PathBuf> = plan
            .config_paths
            .iter()
            .map(|p| local_file(dir, &plan.instance, p))
            .collect();
        let local = dir.join("run").join(&plan.instance).join("local.yaml");
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        let mut overlay_map = overlay;
        overlay_map.insert("log_config".into(), log_config.display().to_string().into());
        std::fs::write(&local, serde_norway::to_string(&overlay_map).unwrap()).unwrap();
        configs.push(local);
        let log = dir.join(format!("synapse-{}.log", plan.instance));
        let name = match plan.module.as_str() {
            "synapse.app.homeserver" => "synapse-main",
            _ => plan.instance.as_str(),
        };
        let service = synapse::spawn_with_path(name, &plan.module, &configs, &log, python_path);
        let (http_port, metrics_port) = ports_of(&overlay_map);
        processes.push(SynapseProcess {
            instance: plan.instance.clone(),
            http_port,
            metrics_port,
            service,
        });
        if n == 0 {
            let main = &mut processes[0];
            synapse::wait_healthy(&mut main.service, main.http_port);
        }
    }
    for process in processes.iter_mut().skip(1) {
        synapse::wait_healthy(&mut process.service, process.http_port);
    }

    let content_scanner = antivirus
        .as_ref()
        .map(|av| av.start_scanner(&rendered, release, dir, &mut endpoints));

    let front_config = rendered
        .config_map(&format!("{release}-haproxy"), "haproxy.cfg")
        .expect("ConfigMap <release>-haproxy has haproxy.cfg");
    let front_port = reserved_port();
    let front_binds = bind_ports(&front_config, &[(u64::from(FRONT_PORT), front_port)]);
    let front = super::haproxy::start(
        dir,
        "haproxy",
        &endpoints.rewrite_text(&cap_maxconn(
            &local_binds(&front_config, &front_binds),
            MAXCONN,
        )),
        &[],
        &[front_port],
    );
    // Envoy's part in front of the admin host: the Host it routes by, and the client's
    // address appended to X-Forwarded-For (the chart's HAProxy lets only the networks of
    // `admin.allowedCIDRs` reach the admin API). A real HAProxy plays it.
    let admin_port = reserved_port();
    let admin_host = admin_host(source.values);
    let admin_front = super::haproxy::start(
        dir,
        "gateway-admin",
        &format!(
            "global\n  maxconn 256\ndefaults\n  mode http\n  timeout connect 5s\n  \
             timeout client 120s\n  timeout server 120s\nfrontend admin\n  \
             bind 127.0.0.1:{admin_port}\n  option forwardfor\n  \
             http-request set-header Host {admin_host}\n  default_backend front\n\
             backend front\n  server front 127.0.0.1:{front_port}\n"
        ),
        &[],
        &[admin_port],
    );
    let postgres_port = postgres.port;
    Stack {
        _admin_front: admin_front,
        _front: front,
        synapse: processes,
        valkey_proxy,
        redis,
        content_scanner,
        antivirus,
        _postgres: postgres,
        front_port,
        admin_port,
        server_name,
        registration_secret,
        secrets_file: dir.join("secrets/secrets.yaml"),
        postgres_port,
        front_binds,
        valkey_password,
    }
}

/// One process per StatefulSet pod, with the module and `--config-path`s of its command and
/// the `worker_name` its pod would write (`${POD_NAME#prefix}`).
fn plans(workloads: &[Workload]) -> Vec<Plan> {
    let mut plans = Vec::new();
    for workload in workloads {
        let words: Vec<&str> = workload
            .command
            .iter()
            .flat_map(|w| w.split_whitespace())
            .collect();
        let module = words
            .iter()
            .position(|w| *w == "-m")
            .and_then(|i| words.get(i + 1))
            .unwrap_or_else(|| panic!("{}: no `python -m` in {words:?}", workload.name))
            .to_string();
        let config_paths: Vec<String> = words
            .iter()
            .filter_map(|w| w.strip_prefix("--config-path="))
            .map(str::to_string)
            .collect();
        let prefix = words
            .iter()
            .find_map(|w| w.split_once("${POD_NAME#"))
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(prefix, _)| prefix.to_string());
        for i in 0..workload.replicas {
            let pod = format!("{}-{i}", workload.name);
            let instance = match &prefix {
                Some(prefix) => pod
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(&pod)
                    .to_string(),
                None => "main".to_string(),
            };
            plans.push(Plan {
                instance,
                module: module.clone(),
                config_paths: config_paths.clone(),
            });
        }
    }
    plans
}

/// Where a path of the pod lives here: the ConfigMap and Secret mounts are shared, the
/// worker-name file is the instance's own (written as the pod's shell would).
fn local_file(dir: &Path, instance: &str, pod_path: &str) -> PathBuf {
    if let Some(local) = mounted(dir, instance, pod_path) {
        if pod_path.starts_with("/run/synapse/") {
            std::fs::create_dir_all(local.parent().unwrap()).unwrap();
            std::fs::write(&local, format!("worker_name: {instance}\n")).unwrap();
        }
        return local;
    }
    panic!("{pod_path}: not under a mount the rehearsal knows");
}

/// The pod's mounts (see the StatefulSets' volumeMounts), mapped into `dir`.
fn mounted(dir: &Path, instance: &str, pod_path: &str) -> Option<PathBuf> {
    let run = format!("run/{instance}");
    let mounts = [
        ("/config/", "config"),
        ("/secrets/", "secrets"),
        ("/run/synapse/", run.as_str()),
        ("/media", "media"),
    ];
    mounts.iter().find_map(|(pod, local)| {
        let rest = pod_path.strip_prefix(pod)?;
        Some(dir.join(local).join(rest.trim_start_matches('/')))
    })
}

/// The cluster host of an instance, from `instance_map`.
fn instance_host(homeserver: &Value, instance: &str) -> String {
    homeserver["instance_map"][instance]["host"]
        .as_str()
        .unwrap_or_else(|| panic!("instance_map has no host for {instance}"))
        .to_string()
}

/// The top-level keys whose values change locally: cluster hosts and ports, listeners, file
/// paths. Everything else (rate limits included) stays as the chart renders it.
fn overlay(
    merged: &Mapping,
    host: &str,
    endpoints: &Endpoints,
    dir: &Path,
    instance: &str,
) -> Mapping {
    let mut overlay = Mapping::new();
    for (key, value) in merged {
        let mut local = value.clone();
        if matches!(key.as_str(), Some("listeners" | "worker_listeners")) {
            local = local_listeners(&local, host, endpoints);
        }
        endpoints.rewrite_yaml(&mut local);
        localize_paths(&mut local, dir, instance);
        if &local != value {
            overlay.insert(key.clone(), local);
        }
    }
    overlay
}

/// Points every pod path under a known mount into `dir`.
fn localize_paths(value: &mut Value, dir: &Path, instance: &str) {
    match value {
        Value::String(text) => {
            if let Some(local) = mounted(dir, instance, text) {
                *text = local.display().to_string();
            }
        }
        Value::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| localize_paths(v, dir, instance)),
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|v| localize_paths(v, dir, instance)),
        _ => {}
    }
}

/// The client and metrics ports of a local overlay's listeners.
fn ports_of(overlay: &Mapping) -> (u16, Option<u16>) {
    let listeners = overlay
        .get("worker_listeners")
        .or_else(|| overlay.get("listeners"))
        .and_then(Value::as_sequence)
        .expect("every Synapse process has listeners");
    let port = |l: &Value| l["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    let serves = |l: &Value, name: &str| {
        l["resources"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|r| r["names"].as_sequence().into_iter().flatten())
            .any(|n| n.as_str() == Some(name))
    };
    let http = listeners
        .iter()
        .find(|l| serves(l, "client"))
        .and_then(port)
        .expect("a client listener");
    let metrics = listeners
        .iter()
        .find(|l| l["type"].as_str() == Some("metrics"))
        .and_then(port);
    (http, metrics)
}

/// The chart's Sentinel timing, from the `sentinel <directive> <master> <value>` lines of its
/// start script.
fn sentinel_timing(script: &str) -> redis::SentinelTiming {
    let mut timing = redis::SentinelTiming::default();
    for line in script.lines() {
        // `sentinel <directive> <name> <value>`, alone or as the script echoes it.
        let line = line.trim().trim_start_matches("echo ").trim_matches('"');
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["sentinel", directive, _, value] = words[..] else {
            continue;
        };
        let Ok(value) = value.parse() else {
            continue;
        };
        match directive {
            "down-after-milliseconds" => timing.down_after_ms = value,
            "failover-timeout" => timing.failover_timeout_ms = value,
            _ => {}
        }
    }
    timing
}

/// The `host:port` of every `server` line of an HAProxy configuration, in order.
fn server_addresses(config: &str) -> Vec<(String, u64)> {
    config
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "server").then_some(())?;
            let (host, port) = words.nth(1)?.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

/// Loopback ports for every `bind` port of an HAProxy configuration: `fixed` ones as given,
/// the others free.
fn bind_ports(config: &str, fixed: &[(u64, u16)]) -> BTreeMap<u16, u16> {
    config
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("bind "))
        .filter_map(|rest| {
            rest.split_whitespace()
                .next()?
                .rsplit(':')
                .next()?
                .parse::<u16>()
                .ok()
        })
        .map(|port| {
            let local = fixed
                .iter()
                .find(|(p, _)| *p == u64::from(port))
                .map(|(_, l)| *l)
                .unwrap_or_else(reserved_port);
            (port, local)
        })
        .collect()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
