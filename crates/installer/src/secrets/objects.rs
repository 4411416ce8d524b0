//! The Kubernetes Secrets made from a site's secrets, under the names the messenger chart
//! references: `<release>-generated` holds every value (the installer reads it back on the
//! next run, so nothing is regenerated), the others hold what each component mounts.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{SecretsError, SiteSecrets};

/// Which parts of the stack are on: they decide which Secrets exist and what Synapse reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Parts {
    /// The namespace coturn runs in, when TURN is on (`turn.enabled`): Synapse gets
    /// `turn_shared_secret`, and coturn the same secret in `<release>-turn-shared-secret`
    /// there (a pod mounts Secrets of its own namespace only).
    pub turn: Option<String>,
    /// The chart runs Garage (`objectStorage.mode: garage`): its S3 key and RPC secret.
    pub garage: bool,
    /// The namespace of the monitoring release, when it is deployed: Grafana's admin login
    /// ([`GRAFANA_ADMIN_SECRET`]), which its chart would otherwise regenerate on every render.
    pub monitoring: Option<String>,
    /// LiveKit's namespace, when group calls are on (`calls.enabled`): `<release>-livekit`
    /// there (its API key file and the TURN secret, and `<release>-valkey-auth` when it is
    /// not the release namespace), `<release>-lk-jwt-service` in the release namespace.
    pub calls: Option<String>,
    /// The lawful-intercept namespace, when LI is on (`li.enabled`, `li.namespace`): the
    /// `<release>-li-*` Secrets there ([`li_secrets`]), and in the release namespace the
    /// replication role's password and, with Garage, the media sync's read-only key.
    pub li: Option<String>,
}

/// The API key id LiveKit and lk-jwt-service share (the chart's `messenger.livekitKeyId`):
/// not a secret, every access token names it as its issuer.
pub const LIVEKIT_API_KEY: &str = "messenger";

/// The key file both read, `<key id>: <secret>`: LiveKit's `key_file` (YAML) and
/// lk-jwt-service's `LIVEKIT_KEY_FILE` (split at the colon).
pub fn livekit_key_file(s: &SiteSecrets) -> String {
    format!("{LIVEKIT_API_KEY}: {}\n", s.get("livekitApiSecret"))
}

/// The Secret Grafana takes its admin login from (`grafana.admin.existingSecret` in
/// charts/upstream/monitoring.yaml), keys `admin-user` and `admin-password`.
pub const GRAFANA_ADMIN_SECRET: &str = "grafana-admin";

/// The name of the Secret that holds every value of a release.
pub fn generated_name(release: &str) -> String {
    format!("{release}-generated")
}

/// Every Secret of the release `release` in `namespace`, `<release>-generated` first.
pub fn secrets(release: &str, namespace: &str, s: &SiteSecrets, parts: &Parts) -> Vec<Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let meta = |ns: &str, name: String, component: &str| {
        json!({
            "name": name,
            "namespace": ns,
            "labels": {
                "app.kubernetes.io/name": component,
                "app.kubernetes.io/instance": release,
                "app.kubernetes.io/part-of": "messenger",
                "app.kubernetes.io/managed-by": "messenger-installer",
            },
        })
    };
    // A Secret of type `kind_type` whose values are given as `stringData`.
    let secret = |ns: &str, name: String, component: &str, kind_type: &str, data: Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(ns, name, component),
            "type": kind_type,
            "stringData": data,
        })
    };
    let data: BTreeMap<&str, String> = s.entries().map(|(k, v)| (k, b64.encode(v))).collect();
    let mut generated = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(namespace, generated_name(release), "secrets"),
        "type": OPAQUE,
        "data": data,
    });
    generated["metadata"]["annotations"] =
        json!({"messenger.io/generated-by": "installer deploy; never regenerated"});
    let mut synapse_yaml = format!(
        "registration_shared_secret: {}\nmacaroon_secret_key: {}\nform_secret: {}\n\
         worker_replication_secret: {}\nsigning_key_path: /secrets/signing.key\n",
        quoted(s.get("registrationSharedSecret")),
        quoted(s.get("macaroonSecretKey")),
        quoted(s.get("formSecret")),
        quoted(s.get("replicationSecret")),
    );
    if parts.turn.is_some() {
        synapse_yaml.push_str(&format!(
            "turn_shared_secret: {}\n",
            quoted(s.get("turnSharedSecret"))
        ));
    }
    let mut pg = secret(
        namespace,
        format!("{release}-pg-app"),
        "postgres",
        "kubernetes.io/basic-auth",
        json!({"username": "synapse", "password": s.get("postgresPassword")}),
    );
    pg["metadata"]["labels"]["cnpg.io/reload"] = json!("true");
    let mut out = vec![
        generated,
        secret(
            namespace,
            format!("{release}-synapse-secrets"),
            "synapse",
            OPAQUE,
            json!({
                "secrets.yaml": synapse_yaml,
                "signing.key": s.get("signingKey"),
                "valkey-password": s.get("valkeyPassword"),
                "turn-shared-secret": s.get("turnSharedSecret"),
            }),
        ),
        pg,
        secret(
            namespace,
            format!("{release}-valkey-auth"),
            "valkey",
            OPAQUE,
            json!({"password": s.get("valkeyPassword")}),
        ),
    ];
    if parts.garage {
        out.push(secret(
            namespace,
            format!("{release}-s3"),
            "garage",
            OPAQUE,
            json!({
                "ACCESS_KEY_ID": s.get("s3AccessKeyId"),
                "ACCESS_SECRET_KEY": s.get("s3SecretAccessKey"),
                "REGION": "garage",
            }),
        ));
        out.push(secret(
            namespace,
            format!("{release}-garage"),
            "garage",
            OPAQUE,
            json!({
                "rpc-secret": s.get("garageRpcSecret"),
                "admin-token": s.get("garageAdminToken"),
            }),
        ));
    }
    if let Some(turn) = &parts.turn {
        out.push(secret(
            turn,
            format!("{release}-turn-shared-secret"),
            "coturn",
            OPAQUE,
            json!({"turn-shared-secret": s.get("turnSharedSecret")}),
        ));
    }
    if let Some(calls) = &parts.calls {
        out.push(secret(
            calls,
            format!("{release}-livekit"),
            "livekit",
            OPAQUE,
            json!({
                "keys.yaml": livekit_key_file(s),
                "turn-shared-secret": s.get("turnSharedSecret"),
            }),
        ));
        out.push(secret(
            namespace,
            format!("{release}-lk-jwt-service"),
            "lk-jwt-service",
            OPAQUE,
            json!({"keys.yaml": livekit_key_file(s)}),
        ));
        if calls != namespace {
            out.push(secret(
                calls,
                format!("{release}-valkey-auth"),
                "valkey",
                OPAQUE,
                json!({"password": s.get("valkeyPassword")}),
            ));
        }
    }
    if let Some(li) = &parts.li {
        out.extend(li_secrets(release, namespace, li, s, parts.garage));
    }
    if let Some(monitoring) = &parts.monitoring {
        out.push(secret(
            monitoring,
            GRAFANA_ADMIN_SECRET.to_string(),
            "grafana",
            OPAQUE,
            json!({"admin-user": "admin", "admin-password": s.get("grafanaAdminPassword")}),
        ));
    }
    out
}

/// The type of a Secret of arbitrary keys.
const OPAQUE: &str = "Opaque";

/// The PostgreSQL role the LI cluster replicates from the main cluster as.
pub const LI_REPLICATION_USER: &str = "li_replication";

/// The lawful-intercept Secrets (docs/li.md): in `li` (the LI namespace)
/// `<release>-li-replication`, `-li-pg-app`, `-li-key-vault-pg` (basic-auth, the CloudNativePG
/// roles), `-li-synapse-secrets` (synapse-li's `secrets.yaml` and `signing.key`),
/// `-li-key-vault` (key_vault's `DJANGO_SECRET_KEY`) and, with Garage, `-li-s3-read` (the media
/// sync's read-only key); in `namespace` (the release's) the same `-li-replication` (the main
/// cluster's managed role) and `-li-s3-read` (the bucket job grants it read only).
fn li_secrets(
    release: &str,
    namespace: &str,
    li: &str,
    s: &SiteSecrets,
    garage: bool,
) -> Vec<Value> {
    let secret = |ns: &str, name: &str, kind_type: &str, data: Value| {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": format!("{release}-{name}"),
                "namespace": ns,
                "labels": {
                    "app.kubernetes.io/name": "li",
                    "app.kubernetes.io/instance": release,
                    "app.kubernetes.io/part-of": "messenger",
                    "app.kubernetes.io/managed-by": "messenger-installer",
                },
            },
            "type": kind_type,
            "stringData": data,
        })
    };
    // A basic-auth Secret of a CloudNativePG role, reloaded by the operator when it changes.
    let role = |ns: &str, name: &str, user: &str, key: &str| {
        let mut role = secret(
            ns,
            name,
            "kubernetes.io/basic-auth",
            json!({"username": user, "password": s.get(key)}),
        );
        role["metadata"]["labels"]["cnpg.io/reload"] = json!("true");
        role
    };
    let synapse_yaml = format!(
        "registration_shared_secret: {}\nmacaroon_secret_key: {}\nform_secret: {}\n\
         signing_key_path: /secrets/signing.key\n",
        quoted(s.get("liRegistrationSharedSecret")),
        quoted(s.get("liMacaroonSecretKey")),
        quoted(s.get("liFormSecret")),
    );
    let s3 = |ns: &str| {
        secret(
            ns,
            "li-s3-read",
            OPAQUE,
            json!({
                "ACCESS_KEY_ID": s.get("liS3ReadKeyId"),
                "ACCESS_SECRET_KEY": s.get("liS3ReadSecretKey"),
                "REGION": "garage",
            }),
        )
    };
    let mut out = vec![
        role(
            namespace,
            "li-replication",
            LI_REPLICATION_USER,
            "liReplicationPassword",
        ),
        role(
            li,
            "li-replication",
            LI_REPLICATION_USER,
            "liReplicationPassword",
        ),
        role(li, "li-pg-app", "synapse", "liPostgresPassword"),
        role(
            li,
            "li-key-vault-pg",
            "key_vault",
            "liKeyVaultPostgresPassword",
        ),
        secret(
            li,
            "li-synapse-secrets",
            OPAQUE,
            json!({"secrets.yaml": synapse_yaml, "signing.key": s.get("liSigningKey")}),
        ),
        secret(
            li,
            "li-key-vault",
            OPAQUE,
            json!({"DJANGO_SECRET_KEY": s.get("liKeyVaultSecretKey")}),
        ),
    ];
    if garage {
        out.push(s3(namespace));
        out.push(s3(li));
    }
    out
}

/// `Kind/namespace/name` of each object, for plans and reports (never the values).
pub fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            format!(
                "{}/Secret/{}",
                o["metadata"]["namespace"].as_str().unwrap_or(""),
                o["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

/// The values of a `<release>-generated` Secret as the API returns it (base64 `data`).
pub fn values_of(
    secret: &Value,
    where_: &str,
) -> Result<BTreeMap<String, Zeroizing<String>>, SecretsError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = BTreeMap::new();
    let Some(data) = secret.get("data").and_then(Value::as_object) else {
        return Ok(out);
    };
    for (key, value) in data {
        let malformed = |reason: &str| SecretsError::Malformed {
            key: key.clone(),
            where_: where_.to_string(),
            reason: reason.to_string(),
        };
        let encoded = value.as_str().ok_or_else(|| malformed("not a string"))?;
        let bytes = Zeroizing::new(b64.decode(encoded).map_err(|_| malformed("not base64"))?);
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not UTF-8"))?;
        out.insert(key.clone(), Zeroizing::new(text.to_string()));
    }
    Ok(out)
}

/// A YAML double-quoted scalar (JSON strings are YAML).
fn quoted(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_carry_the_values_and_read_back() {
        let (s, _) = SiteSecrets::complete(BTreeMap::new(), "test").unwrap();
        let all = secrets(
            "msg",
            "matrix",
            &s,
            &Parts {
                turn: Some("matrix-turn".into()),
                garage: true,
                monitoring: Some("monitoring".into()),
                calls: None,
                li: None,
            },
        );
        assert_eq!(
            names(&all),
            [
                "matrix/Secret/msg-generated",
                "matrix/Secret/msg-synapse-secrets",
                "matrix/Secret/msg-pg-app",
                "matrix/Secret/msg-valkey-auth",
                "matrix/Secret/msg-s3",
                "matrix/Secret/msg-garage",
                "matrix-turn/Secret/msg-turn-shared-secret",
                "monitoring/Secret/grafana-admin"
            ]
        );
        assert_eq!(
            all[6]["stringData"]["turn-shared-secret"].as_str(),
            Some(s.get("turnSharedSecret"))
        );
        assert_eq!(
            all[7]["stringData"]["admin-password"].as_str(),
            Some(s.get("grafanaAdminPassword"))
        );
        let back = values_of(&all[0], "x").unwrap();
        let (again, generated) = SiteSecrets::complete(back, "x").unwrap();
        assert!(generated.is_empty());
        assert_eq!(again, s);
        let synapse: serde_norway::Value =
            serde_norway::from_str(all[1]["stringData"]["secrets.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            synapse["macaroon_secret_key"].as_str(),
            Some(s.get("macaroonSecretKey"))
        );
        // coturn's static-auth-secret is the secret Synapse makes TURN credentials with.
        assert_eq!(
            synapse["turn_shared_secret"].as_str(),
            all[1]["stringData"]["turn-shared-secret"].as_str()
        );
        assert_eq!(
            synapse["turn_shared_secret"].as_str(),
            Some(s.get("turnSharedSecret"))
        );
        let fewer = secrets("msg", "matrix", &s, &Parts::default());
        assert_eq!(fewer.len(), 4);
        assert!(fewer.iter().all(|o| o["metadata"]["namespace"] == "matrix"));
        let synapse = fewer[1]["stringData"]["secrets.yaml"].as_str().unwrap();
        assert!(!synapse.contains("turn_shared_secret"));
    }

    #[test]
    fn livekit_and_lk_jwt_service_get_one_key_and_livekit_its_namespace_copies() {
        let (s, _) = SiteSecrets::complete(BTreeMap::new(), "test").unwrap();
        let parts = |calls: &str| Parts {
            turn: Some("matrix-turn".into()),
            garage: false,
            monitoring: None,
            calls: Some(calls.into()),
            li: None,
        };
        let same = secrets("msg", "matrix", &s, &parts("matrix"));
        assert_eq!(
            names(&same)[4..],
            [
                "matrix-turn/Secret/msg-turn-shared-secret",
                "matrix/Secret/msg-livekit",
                "matrix/Secret/msg-lk-jwt-service",
            ]
        );
        let livekit = &same[5]["stringData"];
        let jwt = &same[6]["stringData"];
        assert_eq!(livekit["keys.yaml"], jwt["keys.yaml"]);
        // LiveKit's key_file is YAML: one key id, the generated secret.
        let keys: BTreeMap<String, String> =
            serde_norway::from_str(livekit["keys.yaml"].as_str().unwrap()).unwrap();
        assert_eq!(
            keys,
            BTreeMap::from([(
                LIVEKIT_API_KEY.to_string(),
                s.get("livekitApiSecret").to_string()
            )])
        );
        assert!(s.get("livekitApiSecret").len() >= 32);
        assert_eq!(
            livekit["turn-shared-secret"].as_str(),
            Some(s.get("turnSharedSecret"))
        );
        // On the host network LiveKit runs in the TURN namespace: its Valkey password too.
        let apart = secrets("msg", "matrix", &s, &parts("matrix-turn"));
        assert_eq!(
            names(&apart)[5..],
            [
                "matrix-turn/Secret/msg-livekit",
                "matrix/Secret/msg-lk-jwt-service",
                "matrix-turn/Secret/msg-valkey-auth",
            ]
        );
        assert_eq!(
            apart[7]["stringData"]["password"].as_str(),
            Some(s.get("valkeyPassword"))
        );
    }

    #[test]
    fn li_gets_its_secrets_in_its_namespace_and_the_shared_ones_in_both() {
        let (s, _) = SiteSecrets::complete(BTreeMap::new(), "test").unwrap();
        let parts = |garage: bool| Parts {
            turn: None,
            garage,
            monitoring: None,
            calls: None,
            li: Some("matrix-li".into()),
        };
        let all = secrets("msg", "matrix", &s, &parts(true));
        let li: Vec<String> = names(&all)
            .into_iter()
            .filter(|n| n.contains("-li-"))
            .collect();
        assert_eq!(
            li,
            [
                "matrix/Secret/msg-li-replication",
                "matrix-li/Secret/msg-li-replication",
                "matrix-li/Secret/msg-li-pg-app",
                "matrix-li/Secret/msg-li-key-vault-pg",
                "matrix-li/Secret/msg-li-synapse-secrets",
                "matrix-li/Secret/msg-li-key-vault",
                "matrix/Secret/msg-li-s3-read",
                "matrix-li/Secret/msg-li-s3-read",
            ]
        );
        let by = |ns: &str, name: &str| {
            all.iter()
                .find(|o| o["metadata"]["namespace"] == ns && o["metadata"]["name"] == name)
                .unwrap()
        };
        // One replication password on both sides, the role CloudNativePG manages.
        for ns in ["matrix", "matrix-li"] {
            let r = by(ns, "msg-li-replication");
            assert_eq!(r["type"], "kubernetes.io/basic-auth");
            assert_eq!(r["stringData"]["username"], LI_REPLICATION_USER);
            assert_eq!(
                r["stringData"]["password"].as_str(),
                Some(s.get("liReplicationPassword"))
            );
            assert_eq!(
                by(ns, "msg-li-s3-read")["stringData"]["ACCESS_KEY_ID"].as_str(),
                Some(s.get("liS3ReadKeyId"))
            );
        }
        // LI's secrets are its own: nothing of the main Synapse's, the main database's or the
        // main backup key's.
        let synapse: serde_norway::Value = serde_norway::from_str(
            by("matrix-li", "msg-li-synapse-secrets")["stringData"]["secrets.yaml"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            synapse["macaroon_secret_key"].as_str(),
            Some(s.get("liMacaroonSecretKey"))
        );
        assert_eq!(
            synapse["signing_key_path"].as_str(),
            Some("/secrets/signing.key")
        );
        let li_text = serde_json::to_string(
            &all.iter()
                .filter(|o| o["metadata"]["namespace"] == "matrix-li")
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for main in [
            "macaroonSecretKey",
            "postgresPassword",
            "s3SecretAccessKey",
            "signingKey",
            "registrationSharedSecret",
        ] {
            assert!(!li_text.contains(s.get(main)), "{main} in the LI namespace");
        }
        assert_ne!(s.get("liS3ReadKeyId"), s.get("s3AccessKeyId"));
        // External object storage: the site names the read-only key, the installer makes none.
        let external = secrets("msg", "matrix", &s, &parts(false));
        assert!(!names(&external).iter().any(|n| n.ends_with("li-s3-read")));
        assert!(!names(&secrets("msg", "matrix", &s, &Parts::default()))
            .iter()
            .any(|n| n.contains("-li-")));
    }

    #[test]
    fn grafana_reads_the_secret_the_installer_makes() {
        let text = crate::deploy::upstream_values::text("charts/upstream/monitoring.yaml")
            .expect("the monitoring values are compiled in");
        let values: serde_norway::Value = serde_norway::from_str(text).unwrap();
        let admin = &values["grafana"]["admin"];
        assert_eq!(admin["existingSecret"].as_str(), Some(GRAFANA_ADMIN_SECRET));
        assert_eq!(admin["userKey"].as_str(), Some("admin-user"));
        assert_eq!(admin["passwordKey"].as_str(), Some("admin-password"));
    }
}
