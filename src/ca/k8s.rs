//! cert-manager objects for the site CA, as YAML text (JSON, which is YAML).

use base64::Engine as _;
use serde_json::json;

/// The namespace cert-manager runs in, where a `ClusterIssuer` looks up its Secret.
pub const CERT_MANAGER_NAMESPACE: &str = "cert-manager";

/// A `cert-manager.io/v1` `ClusterIssuer` named `name` that signs with the CA in the Secret
/// `secret_name` (looked up in cert-manager's namespace, [`CERT_MANAGER_NAMESPACE`]).
pub fn cluster_issuer(name: &str, secret_name: &str) -> String {
    let doc = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "ClusterIssuer",
        "metadata": { "name": name },
        "spec": { "ca": { "secretName": secret_name } },
    });
    to_text(&doc)
}

/// A `kubernetes.io/tls` Secret holding `tls.crt` and `tls.key` (base64, as Secrets' `data`
/// wants). For a `ClusterIssuer`, `namespace` is [`CERT_MANAGER_NAMESPACE`].
pub fn tls_secret(name: &str, namespace: &str, cert_pem: &str, key_pem: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": name, "namespace": namespace },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64.encode(cert_pem),
            "tls.key": b64.encode(key_pem),
        },
    });
    to_text(&doc)
}

fn to_text(doc: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("a JSON value always serialises");
    s.push('\n');
    s
}
