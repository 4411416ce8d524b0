//! The HTTP side of the client: the two reqwest clients (verified TLS with the system roots and
//! extra CA files; unverified for registries marked insecure), where a reference's repository
//! is actually fetched from (the registry or its mirror), and which scheme an insecure
//! registry speaks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::config::{ClientConfig, RegistrySettings};
use super::error::RegistryError;
use oci::Reference;

/// Time allowed to open a connection (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time allowed between two reads of an answer, so a stalled download fails and is retried.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed for the probe that tells whether an insecure registry speaks TLS.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one reference's repository is fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host[:port]` connected to: the registry's API host, or its mirror's.
    pub host: String,
    /// The mirror's path prefix (`dockerhub-proxy` of `harbor.corp/dockerhub-proxy`), put
    /// before every repository, as Harbor proxy-cache projects and Artifactory remotes are
    /// addressed.
    pub prefix: Option<String>,
    /// Whether TLS verification is off (and plain HTTP allowed).
    pub insecure: bool,
    /// How errors name it: `docker.io`, or `docker.io (mirror 127.0.0.1:5000)`.
    pub label: String,
}

/// Picks the endpoint for `reference` from the per-registry settings.
pub(crate) fn endpoint(
    registries: &BTreeMap<String, RegistrySettings>,
    reference: &Reference,
) -> Endpoint {
    let settings = registries
        .get(&reference.registry)
        .or_else(|| registries.get(reference.api_host()));
    let insecure = settings.is_some_and(|s| s.insecure);
    match settings.and_then(|s| s.mirror.as_deref()) {
        Some(mirror) => {
            let (host, prefix) = split_mirror(mirror);
            Endpoint {
                host: host.to_string(),
                prefix: prefix.map(str::to_string),
                insecure: registries.get(host).map_or(insecure, |m| m.insecure),
                label: format!("{} (mirror {mirror})", reference.registry),
            }
        }
        None => Endpoint {
            host: reference.api_host().to_string(),
            prefix: None,
            insecure,
            label: reference.registry.clone(),
        },
    }
}

/// A mirror's `host[:port]` and its path prefix, if it has one.
pub(crate) fn split_mirror(mirror: &str) -> (&str, Option<&str>) {
    match mirror.split_once('/') {
        Some((host, prefix)) => (
            host,
            Some(prefix.trim_matches('/')).filter(|p| !p.is_empty()),
        ),
        None => (mirror, None),
    }
}

impl Endpoint {
    /// `repository` as this endpoint names it: under the mirror's path prefix, if any.
    pub fn repository(&self, repository: &str) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{repository}"),
            None => repository.to_string(),
        }
    }
}

/// Whether `host` (a URL's `host[:port]`) is marked insecure: by its own entry, or else as
/// the mirror of an insecure registry (as [`endpoint`] decides).
pub(crate) fn host_is_insecure(
    registries: &BTreeMap<String, RegistrySettings>,
    host: &str,
) -> bool {
    match registries.get(host) {
        Some(settings) => settings.insecure,
        None => registries
            .values()
            .any(|s| s.insecure && s.mirror.as_deref().map(|m| split_mirror(m).0) == Some(host)),
    }
}

/// The certificates of PEM CA files, each file holding at least one; the message names a
/// file that cannot be read or holds none.
pub fn ca_roots(paths: &[std::path::PathBuf]) -> Result<Vec<reqwest::Certificate>, String> {
    let mut roots = Vec::new();
    for path in paths {
        let pem = oci::files::read_capped(path, oci::files::INPUT_FILE_LIMIT)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA file {} is not PEM certificates: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("CA file {} holds no certificate", path.display()));
        }
        roots.extend(certs);
    }
    Ok(roots)
}

/// The verified and the unverified HTTP client, built once per [`super::Client`].
#[derive(Debug)]
pub(crate) struct Transport {
    /// TLS verified against the system roots and the configured CA files.
    pub verified: reqwest::Client,
    /// TLS not verified, for registries marked insecure.
    pub unverified: reqwest::Client,
    /// Scheme found for each insecure host, `https` or `http`.
    schemes: Mutex<HashMap<String, &'static str>>,
}

impl Transport {
    /// Builds both clients: no automatic redirects (the client follows them itself, to keep
    /// credentials on the registry's host), connect and read time-outs.
    pub fn new(config: &ClientConfig) -> Result<Self, RegistryError> {
        let roots =
            ca_roots(&config.ca_files).map_err(|message| RegistryError::Config { message })?;
        let build = |insecure: bool| {
            let mut builder = reqwest::Client::builder()
                .user_agent(config.user_agent.clone())
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .danger_accept_invalid_certs(insecure);
            for root in &roots {
                builder = builder.add_root_certificate(root.clone());
            }
            builder.build().map_err(|e| RegistryError::Config {
                message: format!("cannot set up HTTP client: {}", oci::error_chain(&e)),
            })
        };
        Ok(Transport {
            verified: build(false)?,
            unverified: build(true)?,
            schemes: Mutex::new(HashMap::new()),
        })
    }

    /// The client for an endpoint.
    pub fn client(&self, insecure: bool) -> &reqwest::Client {
        if insecure {
            &self.unverified
        } else {
            &self.verified
        }
    }

    /// `https://host` for verified endpoints. For insecure ones, `https://host` if the host
    /// answers TLS (unverified), else `http://host`; found once with a `GET /v2/` probe.
    pub async fn base_url(&self, endpoint: &Endpoint) -> String {
        if !endpoint.insecure {
            return format!("https://{}", endpoint.host);
        }
        let known = self
            .schemes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&endpoint.host)
            .copied();
        if let Some(scheme) = known {
            return format!("{scheme}://{}", endpoint.host);
        }
        let probe = |scheme: &str| {
            self.unverified
                .get(format!("{scheme}://{}/v2/", endpoint.host))
                .timeout(PROBE_TIMEOUT)
                .send()
        };
        let scheme = if probe("https").await.is_ok() {
            Some("https")
        } else if probe("http").await.is_ok() {
            Some("http")
        } else {
            // Unreachable for now: try plain HTTP, and probe again next time.
            None
        };
        if let Some(scheme) = scheme {
            self.schemes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(endpoint.host.clone(), scheme);
        }
        format!("{}://{}", scheme.unwrap_or("http"), endpoint.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(insecure: bool, mirror: Option<&str>) -> RegistrySettings {
        RegistrySettings {
            insecure,
            mirror: mirror.map(str::to_string),
        }
    }

    #[test]
    fn endpoints_follow_settings() {
        let mut registries = BTreeMap::new();
        let hub = Reference::parse("haproxy:3.2").unwrap();
        let local = Reference::parse("localhost:5000/app:1").unwrap();
        let e = endpoint(&registries, &hub);
        assert_eq!(
            (e.host.as_str(), e.insecure, e.label.as_str()),
            ("registry-1.docker.io", false, "docker.io")
        );
        assert!(
            !endpoint(&registries, &local).insecure,
            "no silent downgrade"
        );

        registries.insert("localhost:5000".into(), settings(true, None));
        registries.insert("docker.io".into(), settings(false, Some("mirror.lan:5000")));
        assert!(endpoint(&registries, &local).insecure);
        let e = endpoint(&registries, &hub);
        assert_eq!(e.host, "mirror.lan:5000");
        assert!(!e.insecure);
        assert_eq!(e.label, "docker.io (mirror mirror.lan:5000)");
        registries.insert("mirror.lan:5000".into(), settings(true, None));
        assert!(endpoint(&registries, &hub).insecure);
        assert!(host_is_insecure(&registries, "mirror.lan:5000"));
        assert!(!host_is_insecure(&registries, "registry-1.docker.io"));
    }

    #[test]
    fn a_mirror_path_prefix_goes_before_every_repository() {
        let mut registries = BTreeMap::new();
        registries.insert(
            "docker.io".into(),
            settings(false, Some("harbor.corp/dockerhub-proxy")),
        );
        let hub = Reference::parse("haproxy:3.2").unwrap();
        let e = endpoint(&registries, &hub);
        assert_eq!(e.host, "harbor.corp");
        assert_eq!(e.prefix.as_deref(), Some("dockerhub-proxy"));
        assert_eq!(
            e.repository(&hub.repository),
            "dockerhub-proxy/library/haproxy"
        );
        assert_eq!(e.label, "docker.io (mirror harbor.corp/dockerhub-proxy)");
        assert!(!e.insecure);
        // Settings of the mirror's host apply to it, whatever its prefix.
        registries.insert("harbor.corp".into(), settings(true, None));
        assert!(endpoint(&registries, &hub).insecure);
        registries.remove("harbor.corp");
        registries.insert(
            "docker.io".into(),
            settings(true, Some("harbor.corp/dockerhub-proxy")),
        );
        assert!(host_is_insecure(&registries, "harbor.corp"));
    }
}
