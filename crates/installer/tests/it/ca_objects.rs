//! The cert-manager objects made from the site CA, checked by `kubernetes-validate` (the
//! Secret; cert-manager's ClusterIssuer is a CRD it does not know, checked in the unit tests).

use installer::ca::{tls_secret, CERT_MANAGER_NAMESPACE};
use online::ca::RootCa;
use test_support::Run;

/// `kubernetes-validate --strict FILE` in `dir`.
fn validate(dir: &std::path::Path, file: &str) -> Run {
    test_support::require("kubernetes-validate", "scripts/setup.sh");
    test_support::run("kubernetes-validate", &["--strict", file], dir)
}

#[test]
fn tls_secret_passes_kubernetes_validate() {
    let ca = RootCa::generate("Root", "Org", 30).unwrap();
    let (_leaf, leaf_key) = ca.issue_leaf(&["f.example"]).unwrap();
    let secret = tls_secret(
        "site-root-ca",
        CERT_MANAGER_NAMESPACE,
        ca.cert_pem(),
        &leaf_key,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.yaml"), &secret).unwrap();
    let out = validate(dir.path(), "secret.yaml");
    assert_eq!(
        out.code, 0,
        "kubernetes-validate refused the Secret: {out:?}\n{secret}"
    );
    assert!(out.stdout.contains("passed"), "{out:?}");

    let v: serde_json::Value = serde_json::from_str(&secret).unwrap();
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "Secret");
    assert_eq!(v["type"], "kubernetes.io/tls");
    assert_eq!(v["metadata"]["name"], "site-root-ca");
    assert_eq!(v["metadata"]["namespace"], "cert-manager");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let crt = b64.decode(v["data"]["tls.crt"].as_str().unwrap()).unwrap();
    let key = b64.decode(v["data"]["tls.key"].as_str().unwrap()).unwrap();
    assert_eq!(crt, ca.cert_pem().as_bytes());
    assert_eq!(key, leaf_key.as_bytes());

    // A broken Secret is refused, so the check above means something.
    let bad = secret.replace("\"type\"", "\"typo\"");
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    validate(dir.path(), "bad.yaml").failed();
}
