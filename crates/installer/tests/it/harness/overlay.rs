//! The local overlay: cluster hosts and ports become loopback ports, listeners bind loopback,
//! file paths point into the test's directory.

use serde_norway::{Mapping, Value};
use std::collections::BTreeMap;
use test_support::ports::reserved_port;

/// Loopback ports standing in for `(cluster host, cluster port)` pairs.
#[derive(Debug, Default)]
pub struct Endpoints {
    map: BTreeMap<(String, u64), u16>,
}

impl Endpoints {
    /// The loopback port for `host:port`, allocated on first use.
    pub fn add(&mut self, host: &str, port: u64) -> u16 {
        *self
            .map
            .entry((host.to_string(), port))
            .or_insert_with(reserved_port)
    }

    /// Stands `local` in for `host:port`.
    pub fn insert(&mut self, host: &str, port: u64, local: u16) {
        self.map.insert((host.to_string(), port), local);
    }

    /// The loopback port already given to `host:port`.
    pub fn local(&self, host: &str, port: u64) -> Option<u16> {
        self.map.get(&(host.to_string(), port)).copied()
    }

    /// Rewrites every mapping with a known `host` and `port` to `127.0.0.1` and its local port.
    pub fn rewrite_yaml(&self, value: &mut Value) {
        match value {
            Value::Mapping(map) => {
                let host = map.get("host").and_then(Value::as_str).map(str::to_string);
                let port = map.get("port").and_then(Value::as_u64);
                if let (Some(host), Some(port)) = (host, port) {
                    if let Some(local) = self.local(&host, port) {
                        map.insert("host".into(), "127.0.0.1".into());
                        map.insert("port".into(), u64::from(local).into());
                    }
                }
                for (_, child) in map.iter_mut() {
                    self.rewrite_yaml(child);
                }
            }
            Value::Sequence(items) => items.iter_mut().for_each(|v| self.rewrite_yaml(v)),
            _ => {}
        }
    }

    /// Replaces every known `host:port` in a text (HAProxy `server` lines).
    pub fn rewrite_text(&self, text: &str) -> String {
        let mut text = text.to_string();
        for ((host, port), local) in &self.map {
            text = text.replace(&format!("{host}:{port}"), &format!("127.0.0.1:{local}"));
        }
        text
    }
}

/// Merges Synapse configuration files the way Synapse does: later top-level keys win.
pub fn merge(files: &[Value]) -> Mapping {
    let mut merged = Mapping::new();
    for file in files {
        if let Some(map) = file.as_mapping() {
            for (k, v) in map {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    merged
}

/// Rewrites a listener list for the process reachable as `host`: each listener's port becomes
/// that host's local port, bound to loopback.
pub fn local_listeners(listeners: &Value, host: &str, endpoints: &Endpoints) -> Value {
    let mut listeners = listeners.clone();
    for listener in listeners.as_sequence_mut().into_iter().flatten() {
        let Some(port) = listener["port"].as_u64() else {
            continue;
        };
        let local = endpoints
            .local(host, port)
            .unwrap_or_else(|| panic!("no local port for {host}:{port}"));
        listener["port"] = u64::from(local).into();
        listener["bind_addresses"] = Value::Sequence(vec!["127.0.0.1".into()]);
    }
    listeners
}

/// The ports of a listener list.
pub fn listener_ports(listeners: &Value) -> Vec<u64> {
    listeners
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|l| l["port"].as_u64())
        .collect()
}

/// Replaces `bind :PORT` / `bind *:PORT` / `bind 0.0.0.0:PORT` lines of an HAProxy
/// configuration with loopback ports from `ports` (cluster port -> local port).
pub fn local_binds(config: &str, ports: &BTreeMap<u16, u16>) -> String {
    config
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let Some(rest) = trimmed.strip_prefix("bind ") else {
                return line.to_string();
            };
            let addr = rest.split_whitespace().next().unwrap_or_default();
            let port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            match port.and_then(|p| ports.get(&p)) {
                Some(local) => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let tail = &rest[addr.len()..];
                    format!("{indent}bind 127.0.0.1:{local}{tail}")
                }
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Lowers every `maxconn` above `limit` (HAProxy refuses to start when the file-descriptor
/// limit cannot carry it, and a rehearsal needs few connections).
pub fn cap_maxconn(config: &str, limit: u32) -> String {
    config
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            match trimmed
                .strip_prefix("maxconn ")
                .map(|n| n.trim().parse::<u32>())
            {
                Some(Ok(n)) if n > limit => {
                    format!("{}maxconn {limit}", &line[..line.len() - trimmed.len()])
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_servers_become_loopback() {
        let mut endpoints = Endpoints::default();
        let local = endpoints.add("a.svc.cluster.local", 8008);
        let cfg = "frontend f\n    bind :8008 name x\nbackend b\n    server a a.svc.cluster.local:8008 check\n";
        let ports = BTreeMap::from([(8008, 1234)]);
        let out = endpoints.rewrite_text(&local_binds(cfg, &ports));
        assert!(out.contains("bind 127.0.0.1:1234 name x"), "{out}");
        assert!(
            out.contains(&format!("server a 127.0.0.1:{local} check")),
            "{out}"
        );
    }

    #[test]
    fn maxconn_is_capped() {
        let config = "global\n    maxconn 80000\nfrontend f\n    maxconn 200\n";
        let out = cap_maxconn(config, 1000);
        assert_eq!(
            out,
            "global\n    maxconn 1000\nfrontend f\n    maxconn 200\n"
        );
    }
}
