//! How the client reaches registries: per-registry settings (plain HTTP, mirrors), extra CA
//! files, credentials, the retry budget and the user agent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::credentials::Credentials;

/// Settings for one registry, keyed in [`ClientConfig::registries`] by its name as written in
/// references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Talk to it without verified TLS: TLS without certificate verification if the server
    /// speaks TLS, plain HTTP otherwise. Never assumed, not even for `localhost`.
    pub insecure: bool,
    /// `host[:port]` to fetch this registry's repositories from instead, with the same
    /// repository paths. The mirror's own entry in [`ClientConfig::registries`], if any,
    /// decides whether it is insecure; without one, this entry's `insecure` applies.
    pub mirror: Option<String>,
}

/// Everything [`super::Client::new`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Per-registry settings; registries not listed use verified HTTPS directly.
    pub registries: BTreeMap<String, RegistrySettings>,
    /// PEM files with extra CA certificates to trust, on top of the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// Where logins come from.
    pub credentials: Credentials,
    /// Attempts per request before giving up on transient failures (at least 1).
    pub max_attempts: u32,
    /// Attempts per request while the registry refuses connections or cannot be reached (at
    /// least 1): a registry that is down is given up on sooner than one that answers 503.
    pub max_connect_attempts: u32,
    /// First retry delay; it doubles with each further attempt, with jitter.
    pub base_backoff: Duration,
    /// Upper bound of any retry delay, `Retry-After` included.
    pub max_backoff: Duration,
    /// `User-Agent` header sent with every request.
    pub user_agent: String,
    /// Told about every retry before the client waits for it.
    pub retry_observer: Option<std::sync::Arc<dyn crate::RetryObserver>>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            registries: BTreeMap::new(),
            ca_files: Vec::new(),
            credentials: Credentials::default(),
            max_attempts: 5,
            max_connect_attempts: 3,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            user_agent: format!("bundle/{}", env!("CARGO_PKG_VERSION")),
            retry_observer: None,
        }
    }
}
