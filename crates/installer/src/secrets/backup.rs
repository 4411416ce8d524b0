//! `installer secrets export` / `import`: a site's secret values in one age-encrypted file
//! (to a passphrase or an age recipient), so a site rebuilt from scratch keeps its signing
//! key, database password and every other value.

use std::collections::BTreeMap;

use online::ca::{seal, unseal, Identity, KeyProtection};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{SecretsError, SiteSecrets};

/// The format name inside the encrypted file.
pub const FORMAT: &str = "messenger-secrets/v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Backup {
    format: String,
    release: String,
    namespace: String,
    values: BTreeMap<String, String>,
}

/// What a backup holds besides the values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The release the values belong to.
    pub release: String,
    /// Its namespace.
    pub namespace: String,
}

/// The values of `secrets` (of `origin`) as an age file.
pub fn export(
    secrets: &SiteSecrets,
    origin: &Origin,
    protection: &KeyProtection,
) -> Result<Vec<u8>, SecretsError> {
    let backup = Backup {
        format: FORMAT.to_string(),
        release: origin.release.clone(),
        namespace: origin.namespace.clone(),
        values: secrets
            .entries()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&backup).map_err(|e| SecretsError::Backup(e.to_string()))?,
    );
    drop(backup);
    seal(&plain, protection).map_err(|e| SecretsError::Backup(e.to_string()))
}

/// The values of an age file from [`export`], checked as the cluster's would be.
pub fn import(sealed: &[u8], identity: &Identity) -> Result<(SiteSecrets, Origin), SecretsError> {
    let plain = unseal(sealed, identity).map_err(|e| SecretsError::Backup(e.to_string()))?;
    let backup: Backup = serde_json::from_slice(&plain)
        .map_err(|e| SecretsError::Backup(format!("not a secrets backup: {e}")))?;
    if backup.format != FORMAT {
        return Err(SecretsError::Backup(format!(
            "format {:?}; this installer reads {FORMAT:?}",
            backup.format
        )));
    }
    let values = backup
        .values
        .into_iter()
        .map(|(k, v)| (k, Zeroizing::new(v)))
        .collect();
    let (secrets, missing) = SiteSecrets::complete(values, "in the backup")?;
    if !missing.is_empty() {
        return Err(SecretsError::Backup(format!(
            "the backup lacks {}",
            missing.join(", ")
        )));
    }
    Ok((
        secrets,
        Origin {
            release: backup.release,
            namespace: backup.namespace,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_round_trips_and_hides_its_values() {
        let (secrets, _) = SiteSecrets::complete(BTreeMap::new(), "test").unwrap();
        let origin = Origin {
            release: "messenger".into(),
            namespace: "matrix".into(),
        };
        let sealed = export(
            &secrets,
            &origin,
            &KeyProtection::Passphrase("correct horse".into()),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&sealed);
        assert!(text.starts_with("age-encryption.org/v1"));
        assert!(!text.contains(secrets.get("formSecret")));
        let (back, from) = import(&sealed, &Identity::Passphrase("correct horse".into())).unwrap();
        assert_eq!(back, secrets);
        assert_eq!(from, origin);
        let wrong = import(&sealed, &Identity::Passphrase("wrong".into()));
        assert!(wrong.is_err());
    }
}
