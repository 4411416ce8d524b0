//! The trust options of every command that reads a bundle: trusted keys and a threshold.

use anyhow::{bail, Context, Result};
use bundle_file::archive::ReadAt;
use bundle_file::sign::PublicKey;
use bundle_file::{Bundle, TrustPolicy};
use std::path::PathBuf;

/// Which signers a bundle must have.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// A trusted minisign public key file (repeat for several signers).
    #[arg(long = "key", value_name = "KEY.pub")]
    pub keys: Vec<PathBuf>,
    /// How many distinct trusted keys must have signed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threshold: usize,
}

impl TrustArgs {
    /// Loads the keys into a policy; fails when no key is given.
    pub fn policy(&self) -> Result<TrustPolicy> {
        if self.keys.is_empty() {
            bail!("no trusted key: give --key KEY.pub (repeat for several signers)");
        }
        let keys = self
            .keys
            .iter()
            .map(|path| PublicKey::from_file(path).with_context(|| path.display().to_string()))
            .collect::<Result<Vec<_>>>()?;
        Ok(TrustPolicy::new(keys, self.threshold)?)
    }

    /// Checks `bundle`'s bundle.json against its signatures with these keys (`name` names the
    /// bundle in errors). Members are not read: a caller that reads one checks it against
    /// bundle.json itself.
    pub fn check_signatures<S: ReadAt>(&self, bundle: &Bundle<S>, name: &str) -> Result<()> {
        let policy = self.policy()?;
        let signatures = bundle
            .signatures()
            .map_err(|p| anyhow::anyhow!("{name}: cannot read signatures: {p}"))?;
        let found: Vec<_> = signatures.iter().map(|(_, s)| s.clone()).collect();
        policy
            .check(bundle.toc_bytes(), &found)
            .with_context(|| format!("{name} failed verification"))?;
        Ok(())
    }
}
