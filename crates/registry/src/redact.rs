//! Credentials never leave the client in a message: `Basic <base64>` and `Bearer <token>`
//! (any case), and the values of JSON `token`, `access_token`, `refresh_token`, `password`
//! and `auth` fields, are replaced by `<redacted>` in every text relayed from a registry (a
//! registry may echo the request's `Authorization` header) and in every line the binaries
//! print.

/// `text` with every credential in it replaced by `<redacted>`.
pub fn redact_credentials(text: &str) -> String {
    let mut out = redact_schemes(text);
    for field in ["access_token", "refresh_token", "token", "password", "auth"] {
        out = redact_json_field(&out, field);
    }
    out
}

/// Characters a Basic or Bearer credential is made of (base64, base64url, JWT, token68).
fn credential_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.' | '~')
}

/// Whether `rest` (what follows `Bearer `) starts a `WWW-Authenticate` challenge parameter
/// (`realm="..."`), which names where to log in, not a credential.
fn is_challenge_parameter(rest: &str) -> bool {
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    name_len > 0 && rest[name_len..].starts_with("=\"")
}

/// Replaces what follows `Basic ` or `Bearer ` (any case).
fn redact_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let next = ["basic ", "bearer "]
            .iter()
            .filter_map(|scheme| lower[at..].find(scheme).map(|i| (at + i, scheme.len())))
            .min();
        let Some((start, len)) = next else {
            break;
        };
        let value = start + len;
        let token_len = if is_challenge_parameter(&text[value..]) {
            0
        } else {
            text[value..]
                .find(|c: char| !credential_char(c))
                .unwrap_or(text.len() - value)
        };
        out.push_str(&text[at..value]);
        if token_len > 0 {
            out.push_str("<redacted>");
        }
        at = value + token_len;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces the string value of every `"field": "..."` (JSON, any spacing).
fn redact_json_field(text: &str, field: &str) -> String {
    let key = format!("\"{field}\"");
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find(&key) {
        let after_key = at + found + key.len();
        let rest = &text[after_key..];
        let trimmed = rest.trim_start();
        let Some(value) = trimmed.strip_prefix(':').map(str::trim_start) else {
            out.push_str(&text[at..after_key]);
            at = after_key;
            continue;
        };
        let Some(body) = value.strip_prefix('"') else {
            out.push_str(&text[at..after_key]);
            at = after_key;
            continue;
        };
        let value_start = text.len() - body.len();
        let value_len = body.find('"').unwrap_or(body.len());
        out.push_str(&text[at..value_start]);
        out.push_str("<redacted>");
        at = value_start + value_len;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_and_bearer_credentials_and_token_fields_are_redacted() {
        assert_eq!(
            redact_credentials("denied: Authorization: Basic YWxpY2U6c2VjcmV0 for x"),
            "denied: Authorization: Basic <redacted> for x"
        );
        assert_eq!(
            redact_credentials("echo BEARER eyJhbGciOi.eyJzdWIi.c2ln, then bearer abc"),
            "echo BEARER <redacted>, then bearer <redacted>"
        );
        assert_eq!(
            redact_credentials(r#"{"token": "t0k3n", "access_token":"a.b", "n": 1}"#),
            r#"{"token": "<redacted>", "access_token":"<redacted>", "n": 1}"#
        );
        assert_eq!(
            redact_credentials("the basic idea"),
            "the basic <redacted>",
            "a word after 'basic' could be a credential: redacted rather than risked"
        );
        assert_eq!(redact_credentials("HTTP 503, busy"), "HTTP 503, busy");
        let challenge = r#"Bearer realm="https://auth.example/token",service="r""#;
        assert_eq!(redact_credentials(challenge), challenge);
        assert_eq!(redact_credentials("Basic "), "Basic ");
    }
}
