//! The options that name the site registry images are loaded into and pulled from.

use anyhow::{bail, Result};
use installer::load::Target;

/// The site registry and the repository prefix of the bundle's images in it.
#[derive(Debug, Clone, clap::Args)]
pub struct SiteRegistryArgs {
    /// The site registry, HOST[:PORT].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub registry: String,
    /// Repository path put before every image's repository (e.g. mirror/matrix).
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
}

impl SiteRegistryArgs {
    /// The registry and prefix, checked: a bare `HOST[:PORT]`, a prefix without slashes at
    /// either end.
    pub fn target(&self) -> Result<Target> {
        let registry = self.registry.trim_end_matches('/').to_string();
        if registry.is_empty() || registry.contains(['/', ' ']) || registry.contains("://") {
            bail!(
                "--registry must be HOST or HOST:PORT, not {:?}",
                self.registry
            );
        }
        let prefix = self
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/').to_string())
            .filter(|p| !p.is_empty());
        Ok(Target { registry, prefix })
    }
}
