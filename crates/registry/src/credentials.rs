//! Registry logins, found where Docker and Podman keep them: docker's `config.json`
//! (`auths`, `credHelpers`, `credsStore`) and the containers `auth.json`, plus logins given
//! explicitly. Credential helpers (`docker-credential-<name> get`) run on demand.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;

use super::error::RegistryError;
use oci::DOCKER_HUB;

/// The key Docker uses for Docker Hub in `config.json` and with credential helpers.
const DOCKER_HUB_SERVER_URL: &str = "https://index.docker.io/v1/";

/// How long a credential helper may take before it is killed.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// A username and its password or access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    /// The username.
    pub username: String,
    /// The password or token.
    pub secret: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One stored login.
#[derive(Clone)]
enum Entry {
    /// Username and secret.
    Login(Auth),
    /// An OAuth identity (refresh) token, which this client cannot use yet.
    IdentityToken,
}

/// Where logins come from, by registry host. Lookup order: logins given with
/// [`Credentials::with`], then the registry's `credHelpers` entry, then `auths` in docker's
/// `config.json`, then the `credsStore` helper, then the containers `auth.json`.
#[derive(Clone, Default)]
pub struct Credentials {
    explicit: BTreeMap<String, Auth>,
    docker: BTreeMap<String, Entry>,
    helpers: BTreeMap<String, String>,
    store: Option<String>,
    containers: BTreeMap<String, Entry>,
    helper_dir: Option<PathBuf>,
    origin: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

/// The parts of docker's `config.json` and containers' `auth.json` we read.
#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// What a credential helper prints for `get`.
#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

fn fail(message: String) -> RegistryError {
    RegistryError::Credentials { message }
}

/// Normalises a config key or registry name to the host (and port) it stands for:
/// `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` all become
/// `docker.io`; a scheme and any path are dropped.
pub fn registry_key(name: &str) -> String {
    let name = name.trim();
    let name = name
        .strip_prefix("https://")
        .or_else(|| name.strip_prefix("http://"))
        .unwrap_or(name);
    let host = name.split('/').next().unwrap_or(name).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

impl Credentials {
    /// No logins at all: every registry is accessed anonymously.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// Logins from the usual places: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`,
    /// and the first of `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json` and
    /// `~/.config/containers/auth.json` that exists. Missing files are not an error.
    pub fn from_environment() -> Result<Self, RegistryError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let docker = match var("DOCKER_CONFIG") {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => home.as_ref().map(|h| h.join(".docker/config.json")),
        };
        let containers = [
            var("REGISTRY_AUTH_FILE").map(PathBuf::from),
            var("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json")),
            home.as_ref()
                .map(|h| h.join(".config/containers/auth.json")),
        ];
        let docker = docker.filter(|p| p.is_file());
        let containers = containers.into_iter().flatten().find(|p| p.is_file());
        Credentials::from_files(docker.as_deref(), containers.as_deref())
    }

    /// Logins from a docker `config.json` and a containers `auth.json`, either optional. A
    /// file that is named but missing or malformed is an error naming it.
    pub fn from_files(
        docker_config: Option<&Path>,
        auth_json: Option<&Path>,
    ) -> Result<Self, RegistryError> {
        let mut credentials = Credentials::default();
        let mut origins = Vec::new();
        if let Some(path) = docker_config {
            let file = read_config(path)?;
            credentials.docker = entries(&file.auths, path)?;
            credentials.helpers = file
                .cred_helpers
                .iter()
                .map(|(k, v)| (registry_key(k), v.clone()))
                .collect();
            credentials.store = file.creds_store.filter(|s| !s.is_empty());
            origins.push(path.display().to_string());
        }
        if let Some(path) = auth_json {
            let file = read_config(path)?;
            credentials.containers = entries(&file.auths, path)?;
            origins.push(path.display().to_string());
        }
        credentials.origin = origins.join(" and ");
        Ok(credentials)
    }

    /// Adds an explicit login for `registry` (a host, `docker.io` for Docker Hub); it takes
    /// precedence over every file and helper.
    pub fn with(mut self, registry: &str, username: &str, secret: &str) -> Self {
        self.explicit.insert(
            registry_key(registry),
            Auth {
                username: username.to_string(),
                secret: secret.to_string(),
            },
        );
        self
    }

    /// Runs credential helpers from `dir` instead of searching `PATH` for them.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// The login for `registry` (host, or any key form docker accepts), if any. May run a
    /// credential helper, so it blocks: call it from a blocking context in async code.
    pub fn lookup(&self, registry: &str) -> Result<Option<Auth>, RegistryError> {
        let key = registry_key(registry);
        if let Some(auth) = self.explicit.get(&key) {
            return Ok(Some(auth.clone()));
        }
        if let Some(helper) = self.helpers.get(&key) {
            return self.run_helper(helper, &key);
        }
        if let Some(entry) = self.docker.get(&key) {
            return usable(entry, &key, &self.origin);
        }
        if let Some(store) = &self.store {
            if let Some(auth) = self.run_helper(store, &key)? {
                return Ok(Some(auth));
            }
        }
        match self.containers.get(&key) {
            Some(entry) => usable(entry, &key, &self.origin),
            None => Ok(None),
        }
    }

    /// Runs `docker-credential-<name> get` with the server URL on standard input.
    fn run_helper(&self, name: &str, key: &str) -> Result<Option<Auth>, RegistryError> {
        let program_name = format!("docker-credential-{name}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(&program_name),
            None => PathBuf::from(&program_name),
        };
        let server = if key == DOCKER_HUB {
            DOCKER_HUB_SERVER_URL
        } else {
            key
        };
        let helper_fail = |what: String| {
            fail(format!(
                "credential helper {program_name} failed for registry {key}: {what}"
            ))
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    fail(format!(
                        "credential helper {program_name}, configured for registry {key}, is \
                         not installed ({})",
                        program.display()
                    ))
                } else {
                    helper_fail(format!("cannot start it: {e}"))
                }
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading closes the pipe: that is its business.
            let _ = stdin.write_all(server.as_bytes());
        }
        let stdout = child.stdout.take().map(spawn_reader);
        let stderr = child.stderr.take().map(spawn_reader);
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > HELPER_TIMEOUT => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(helper_fail(format!(
                        "no answer within {} s",
                        HELPER_TIMEOUT.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(helper_fail(format!("cannot wait for it: {e}"))),
            }
        };
        let collect = |reader: Option<std::thread::JoinHandle<Vec<u8>>>| {
            reader.and_then(|r| r.join().ok()).unwrap_or_default()
        };
        let out = collect(stdout);
        let err = collect(stderr);
        if !status.success() {
            let text = format!(
                "{} {}",
                String::from_utf8_lossy(&out).trim(),
                String::from_utf8_lossy(&err).trim()
            );
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            return Err(helper_fail(format!("{status}: {}", text.trim())));
        }
        let output: HelperOutput = serde_json::from_slice(&out)
            .map_err(|e| helper_fail(format!("its output is not the expected JSON: {e}")))?;
        if output.username == "<token>" {
            return Err(helper_fail(
                "it returned an identity token, which this client does not support; store a \
                 username and password or access token instead"
                    .to_string(),
            ));
        }
        if output.username.is_empty() && output.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(Auth {
            username: output.username,
            secret: output.secret,
        }))
    }
}

/// Reads a pipe to its end on a thread, so a chatty helper cannot block on a full pipe.
fn spawn_reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn usable(entry: &Entry, key: &str, origin: &str) -> Result<Option<Auth>, RegistryError> {
    match entry {
        Entry::Login(auth) => Ok(Some(auth.clone())),
        Entry::IdentityToken => Err(fail(format!(
            "the login for registry {key} in {origin} is an identity token, which this client \
             does not support; log in with a username and password or access token instead"
        ))),
    }
}

fn read_config(path: &Path) -> Result<ConfigFile, RegistryError> {
    let bytes = oci::files::read_capped(path, oci::files::INPUT_FILE_LIMIT)
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(ConfigFile::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "{} is not a valid config file: {e}",
            path.display()
        ))
    })
}

/// The usable `auths` entries by normalised host. Host-only keys win over keys with a
/// repository path (`quay.io/org`), which are used for their host only when nothing else is.
fn entries(
    auths: &BTreeMap<String, AuthEntry>,
    path: &Path,
) -> Result<BTreeMap<String, Entry>, RegistryError> {
    let lenient = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let mut result = BTreeMap::new();
    let mut with_path = Vec::new();
    for (key, entry) in auths {
        let parsed = if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = |why: &str| {
                fail(format!(
                    "the login for {key:?} in {} is not valid: {why}",
                    path.display()
                ))
            };
            let decoded = lenient
                .decode(encoded.trim())
                .map_err(|_| bad("\"auth\" is not base64"))?;
            let text = String::from_utf8(decoded).map_err(|_| bad("\"auth\" is not UTF-8"))?;
            let (username, secret) = text
                .split_once(':')
                .ok_or_else(|| bad("\"auth\" is not base64 of user:password"))?;
            Entry::Login(Auth {
                username: username.to_string(),
                secret: secret.to_string(),
            })
        } else if let (Some(username), Some(secret)) = (&entry.username, &entry.password) {
            Entry::Login(Auth {
                username: username.clone(),
                secret: secret.clone(),
            })
        } else if entry
            .identity_token
            .as_deref()
            .is_some_and(|t| !t.is_empty())
        {
            Entry::IdentityToken
        } else {
            // `{}` placeholders left by `docker login` with a credential store.
            continue;
        };
        let trimmed = key
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let has_path =
            trimmed.trim_end_matches('/').contains('/') && registry_key(key) != DOCKER_HUB;
        if has_path {
            with_path.push((registry_key(key), parsed));
        } else {
            result.entry(registry_key(key)).or_insert(parsed);
        }
    }
    for (key, parsed) in with_path {
        result.entry(key).or_insert(parsed);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn login(user: &str, secret: &str) -> Option<Auth> {
        Some(Auth {
            username: user.into(),
            secret: secret.into(),
        })
    }

    #[test]
    fn keys_are_normalised() {
        for k in [
            "https://index.docker.io/v1/",
            "docker.io",
            "registry-1.docker.io",
            "index.docker.io",
        ] {
            assert_eq!(registry_key(k), "docker.io", "{k}");
        }
        assert_eq!(registry_key("http://Host:5000/v2/"), "host:5000");
        assert_eq!(registry_key("quay.io/org/repo"), "quay.io");
    }

    #[test]
    fn docker_config_auths_and_hub_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            dir.path(),
            "config.json",
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                "ghcr.io": {"username": "gh", "password": "tok"},
                "unpadded.example": {"auth": "dTpw"},
                "store.example": {}
            }}"#,
        );
        let c = Credentials::from_files(Some(&config), None).unwrap();
        for hub in [
            "docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ] {
            assert_eq!(c.lookup(hub).unwrap(), login("hub", "secret"), "{hub}");
        }
        assert_eq!(c.lookup("ghcr.io").unwrap(), login("gh", "tok"));
        assert_eq!(c.lookup("unpadded.example").unwrap(), login("u", "p"));
        assert_eq!(c.lookup("store.example").unwrap(), None);
        assert_eq!(c.lookup("quay.io").unwrap(), None);
        let c = c.with("ghcr.io", "explicit", "wins");
        assert_eq!(c.lookup("ghcr.io").unwrap(), login("explicit", "wins"));
    }

    #[test]
    fn containers_auth_json_fills_in() {
        let dir = tempfile::tempdir().unwrap();
        let docker = write(dir.path(), "config.json", r#"{"auths": {}}"#);
        let podman = write(
            dir.path(),
            "auth.json",
            r#"{"auths": {"quay.io/org": {"auth": "b3JnOm9yZw=="},
                          "quay.io": {"auth": "aG9zdDpob3N0"},
                          "registry.example:5000": {"auth": "cDpx"}}}"#,
        );
        let c = Credentials::from_files(Some(&docker), Some(&podman)).unwrap();
        assert_eq!(c.lookup("quay.io").unwrap(), login("host", "host"));
        assert_eq!(c.lookup("registry.example:5000").unwrap(), login("p", "q"));
    }

    #[test]
    fn malformed_files_and_entries_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(dir.path(), "bad.json", "{not json");
        let e = Credentials::from_files(Some(&bad), None).unwrap_err();
        assert!(e.to_string().contains("bad.json"), "{e}");
        let bad = write(
            dir.path(),
            "b64.json",
            r#"{"auths":{"x.io":{"auth":"!!"}}}"#,
        );
        let e = Credentials::from_files(Some(&bad), None).unwrap_err();
        assert!(e.to_string().contains("x.io") && e.to_string().contains("b64.json"));
        let missing = dir.path().join("missing.json");
        assert!(Credentials::from_files(Some(&missing), None).is_err());
        let token = write(
            dir.path(),
            "token.json",
            r#"{"auths":{"acr.example":{"identitytoken":"xyz"}}}"#,
        );
        let c = Credentials::from_files(Some(&token), None).unwrap();
        let e = c.lookup("acr.example").unwrap_err();
        assert!(e.to_string().contains("identity token"), "{e}");
    }

    #[test]
    fn helpers_get_the_server_url_and_answer_json() {
        let dir = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let path = dir.path().join(format!("docker-credential-{name}"));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            "echo",
            r#"read url; printf '{"ServerURL":"%s","Username":"u-%s","Secret":"s"}' "$url" "$url""#,
        );
        script(
            "none",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        script("broken", "echo 'gpg: decryption failed' >&2; exit 2");
        let config = write(
            dir.path(),
            "config.json",
            r#"{"credsStore": "none",
                "credHelpers": {"docker.io": "echo", "reg.example": "echo",
                                "broken.example": "broken", "gone.example": "gone"},
                "auths": {"file.example": {"auth": "Zjpm"}}}"#,
        );
        let c = Credentials::from_files(Some(&config), None)
            .unwrap()
            .with_helper_dir(dir.path());
        assert_eq!(
            c.lookup("registry-1.docker.io").unwrap(),
            login("u-https://index.docker.io/v1/", "s")
        );
        assert_eq!(
            c.lookup("reg.example").unwrap(),
            login("u-reg.example", "s")
        );
        assert_eq!(c.lookup("file.example").unwrap(), login("f", "f"));
        assert_eq!(c.lookup("other.example").unwrap(), None);
        let e = c.lookup("broken.example").unwrap_err().to_string();
        assert!(
            e.contains("decryption failed") && e.contains("broken.example"),
            "{e}"
        );
        let e = c.lookup("gone.example").unwrap_err().to_string();
        assert!(e.contains("not installed"), "{e}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::none().with("r.example", "user", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        let a = c.lookup("r.example").unwrap().unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}
