//! Group calls (MatrixRTC) from the chart: LiveKit and lk-jwt-service as rendered, checked
//! against what their upstream sources read (the key lists under tests/fixtures/calls), the
//! access token lk-jwt-service would mint verified by the official `livekit-api` package with
//! the key LiveKit would load, the network choices, policies and refusals, and on the
//! rehearsal stack the OpenID round trip lk-jwt-service makes, with federation off.
//!
//! LiveKit and lk-jwt-service themselves do not run here (Go binaries in images this machine
//! cannot start): the tests stop at their configuration and at the HTTP calls they make.

use crate::harness::chart::{self, Rendered};
use crate::harness::stack::{self, Source};
use crate::stack_chart::{self, documents, find, write, NAMESPACE, RELEASE};
use installer::smoke::MatrixClient;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Calls on with NodePort media (the default network), one call node.
pub(crate) const NODE_PORT: &str = "calls:
  enabled: true
  externalIPs: [203.0.113.20]
  nodeSelector: {messenger.example.test/calls: \"true\"}
";

/// Calls on the host network behind NAT, a UDP range, two call nodes.
const HOST_RANGE: &str = "calls:
  enabled: true
  network: hostNetwork
  externalIPs: [203.0.113.20, 203.0.113.21]
  nodeIPs: [10.20.0.21, 10.20.0.22]
  nodeSelector: {messenger.example.test/calls: \"true\"}
  udpPortRangeStart: 40000
  udpPortRangeEnd: 44999
  tcpPort: 7881
";

/// Calls on the host network with the muxed port.
const HOST_MUX: &str = "calls:
  enabled: true
  network: hostNetwork
  externalIPs: [203.0.113.20]
  nodeSelector: {messenger.example.test/calls: \"true\"}
  udpPort: 7882
  tcpPort: 7881
";

fn fixture(name: &str) -> PathBuf {
    stack_chart::root()
        .join("crates/installer/tests/fixtures/calls")
        .join(name)
}

/// The lines of a key list fixture, without its header.
fn key_list(name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    assert!(
        text.starts_with('#'),
        "{name} must start with its header naming the upstream source"
    );
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The rendered documents of profile `profile` with `overlay` on the site file.
fn render_with(profile: &str, overlay: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "calls.yaml", overlay);
    let out = stack_chart::template(profile, &["-f", file.to_str().unwrap()]).ok();
    documents(&out.stdout)
}

/// `helm template` with `overlay`: its error output when the chart refuses it.
fn refusal(overlay: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "calls.yaml", overlay);
    let out = stack_chart::template("1k", &["-f", file.to_str().unwrap()]);
    assert_ne!(out.code, 0, "the chart accepted:\n{overlay}");
    out.stderr
}

fn livekit_config(docs: &[Value]) -> Value {
    let text = stack_chart::config_map_key(docs, &format!("{RELEASE}-livekit"), "config.yaml");
    serde_norway::from_str(&text).unwrap()
}

/// Every key path of a YAML document: `a.b` for mappings, `a[]` for items of a list of
/// mappings.
fn key_paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Mapping(m) => {
            for (k, v) in m {
                let key = k.as_str().unwrap_or("<non-string key>");
                let path = if prefix.is_empty() {
                    key.to_string()
                } else {
                    format!("{prefix}.{key}")
                };
                out.push(path.clone());
                key_paths(v, &path, out);
            }
        }
        Value::Sequence(items) if items.iter().any(Value::is_mapping) => {
            let path = format!("{prefix}[]");
            out.push(path.clone());
            for item in items {
                key_paths(item, &path, out);
            }
        }
        _ => {}
    }
}

/// The key paths of `config` that `known` does not hold.
fn unknown_keys(config: &Value, known: &BTreeSet<String>) -> Vec<String> {
    let mut paths = Vec::new();
    key_paths(config, "", &mut paths);
    paths.into_iter().filter(|p| !known.contains(p)).collect()
}

fn container<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &find(docs, kind, name)["spec"]["template"]["spec"]["containers"][0]
}

/// The environment of a container: name -> value (empty for valueFrom).
fn env(container: &Value) -> BTreeMap<String, String> {
    container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Variables of `env` that lk-jwt-service does not read: those not in `known`, unless another
/// variable it reads takes them through Kubernetes' `$(NAME)` expansion.
fn unknown_env(env: &BTreeMap<String, String>, known: &BTreeSet<String>) -> Vec<String> {
    env.keys()
        .filter(|name| !known.contains(*name))
        .filter(|name| {
            !env.iter()
                .any(|(k, v)| known.contains(k) && v.contains(&format!("$({name})")))
        })
        .cloned()
        .collect()
}

#[test]
fn rendered_livekit_config_and_lk_jwt_env_use_only_keys_upstream_reads() {
    let config_keys = key_list("livekit-config-keys.txt");
    let env_keys = key_list("lk-jwt-service-env.txt");
    // A misspelled key is caught, in the config and in the environment.
    let typo: Value =
        serde_norway::from_str("rtc:\n  use_extrenal_ip: false\n  turn_servers: [{hots: x}]\n")
            .unwrap();
    assert_eq!(
        unknown_keys(&typo, &config_keys),
        ["rtc.use_extrenal_ip", "rtc.turn_servers[].hots"]
    );
    let mut bad_env = BTreeMap::from([("LIVEKIT_KEYFILE".to_string(), "/x".to_string())]);
    assert_eq!(unknown_env(&bad_env, &env_keys), ["LIVEKIT_KEYFILE"]);
    bad_env.insert("HELPER".into(), String::new());
    assert_eq!(
        unknown_env(&bad_env, &env_keys),
        ["HELPER", "LIVEKIT_KEYFILE"]
    );

    for overlay in [NODE_PORT, HOST_RANGE, HOST_MUX] {
        let docs = render_with("1k", overlay);
        let config = livekit_config(&docs);
        let unknown = unknown_keys(&config, &config_keys);
        assert!(unknown.is_empty(), "LiveKit has no keys {unknown:?}");
        let jwt = env(container(
            &docs,
            "Deployment",
            &format!("{RELEASE}-lk-jwt-service"),
        ));
        let unknown = unknown_env(&jwt, &env_keys);
        assert!(unknown.is_empty(), "lk-jwt-service reads no {unknown:?}");
        // The required ones (config.go, parseConfig) are all there.
        for required in [
            "LIVEKIT_URL",
            "LIVEKIT_FULL_ACCESS_HOMESERVERS",
            "LIVEKIT_KEY_FILE",
        ] {
            assert!(!jwt[required].is_empty(), "{required}");
        }
    }
}

/// The Secret and key a container's file at `path` comes from: (Secret name, key).
fn secret_of_file(pod: &Value, container: &Value, path: &str) -> (String, String) {
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let file = &path[mount["mountPath"].as_str().unwrap().len() + 1..];
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let secret = &volume["secret"];
    let key = secret["items"]
        .as_sequence()
        .and_then(|items| items.iter().find(|i| i["path"].as_str() == Some(file)))
        .map(|i| i["key"].as_str().unwrap().to_string())
        .unwrap_or_else(|| file.to_string());
    (secret["secretName"].as_str().unwrap().to_string(), key)
}

/// What `python3` prints running `script` with `env`; fails the test when it fails.
fn python(script: &str, env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new("python3")
        .args(["-c", script])
        .envs(env.iter().copied())
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

/// Mints an access token with lk-jwt-service 0.6.0's claims (handler.go, getJoinToken, through
/// livekit/protocol's auth.AccessToken: iss the key id, sub the identity, nbf, exp one hour on,
/// a video grant joining one room, publish, subscribe and update its own metadata; HS256 with
/// the secret), written here with the standard library alone, then verifies it with the
/// official SDK's TokenVerifier given LiveKit's key and secret.
const MINT_AND_VERIFY: &str = r#"
import base64, hashlib, hmac, json, os, time
from livekit import api
def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": os.environ["JWT_KEY"], "sub": "@alice:example.test:DEVICE", "nbf": now,
          "exp": now + 3600,
          "video": {"roomJoin": True, "room": "!room:example.test", "canPublish": True,
                    "canSubscribe": True, "canUpdateOwnMetadata": True}}
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps(claims).encode())
sig = hmac.new(os.environ["JWT_SECRET"].encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
token = f"{head}.{body}.{b64(sig)}"
verified = api.TokenVerifier(os.environ["LK_KEY"], os.environ["LK_SECRET"]).verify(token)
print(json.dumps({"identity": verified.identity, "room": verified.video.room,
                  "join": verified.video.room_join, "publish": verified.video.can_publish}))
"#;

#[test]
fn a_token_minted_from_lk_jwt_services_secret_verifies_with_livekits_key() {
    let (ok, version) = python(
        "import importlib.metadata as m; print(m.version('livekit-api'))",
        &[],
    );
    assert!(
        ok,
        "the livekit-api package is missing: pip install livekit-api (scripts/setup.sh)\n{version}"
    );
    for overlay in [NODE_PORT, HOST_RANGE] {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "calls.yaml", overlay);
        let site = stack_chart::site_file();
        let profile = stack_chart::chart().join("profiles/1k.yaml");
        // The chart's objects plus the Secrets the installer makes beside them.
        let rendered = chart::render(
            &stack_chart::chart(),
            RELEASE,
            NAMESPACE,
            &[&site, &profile, &file],
        );
        let (key, secret) = lk_jwt_credentials(&rendered);
        let keys = livekit_keys(&rendered);
        assert_eq!(keys.len(), 1, "LiveKit loads one key");
        let (lk_key, lk_secret) = keys.iter().next().unwrap();
        let (ok, out) = python(
            MINT_AND_VERIFY,
            &[
                ("JWT_KEY", &key),
                ("JWT_SECRET", &secret),
                ("LK_KEY", lk_key),
                ("LK_SECRET", lk_secret),
            ],
        );
        assert!(ok, "livekit-api {version} refused the token: {out}");
        let claims: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(claims["identity"], "@alice:example.test:DEVICE");
        assert_eq!(claims["room"], "!room:example.test");
        assert_eq!(claims["join"], true);
        // LiveKit signs its webhooks with a key it holds, which lk-jwt-service verifies.
        let config: Value = serde_norway::from_str(
            &rendered
                .config_map(&format!("{RELEASE}-livekit"), "config.yaml")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(config["webhook"]["api_key"].as_str(), Some(key.as_str()));

        // The check has teeth: a secret from another key of the same Secrets fails it.
        let turn = rendered
            .secret(&format!("{RELEASE}-livekit"), "turn-shared-secret")
            .unwrap();
        let (ok, out) = python(
            MINT_AND_VERIFY,
            &[
                ("JWT_KEY", &key),
                ("JWT_SECRET", &turn),
                ("LK_KEY", lk_key),
                ("LK_SECRET", lk_secret),
            ],
        );
        assert!(!ok, "a token signed with another secret verified: {out}");
    }
}

/// lk-jwt-service's key and secret as 0.6.0 reads them: LIVEKIT_KEY_FILE, the file split at
/// its colon and trimmed (config.go, readKeySecret), the file taken from the Secret its pod
/// mounts at that path.
fn lk_jwt_credentials(rendered: &Rendered) -> (String, String) {
    let deployment = rendered.object_of("Deployment", &format!("{RELEASE}-lk-jwt-service"));
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let vars = env(container);
    let path = &vars["LIVEKIT_KEY_FILE"];
    let (secret, key) = secret_of_file(pod, container, path);
    let text = rendered
        .secret(&secret, &key)
        .unwrap_or_else(|| panic!("no Secret {secret} key {key}"));
    let parts: Vec<&str> = text.split(':').collect();
    assert_eq!(parts.len(), 2, "invalid key secret file format");
    let trim = |s: &str| s.trim_matches([' ', '\r', '\n']).to_string();
    (trim(parts[0]), trim(parts[1]))
}

/// LiveKit's keys as it loads them: key_file of its rendered config, a YAML mapping, from the
/// Secret its pod mounts there.
fn livekit_keys(rendered: &Rendered) -> BTreeMap<String, String> {
    let config: Value = serde_norway::from_str(
        &rendered
            .config_map(&format!("{RELEASE}-livekit"), "config.yaml")
            .unwrap(),
    )
    .unwrap();
    let path = config["key_file"].as_str().unwrap();
    let deployment = rendered.object_of("Deployment", &format!("{RELEASE}-livekit"));
    let pod = &deployment["spec"]["template"]["spec"];
    let (secret, key) = secret_of_file(pod, &pod["containers"][0], path);
    let text = rendered
        .secret(&secret, &key)
        .unwrap_or_else(|| panic!("no Secret {secret} key {key}"));
    serde_norway::from_str(&text).unwrap()
}

#[test]
fn the_network_choices_render_what_they_say() {
    let lk = format!("{RELEASE}-livekit");
    // NodePort: the release namespace, no host network, a NodePort Service whose node ports
    // are the ports LiveKit advertises, kept on the node (Local).
    let docs = render_with("1k", NODE_PORT);
    let deployment = find(&docs, "Deployment", &lk);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        deployment["metadata"]["namespace"].as_str(),
        Some(NAMESPACE)
    );
    assert!(pod["hostNetwork"].is_null());
    let service = find(&docs, "Service", &format!("{lk}-rtc"));
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["externalTrafficPolicy"], "Local");
    let ports: Vec<(String, u64, u64)> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["port"], p["nodePort"]);
            (
                p["protocol"].as_str().unwrap().to_string(),
                p["port"].as_u64().unwrap(),
                p["targetPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [("UDP".into(), 30882, 30882), ("TCP".into(), 30881, 30881)]
    );
    let config = livekit_config(&docs);
    assert_eq!(config["rtc"]["udp_port"].as_u64(), Some(30882));
    assert_eq!(config["rtc"]["tcp_port"].as_u64(), Some(30881));
    assert!(config["rtc"]["port_range_start"].is_null());
    assert_eq!(
        pod["nodeSelector"]["messenger.example.test/calls"].as_str(),
        Some("true")
    );
    let external = stack_chart::config_map_key(&docs, &lk, "external-ips");
    assert_eq!(external.trim(), "203.0.113.20 203.0.113.20");
    // The rtc host: a Gateway listener and a name on the certificate; /livekit/jwt to
    // lk-jwt-service with the prefix removed, the rest to LiveKit.
    let gateway = find(&docs, "Gateway", RELEASE);
    let listener = gateway["spec"]["listeners"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "https-rtc")
        .expect("an https-rtc listener");
    assert_eq!(listener["hostname"], "rtc.example.test");
    let certificate = find(&docs, "Certificate", &format!("{RELEASE}-tls"));
    assert!(certificate["spec"]["dnsNames"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|n| n == "rtc.example.test"));
    let route = find(&docs, "HTTPRoute", &format!("{RELEASE}-rtc"));
    let rules = &route["spec"]["rules"];
    assert_eq!(rules[0]["matches"][0]["path"]["value"], "/livekit/jwt");
    assert_eq!(
        rules[0]["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"],
        "/"
    );
    assert_eq!(
        rules[0]["backendRefs"][0]["name"].as_str(),
        Some(format!("{RELEASE}-lk-jwt-service").as_str())
    );
    assert_eq!(
        rules[1]["backendRefs"][0]["name"].as_str(),
        Some(lk.as_str())
    );
    assert_eq!(rules[1]["backendRefs"][0]["namespace"], NAMESPACE);
    assert!(!docs.iter().any(|d| d["kind"] == "ReferenceGrant"));

    // hostNetwork with a range: the TURN namespace, the node's network, the range, no
    // NodePort; the route reaches the Service across namespaces by a ReferenceGrant.
    let docs = render_with("1k", HOST_RANGE);
    let deployment = find(&docs, "Deployment", &lk);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["metadata"]["namespace"], "matrix-turn");
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert!(!docs
        .iter()
        .any(|d| d["metadata"]["name"].as_str() == Some(&format!("{lk}-rtc"))));
    let config = livekit_config(&docs);
    assert_eq!(config["rtc"]["port_range_start"].as_u64(), Some(40000));
    assert_eq!(config["rtc"]["port_range_end"].as_u64(), Some(44999));
    assert!(config["rtc"]["udp_port"].is_null());
    let external = stack_chart::config_map_key(&docs, &lk, "external-ips");
    let pairs: Vec<&str> = external
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        pairs,
        ["10.20.0.21 203.0.113.20", "10.20.0.22 203.0.113.21"]
    );
    let route = find(&docs, "HTTPRoute", &format!("{RELEASE}-rtc"));
    let backend = &route["spec"]["rules"][1]["backendRefs"][0];
    assert_eq!(backend["namespace"], "matrix-turn");
    let grant = find(&docs, "ReferenceGrant", &format!("{lk}-from-routes"));
    assert_eq!(grant["metadata"]["namespace"], "matrix-turn");
    assert_eq!(grant["spec"]["from"][0]["namespace"], NAMESPACE);
    assert_eq!(grant["spec"]["to"][0]["name"].as_str(), Some(lk.as_str()));

    // coturn lets relayed participants reach LiveKit's external addresses (outside the
    // cluster's networks, which stay denied).
    let coturn =
        stack_chart::config_map_key(&docs, &format!("{RELEASE}-coturn"), "turnserver.conf");
    for ip in ["203.0.113.20", "203.0.113.21"] {
        assert!(
            coturn.contains(&format!("allowed-peer-ip={ip}\n")),
            "{coturn}"
        );
    }
    assert!(!coturn.contains("allowed-peer-ip=10.20.0.21"));

    // hostNetwork muxed: the one port.
    let docs = render_with("1k", HOST_MUX);
    let config = livekit_config(&docs);
    assert_eq!(config["rtc"]["udp_port"].as_u64(), Some(7882));
    assert!(config["rtc"]["port_range_start"].is_null());
    assert_eq!(
        find(&docs, "Deployment", &lk)["spec"]["template"]["spec"]["hostNetwork"],
        true
    );
}

#[test]
fn no_public_stun_and_no_outside_url_for_calls() {
    for overlay in [NODE_PORT, HOST_RANGE] {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "calls.yaml", overlay);
        let text = stack_chart::template("1k", &["-f", file.to_str().unwrap()])
            .ok()
            .stdout;
        for public in [
            "stun:",
            "stun.l.google",
            "twilio",
            "stun_servers",
            "use_external_ip: true",
        ] {
            assert!(!text.contains(public), "the chart renders {public:?}");
        }
        let docs = documents(&text);
        // LiveKit never asks STUN for its address, and hands clients the stack's TURN only
        // (turn_servers set: no default STUN servers; roommanager.go).
        let config = livekit_config(&docs);
        assert_eq!(config["rtc"]["use_external_ip"], false);
        assert_eq!(config["turn"]["enabled"], false);
        let turn: Vec<&str> = config["rtc"]["turn_servers"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s["host"].as_str().unwrap())
            .collect();
        assert_eq!(
            turn,
            [
                "10.20.0.11",
                "10.20.0.11",
                "10.20.0.12",
                "10.20.0.12",
                "turn.example.test"
            ]
        );
        // Every URL the call parts hand out names a host of the site or the cluster.
        let element =
            stack_chart::config_map_key(&docs, &format!("{RELEASE}-element"), "config.json");
        let haproxy =
            stack_chart::config_map_key(&docs, &format!("{RELEASE}-haproxy"), "haproxy.cfg");
        let homeserver =
            stack_chart::config_map_key(&docs, &format!("{RELEASE}-synapse"), "homeserver.yaml");
        let jwt = env(container(
            &docs,
            "Deployment",
            &format!("{RELEASE}-lk-jwt-service"),
        ));
        let livekit =
            stack_chart::config_map_key(&docs, &format!("{RELEASE}-livekit"), "config.yaml");
        let jwt = jwt.values().cloned().collect::<Vec<_>>().join(" ");
        let hosts: Vec<String> = [element, haproxy, homeserver, livekit, jwt]
            .iter()
            .flat_map(|s| url_hosts(s))
            .collect();
        assert!(hosts.len() > 5, "{hosts:?}");
        for host in &hosts {
            assert!(
                host.ends_with("example.test") || host.ends_with(".svc.cluster.local"),
                "a URL to {host}, outside the site"
            );
        }
        let config: serde_json::Value = serde_json::from_str(&stack_chart::config_map_key(
            &docs,
            &format!("{RELEASE}-element"),
            "config.json",
        ))
        .unwrap();
        assert_eq!(config["element_call"]["use_exclusively"], true);
        assert!(
            config["element_call"]["url"].is_null(),
            "Element Call from outside"
        );
        assert_eq!(config["features"]["feature_group_calls"], true);
    }
}

/// The host of every `scheme://authority` URL in `text` (user info and port removed).
fn url_hosts(text: &str) -> Vec<String> {
    text.match_indices("://")
        .map(|(i, _)| {
            let authority: String = text[i + 3..]
                .chars()
                .take_while(|c| !matches!(c, '/' | '"' | '\'' | ' ' | '\n' | ',' | '}' | ']'))
                .collect();
            let host = authority.rsplit('@').next().unwrap_or("");
            host.split(':').next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn call_pods_run_restricted_except_livekit_on_the_host_network() {
    for (overlay, host) in [(NODE_PORT, false), (HOST_RANGE, true)] {
        let docs = render_with("1k", overlay);
        for name in ["livekit", "lk-jwt-service"] {
            let d = find(&docs, "Deployment", &format!("{RELEASE}-{name}"));
            let spec = &d["spec"]["template"]["spec"];
            let on_host = spec["hostNetwork"].as_bool().unwrap_or(false);
            assert_eq!(on_host, host && name == "livekit", "{name}");
            // The host network only where the privileged level is: the TURN namespace.
            let namespace = d["metadata"]["namespace"].as_str().unwrap();
            assert_eq!(namespace == "matrix-turn", on_host, "{name} in {namespace}");
            assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(spec["automountServiceAccountToken"], false, "{name}");
            let c = &spec["containers"][0];
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["capabilities"]["drop"][0], "ALL", "{name}");
            assert!(c["resources"]["requests"]["memory"].is_string(), "{name}");
            // Secrets by file or environment reference, never on a command line.
            let argv = format!("{:?}{:?}", c["command"], c["args"]);
            assert!(
                !argv.contains("secret") && !argv.contains("password"),
                "{argv}"
            );
        }
    }
}

/// Whether `selector` (matchLabels) selects the pods of `workload`.
fn selects(selector: &Value, workload: &Value) -> bool {
    let labels = &workload["spec"]["template"]["metadata"]["labels"];
    selector
        .as_mapping()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn the_pdb_and_network_policies_select_the_call_pods() {
    let docs = render_with("1k", NODE_PORT);
    let livekit = find(&docs, "Deployment", &format!("{RELEASE}-livekit"));
    let jwt = find(&docs, "Deployment", &format!("{RELEASE}-lk-jwt-service"));
    let proxy = find(&docs, "Deployment", &format!("{RELEASE}-valkey-proxy"));
    let haproxy = find(&docs, "Deployment", &format!("{RELEASE}-haproxy"));
    let pdb = find(&docs, "PodDisruptionBudget", &format!("{RELEASE}-livekit"));
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], livekit));
    assert!(!selects(&pdb["spec"]["selector"]["matchLabels"], jwt));
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);

    let policy = |name: &str| find(&docs, "NetworkPolicy", &format!("{RELEASE}-{name}"));
    let lk_policy = policy("livekit");
    assert!(selects(
        &lk_policy["spec"]["podSelector"]["matchLabels"],
        livekit
    ));
    let ingress = lk_policy["spec"]["ingress"].as_sequence().unwrap();
    // Signalling from the Gateway's namespace and lk-jwt-service; media from anywhere.
    assert_eq!(
        ingress[0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "envoy-gateway-system"
    );
    assert!(selects(
        &ingress[0]["from"][1]["podSelector"]["matchLabels"],
        jwt
    ));
    assert_eq!(ingress[0]["ports"][0]["port"], 7880);
    assert!(ingress[1]["from"].is_null());
    assert_eq!(ingress[1]["ports"][0]["protocol"], "UDP");
    assert_eq!(ingress[1]["ports"][0]["port"], 30882);
    assert_eq!(ingress[1]["ports"][1]["port"], 30881);

    let jwt_policy = policy("lk-jwt-service");
    assert!(selects(
        &jwt_policy["spec"]["podSelector"]["matchLabels"],
        jwt
    ));
    assert!(selects(
        &jwt_policy["spec"]["ingress"][1]["from"][0]["podSelector"]["matchLabels"],
        livekit
    ));
    let to_valkey = policy("calls-valkey-proxy");
    assert!(selects(
        &to_valkey["spec"]["podSelector"]["matchLabels"],
        proxy
    ));
    let from: Vec<&Value> = to_valkey["spec"]["ingress"][0]["from"]
        .as_sequence()
        .unwrap()
        .iter()
        .collect();
    assert!(selects(&from[0]["podSelector"]["matchLabels"], livekit));
    assert!(selects(&from[1]["podSelector"]["matchLabels"], jwt));
    let to_haproxy = policy("calls-haproxy");
    assert!(selects(
        &to_haproxy["spec"]["podSelector"]["matchLabels"],
        haproxy
    ));

    // On the host network LiveKit is outside NetworkPolicies: it reaches Valkey and
    // lk-jwt-service from the node network.
    let docs = render_with("1k", HOST_RANGE);
    assert!(!docs.iter().any(|d| d["kind"] == "NetworkPolicy"
        && d["metadata"]["name"].as_str() == Some(&format!("{RELEASE}-livekit"))));
    let to_valkey = find(
        &docs,
        "NetworkPolicy",
        &format!("{RELEASE}-calls-valkey-proxy"),
    );
    assert_eq!(
        to_valkey["spec"]["ingress"][0]["from"][0]["ipBlock"]["cidr"],
        "10.20.0.0/24"
    );
    let pdb = find(&docs, "PodDisruptionBudget", &format!("{RELEASE}-livekit"));
    assert_eq!(pdb["metadata"]["namespace"], "matrix-turn");
}

#[test]
fn the_chart_refuses_impossible_call_settings() {
    let cases: &[(&str, &str)] = &[
        (
            "calls: {enabled: true, externalIPs: [203.0.113.20], nodeSelector: {a: b}}\nturn: {enabled: false}\n",
            "calls.enabled: group calls need turn.enabled",
        ),
        ("calls: {enabled: true}\n", "calls.externalIPs: calls are enabled but no address"),
        ("calls: {enabled: true}\n", "calls.nodeSelector: calls are enabled but no node label"),
        (
            "calls: {enabled: true, externalIPs: [203.0.113.20], nodeSelector: {a: b}, udpPortRangeStart: 40000, udpPortRangeEnd: 41000}\n",
            "calls.udpPortRangeStart: a UDP port range needs calls.network: hostNetwork",
        ),
        (
            "calls: {enabled: true, externalIPs: [203.0.113.20], nodeSelector: {a: b}, udpPort: 7882}\n",
            "calls.udpPort: 7882 is outside the NodePort range",
        ),
        (
            "calls: {enabled: true, externalIPs: [203.0.113.20], nodeSelector: {a: b}}\nlivekit: {replicas: 2}\n",
            "livekit.replicas: profile 1k runs 2 LiveKit pods",
        ),
        (
            "calls: {enabled: true, network: hostNetwork, externalIPs: [203.0.113.20], nodeSelector: {a: b}, udpPortRangeStart: 50000, udpPortRangeEnd: 50999}\n",
            "overlap coturn's relay range 49152-65535",
        ),
        (
            "calls: {enabled: true, network: hostNetwork, externalIPs: [203.0.113.20], nodeSelector: {a: b}, udpPort: 3478}\n",
            "include coturn's port 3478",
        ),
        (
            "calls: {enabled: true, externalIPs: [203.0.113.20], nodeIPs: [10.0.0.1, 10.0.0.2], nodeSelector: {a: b}}\n",
            "calls.nodeIPs: 2 node addresses for 1 calls.externalIPs",
        ),
        ("calls: {enabled: true, network: bridge}\n", "network"),
    ];
    for (overlay, message) in cases {
        let stderr = refusal(overlay);
        assert!(stderr.contains(message), "{overlay}: {stderr}");
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port` with `Host: host`, a bearer token if given, and
/// a JSON body: (status, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    host: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(value) = &bearer {
        headers.push(("Authorization", value));
    }
    stack_chart::http_with_body(port, host, method, path, &headers, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn start_with_calls(dir: &Path) -> stack::Stack {
    let chart = stack_chart::chart();
    let site = stack_chart::site_file();
    let profile = chart.join("profiles/100.yaml");
    // Profile 100; the admin host open to this machine, where the smoke client registers its
    // users; nothing from the other components that this test does not use.
    let calls = write(
        dir,
        "calls.yaml",
        &format!(
            "profile: \"100\"\nadmin: {{allowedCIDRs: [127.0.0.1/32]}}\n\
             antivirus: {{enabled: false}}\n{NODE_PORT}"
        ),
    );
    stack::start(
        &Source {
            chart: &chart,
            release: RELEASE,
            namespace: NAMESPACE,
            values: &[&site, &calls, &profile],
        },
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lk_jwt_services_openid_check_works_through_haproxy_with_federation_off() {
    let dir = tempfile::tempdir().unwrap();
    let stack = tokio::task::block_in_place(|| start_with_calls(dir.path()));
    let port = stack.front_port;
    let server_name = stack.server_name.clone();

    // What clients discover: the RTC focus in .well-known/matrix/client, and Synapse's own
    // transport list (MSC4143), both naming lk-jwt-service on the rtc host.
    let (status, body) = request(
        port,
        "GET",
        "/.well-known/matrix/client",
        &server_name,
        None,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let focus = &json(&body)["org.matrix.msc4143.rtc_foci"][0];
    assert_eq!(focus["type"], "livekit");
    assert_eq!(
        focus["livekit_service_url"],
        "https://rtc.example.test/livekit/jwt"
    );

    // A user and its access token (registered through the admin host, logged in through the
    // chart's HAProxy).
    let admin = MatrixClient::new(&format!("http://127.0.0.1:{}", stack.admin_port), None).unwrap();
    let user = admin
        .register(stack.registration_secret.as_bytes(), "caller", "caller-pw")
        .await
        .unwrap();
    let user_id = user.user_id().unwrap().to_string();
    let matrix_host = "matrix.example.test";
    let (status, body) = tokio::task::block_in_place(|| {
        request(
            port,
            "POST",
            "/_matrix/client/v3/login",
            matrix_host,
            None,
            r#"{"type":"m.login.password","identifier":{"type":"m.id.user","user":"caller"},"password":"caller-pw"}"#,
        )
    });
    assert_eq!(status, 200, "{body}");
    let access = json(&body)["access_token"].as_str().unwrap().to_string();
    let (status, body) = request(
        port,
        "GET",
        "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports",
        matrix_host,
        Some(&access),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["rtc_transports"][0]["livekit_service_url"],
        "https://rtc.example.test/livekit/jwt",
        "{body}"
    );

    // The client's OpenID token, as Element Call requests it.
    let (status, body) = request(
        port,
        "POST",
        &format!("/_matrix/client/v3/user/{user_id}/openid/request_token"),
        matrix_host,
        Some(&access),
        "{}",
    );
    assert_eq!(status, 200, "{body}");
    let openid = json(&body);
    let token = openid["access_token"].as_str().unwrap();
    assert_eq!(
        openid["matrix_server_name"].as_str(),
        Some(server_name.as_str())
    );

    // lk-jwt-service 0.6.0 resolves matrix_server_name as gomatrixserverlib does
    // (fclient/resolve.go): .well-known/matrix/server on the server name's host, whose m.server
    // has an explicit port, so the request goes there with that as its Host header.
    let (status, body) = request(
        port,
        "GET",
        "/.well-known/matrix/server",
        &server_name,
        None,
        "",
    );
    assert_eq!(status, 200, "{body}");
    let delegated = json(&body)["m.server"].as_str().unwrap().to_string();
    assert_eq!(delegated, "matrix.example.test:443");
    let userinfo = |token: &str| {
        request(
            port,
            "GET",
            &format!("/_matrix/federation/v1/openid/userinfo?access_token={token}"),
            &delegated,
            None,
            "",
        )
    };
    let (status, body) = userinfo(token);
    assert_eq!(status, 200, "{body}");
    let sub = json(&body)["sub"].as_str().unwrap().to_string();
    assert_eq!(sub, user_id);
    // fclient's LookupUserInfo also requires the user to belong to the server asked.
    assert_eq!(
        sub.split_once(':').map(|(_, s)| s),
        Some(server_name.as_str())
    );

    // A wrong token is refused.
    let (status, body) = userinfo("not-a-token");
    assert_eq!(status, 401, "{body}");
    assert_eq!(json(&body)["errcode"], "M_UNKNOWN_TOKEN");
    // The client access token is not an OpenID token either.
    let (status, _) = userinfo(&access);
    assert_eq!(status, 401);

    // Federation stays closed apart from that one path.
    for path in ["/_matrix/federation/v1/version", "/_matrix/key/v2/server"] {
        let (status, body) = request(port, "GET", path, &delegated, None, "");
        assert_eq!(status, 403, "{path}: {body}");
    }
    drop(stack);
}

#[test]
fn the_deploy_plan_makes_the_call_secrets_where_livekit_runs() {
    use crate::deploy::site;
    let work = tempfile::tempdir().unwrap();
    for (overlay, livekit_ns) in [(NODE_PORT, NAMESPACE), (HOST_RANGE, "matrix-turn")] {
        let out = work.path().join(format!("out-{livekit_ns}"));
        // Antivirus off: only the call parts are looked at here.
        let site = site(
            work.path(),
            "1k",
            &format!("antivirus: {{enabled: false}}\n{overlay}"),
        );
        crate::deploy::dry_run("bundle.tar.zst", &site, &out, &["--only=messenger"]).ok();
        let plan = crate::deploy::plan_json(&out);
        let creates: Vec<String> = crate::deploy::planned_step(&plan, "secrets")["creates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let release = "messenger";
        assert!(
            creates.contains(&format!("{livekit_ns}/Secret/{release}-livekit")),
            "{creates:?}"
        );
        assert!(
            creates.contains(&format!("{NAMESPACE}/Secret/{release}-lk-jwt-service")),
            "{creates:?}"
        );
        // LiveKit's Valkey password where it runs: a copy only outside the release namespace.
        let copies = creates
            .iter()
            .filter(|c| c.ends_with(&format!("/Secret/{release}-valkey-auth")))
            .count();
        assert_eq!(
            copies,
            if livekit_ns == NAMESPACE { 1 } else { 2 },
            "{creates:?}"
        );
    }
}
