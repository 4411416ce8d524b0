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
    hosts_toml(&url, false, Some(ca_path))
}

/// A containerd `hosts.toml` whose server and only host is `url`, pull and resolve only,
/// trusting the CA at `ca_path` (none: the system's trust). The server, tried when the host
/// fails, gets the same settings, so a failed pull never falls back to the upstream registry.
/// containerd 1.6 refuses a file without a `[host]` table and then pulls from the upstream
/// registry as if there were none. With `override_path`, `url` is the API root itself
/// (`https://registry/v2/mirror/x`), so a repository prefix in the site registry works.
pub fn hosts_toml(url: &str, override_path: bool, ca_path: Option<&str>) -> String {
    let mut settings = String::from("capabilities = [\"pull\", \"resolve\"]\n");
    if let Some(ca) = ca_path {
        settings.push_str(&format!("ca = {}\n", quote(ca)));
    }
    if override_path {
        settings.push_str("override_path = true\n");
    }
    let url = quote(url);
    let indented: String = settings.lines().map(|l| format!("  {l}\n")).collect();
    format!("server = {url}\n{settings}\n[host.{url}]\n{indented}")
}

/// A TOML basic string.
pub(crate) fn quote(s: &str) -> String {
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
        let host = v["host"]["https://registry.site.internal:5000"]
            .as_table()
            .unwrap();
        assert_eq!(host["ca"], v["ca"]);
        assert_eq!(host["capabilities"], v["capabilities"]);
        assert_eq!(
            v["ca"].as_str(),
            Some("/etc/containerd/certs.d/registry.site.internal:5000/ca.crt")
        );
        let caps: Vec<_> = v["capabilities"]
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
        assert_eq!(v["ca"].as_str(), Some("C:\\certs\\\"ca\".crt"));
    }
}
