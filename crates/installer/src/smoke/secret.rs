//! Reading Synapse's registration shared secret from what field engineers have at hand: the
//! bare secret, or a Synapse configuration file (such as the chart's `secrets.yaml`).

/// Why no secret could be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the registration secret file is empty")]
    Empty,
    #[error("registration_shared_secret in the file is not a non-empty string")]
    NotAString,
}

/// The secret in `text`: the value of `registration_shared_secret` when `text` is a YAML
/// mapping, otherwise the whole text without surrounding whitespace.
pub fn registration_secret(text: &str) -> Result<String, SecretError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(SecretError::Empty);
    }
    match serde_norway::from_str::<serde_norway::Value>(text) {
        Ok(serde_norway::Value::Mapping(map)) => map
            .get("registration_shared_secret")
            .and_then(serde_norway::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or(SecretError::NotAString),
        _ => Ok(trimmed.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_secret_is_taken_whole() {
        assert_eq!(registration_secret("s3cr=t-x\n").unwrap(), "s3cr=t-x");
    }

    #[test]
    fn a_synapse_config_gives_its_registration_shared_secret() {
        let yaml = "macaroon_secret_key: \"m\"\nregistration_shared_secret: \"abc:def\"\n";
        assert_eq!(registration_secret(yaml).unwrap(), "abc:def");
    }

    #[test]
    fn a_config_without_the_key_or_an_empty_file_is_refused() {
        assert!(registration_secret("form_secret: x\n").is_err());
        assert!(registration_secret(" \n").is_err());
    }
}
