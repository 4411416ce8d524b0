//! The site's secret values where they live, the `<release>-generated` Secret: exported to
//! an age-encrypted backup, and restored from one into a cluster that has none (a site rebuilt
//! from scratch), before the deploy's secrets step derives every other Secret from them.

use online::ca::{Identity, KeyProtection};

use super::backup::{self, Origin};
use super::objects::{self, Parts};
use super::{SecretsError, SiteSecrets};
use crate::kube::{Cluster, KubeError, ObjectRef};

/// Why secrets cannot be exported or imported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The values are malformed, or the backup cannot be written or read.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The cluster did not answer.
    #[error(transparent)]
    Cluster(#[from] KubeError),
    /// There is nothing to export.
    #[error("{0} does not exist: nothing to export (has the deploy's secrets step run?)")]
    Missing(ObjectRef),
    /// The Secret holds some values but not all.
    #[error("{object} lacks {keys}: run the deploy's secrets step first")]
    Incomplete {
        /// The Secret.
        object: ObjectRef,
        /// The keys missing.
        keys: String,
    },
    /// An import would replace other values.
    #[error(
        "{0} already exists with other values: importing would replace the site's signing key \
         and passwords; delete it first if that is what you want"
    )]
    Differs(ObjectRef),
}

/// The Secret that holds the values of `origin`'s release.
fn generated(origin: &Origin) -> ObjectRef {
    ObjectRef {
        kind: "Secret".into(),
        namespace: Some(origin.namespace.clone()),
        name: objects::generated_name(&origin.release),
    }
}

/// The values the cluster holds for `origin`, `None` if it holds none.
fn read(cluster: &dyn Cluster, object: &ObjectRef) -> Result<Option<SiteSecrets>, StoreError> {
    let Some(secret) = cluster.get(object)? else {
        return Ok(None);
    };
    let values = objects::values_of(&secret, &format!("in {object}"))?;
    let (secrets, missing) = SiteSecrets::complete(values, &format!("in {object}"))?;
    if !missing.is_empty() {
        return Err(StoreError::Incomplete {
            object: object.clone(),
            keys: missing.join(", "),
        });
    }
    Ok(Some(secrets))
}

/// The age-encrypted backup of the values of `origin`'s release.
pub fn export(
    cluster: &dyn Cluster,
    origin: &Origin,
    protection: &KeyProtection,
) -> Result<Vec<u8>, StoreError> {
    let object = generated(origin);
    let secrets = read(cluster, &object)?.ok_or(StoreError::Missing(object))?;
    Ok(backup::export(&secrets, origin, protection)?)
}

/// Restores a backup: applies its `<release>-generated` Secret, unless the cluster holds
/// other values already (the same values are not an error). Returns whose values they are.
pub fn import(
    cluster: &dyn Cluster,
    sealed: &[u8],
    identity: &Identity,
) -> Result<Origin, StoreError> {
    let (secrets, origin) = backup::import(sealed, identity)?;
    let object = generated(&origin);
    if let Some(existing) = read(cluster, &object)? {
        if existing != secrets {
            return Err(StoreError::Differs(object));
        }
        return Ok(origin);
    }
    let all = objects::secrets(
        &origin.release,
        &origin.namespace,
        &secrets,
        &Parts::default(),
    );
    let name = object.name.as_str();
    if let Some(secret) = all.iter().find(|s| s["metadata"]["name"] == name) {
        cluster.apply(&secret.to_string())?;
    }
    Ok(origin)
}
