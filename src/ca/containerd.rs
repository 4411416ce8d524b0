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
