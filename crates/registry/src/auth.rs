//! Registry authentication state: `WWW-Authenticate` challenges, bearer tokens cached per
//! (registry, repository, scope) until they expire, and which hosts want Basic auth so it can
//! be sent up front.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::credentials::Auth;

/// How long a token is trusted when the token service does not say (the spec's minimum).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Tokens are dropped this long before they expire, so a request does not race the expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// One authentication challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Get a token from `realm`, passing `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send username and password with every request.
    Basic,
}

/// Parses every challenge in one `WWW-Authenticate` header value, such as
/// `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`.
/// Unknown schemes are skipped.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut challenges = Vec::new();
    let mut current: Option<(String, Vec<(String, String)>)> = None;
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            break;
        }
        let token_end = rest
            .find(|c: char| c == '=' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        let token = &rest[..token_end];
        let after = rest[token_end..].trim_start_matches([' ', '\t']);
        if let Some(value_text) = after.strip_prefix('=') {
            // An auth-param of the current challenge.
            let value_text = value_text.trim_start_matches([' ', '\t']);
            let (value, remaining) = if let Some(quoted) = value_text.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        _ => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = value_text.find(',').unwrap_or(value_text.len());
                (value_text[..end].trim().to_string(), &value_text[end..])
            };
            if let Some((_, params)) = current.as_mut() {
                params.push((token.to_ascii_lowercase(), value));
            }
            rest = remaining;
        } else {
            // A new scheme.
            if let Some(done) = current.take() {
                challenges.extend(finish(done));
            }
            current = Some((token.to_ascii_lowercase(), Vec::new()));
            rest = after;
        }
    }
    if let Some(done) = current.take() {
        challenges.extend(finish(done));
    }
    challenges
}

fn finish((scheme, params): (String, Vec<(String, String)>)) -> Option<Challenge> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match scheme.as_str() {
        "bearer" => Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        }),
        "basic" => Some(Challenge::Basic),
        _ => None,
    }
}

/// What a token service answers.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token (`token`, or the OAuth2 `access_token`) and how long to keep it.
    pub fn into_token(self) -> Option<(String, Duration)> {
        let lifetime = self
            .expires_in
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let token = self
            .token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))?;
        Some((token, lifetime))
    }
}

/// `Basic <base64(user:secret)>`.
pub(crate) fn basic_header(auth: &Auth) -> String {
    let raw = format!("{}:{}", auth.username, auth.secret);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Registry host, repository and scope.
type TokenKey = (String, String, String);

/// Tokens and per-host auth schemes learned so far, shared by every clone of a client.
#[derive(Debug, Default)]
pub(crate) struct AuthCache {
    tokens: Mutex<HashMap<TokenKey, (String, Instant)>>,
    basic_hosts: Mutex<HashSet<String>>,
}

impl AuthCache {
    /// A cached, unexpired token for `host`, `repository` and `scope`.
    pub fn token(&self, host: &str, repository: &str, scope: &str) -> Option<String> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        let key = (host.to_string(), repository.to_string(), scope.to_string());
        match tokens.get(&key) {
            Some((token, until)) if Instant::now() < *until => Some(token.clone()),
            Some(_) => {
                tokens.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers a token for `lifetime` (less a safety margin).
    pub fn store_token(
        &self,
        host: &str,
        repository: &str,
        scope: &str,
        token: String,
        lifetime: Duration,
    ) {
        let keep = lifetime.checked_sub(EXPIRY_MARGIN).unwrap_or(lifetime / 2);
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.insert(
            (host.to_string(), repository.to_string(), scope.to_string()),
            (token, Instant::now() + keep),
        );
    }

    /// Forgets a token the registry no longer accepts.
    pub fn drop_token(&self, host: &str, repository: &str, scope: &str) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.remove(&(host.to_string(), repository.to_string(), scope.to_string()));
    }

    /// Whether `host` asked for Basic auth before.
    pub fn wants_basic(&self, host: &str) -> bool {
        let hosts = self.basic_hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.contains(host)
    }

    /// Records that `host` asks for Basic auth.
    pub fn set_basic(&self, host: &str) {
        let mut hosts = self.basic_hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.insert(host.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull",error="invalid_token""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/ubuntu:pull".into()),
            }]
        );
    }

    #[test]
    fn basic_unquoted_escaped_and_several() {
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let c = parse_challenges(
            r#"Basic realm=x, Bearer realm = "http://a/t\"x" , service=svc,Negotiate"#,
        );
        assert_eq!(
            c,
            vec![
                Challenge::Basic,
                Challenge::Bearer {
                    realm: "http://a/t\"x".into(),
                    service: Some("svc".into()),
                    scope: None
                }
            ]
        );
        assert_eq!(parse_challenges("Bearer service=x"), vec![]);
        assert_eq!(parse_challenges(""), vec![]);
    }

    #[test]
    fn token_fields_and_cache_expiry() {
        let t: TokenResponse =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        assert_eq!(t.into_token(), Some(("a".into(), Duration::from_secs(300))));
        let t: TokenResponse = serde_json::from_str(r#"{"token":"t","access_token":"a"}"#).unwrap();
        assert_eq!(t.into_token(), Some(("t".into(), DEFAULT_TOKEN_LIFETIME)));
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert_eq!(t.into_token(), None);

        let cache = AuthCache::default();
        cache.store_token("h", "r", "s", "tok".into(), Duration::from_secs(60));
        assert_eq!(cache.token("h", "r", "s").as_deref(), Some("tok"));
        assert_eq!(cache.token("h", "other", "s"), None);
        cache.store_token("h", "r2", "s", "short".into(), Duration::from_millis(2));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.token("h", "r2", "s"), None);
        cache.drop_token("h", "r", "s");
        assert_eq!(cache.token("h", "r", "s"), None);
    }

    #[test]
    fn basic_header_encodes() {
        let auth = Auth {
            username: "user".into(),
            secret: "pass".into(),
        };
        assert_eq!(basic_header(&auth), "Basic dXNlcjpwYXNz");
    }
}
