//! The containerd `hosts.toml` that makes a node trust the site CA for the registry mirror.

/// A containerd `hosts.toml` (for `/etc/containerd/certs.d/<registry_host>/hosts.toml`) that
/// names `registry_host` (`host[:port]`, or a full `https://` URL) as the server and its mirror
/// host, trusting the CA certificate at `ca_path` on the node.
pub fn containerd_hosts_toml(registry_host: &str, ca_path: &str) -> String {
    let host = registry_host.trim().trim_end_matches('/');
    let url = if host.starts_with("https://") || host.starts_with("http://") {
        host.to_string()
    } else {
        format!("https://{host}")
    };
    let url_q = quote(&url);
    let ca_q = quote(ca_path);
    format!(
        "server = {url_q}\n\n[host.{url_q}]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = {ca_q}\n"
    )
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_hosts_toml_parses() {
        let s = containerd_hosts_toml(
            "registry.site.internal:5000",
            "/etc/containerd/certs.d/registry.site.internal:5000/ca.crt",
        );
        let v: toml::Table = s.parse().unwrap();
        assert_eq!(
            v["server"].as_str(),
            Some("https://registry.site.internal:5000")
        );
        let hosts = v["host"].as_table().unwrap();
        assert_eq!(hosts.len(), 1);
        let h = hosts["https://registry.site.internal:5000"]
            .as_table()
            .unwrap();
        assert_eq!(
            h["ca"].as_str(),
            Some("/etc/containerd/certs.d/registry.site.internal:5000/ca.crt")
        );
        let caps: Vec<_> = h["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert_eq!(caps, ["pull", "resolve"]);

        // A full URL is kept; odd characters in the path are escaped.
        let s = containerd_hosts_toml("https://reg.example/", "C:\\certs\\\"ca\".crt");
        let v: toml::Table = s.parse().unwrap();
        assert_eq!(v["server"].as_str(), Some("https://reg.example"));
        assert_eq!(
            v["host"]["https://reg.example"]["ca"].as_str(),
            Some("C:\\certs\\\"ca\".crt")
        );
    }
}
