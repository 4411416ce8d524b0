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

#[cfg(test)]
mod tests {
    use super::*;

    /// `kubernetes-validate` knows only built-in kinds, not cert-manager's CRDs: the
    /// ClusterIssuer's fields are checked here instead.
    #[test]
    fn cluster_issuer_fields() {
        let doc = cluster_issuer("site-ca", "site-root-ca");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
        assert_eq!(v["apiVersion"], "cert-manager.io/v1");
        assert_eq!(v["kind"], "ClusterIssuer");
        assert_eq!(v["metadata"], serde_json::json!({ "name": "site-ca" }));
        assert_eq!(
            v["spec"],
            serde_json::json!({ "ca": { "secretName": "site-root-ca" } })
        );
        // Names with YAML/JSON specials are escaped, not injected.
        let doc = cluster_issuer("a\"b", "c: d\n");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["metadata"]["name"], "a\"b");
        assert_eq!(v["spec"]["ca"]["secretName"], "c: d\n");
    }
}
