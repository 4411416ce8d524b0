//! What every node's containerd needs to run the stack from the site registry: a
//! `certs.d/<upstream>/hosts.toml` per upstream registry of the bundle, sending pulls by the
//! original name (`docker.io/matrixdotorg/synapse:v1.142.0`, as operators start images on
//! their own) to the site registry and nowhere else; the site registry's own `hosts.toml` and
//! CA; and a configuration drop-in that turns `certs.d` on and sets the sandbox (pause) image
//! to the bundle's, pinned.

use std::path::PathBuf;

use crate::ca::containerd::quote;
use crate::ca::hosts_toml;
use crate::load::Target;
use crate::pin::{BundleImages, NotCarried};

/// Where nodes keep containerd's per-registry configuration, by default.
pub const CERTS_DIR: &str = "/etc/containerd/certs.d";

/// The configuration drop-in, relative to the output directory.
pub const DROP_IN: &str = "conf.d/messenger.toml";

/// The repository name of the sandbox image (`registry.k8s.io/pause`).
pub const SANDBOX_REPOSITORY: &str = "pause";

/// The files for every node, and what they set.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeConfig {
    /// Relative path (under the output directory) and content of each file.
    pub files: Vec<NodeFile>,
    /// The upstream registries sent to the site registry.
    pub mirrors: Vec<String>,
    /// The sandbox image, pinned, if the bundle carries one.
    pub sandbox_image: Option<String>,
}

/// One file to copy to every node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeFile {
    /// Where it goes under the output directory (`certs.d/docker.io/hosts.toml`).
    pub path: PathBuf,
    /// Its content.
    #[serde(skip)]
    pub text: String,
}

/// The node files for the bundle's `images` served by `target`. `ca_pem` is the certificate
/// the site registry's TLS chains to (none: the nodes' system trust); `certs_dir` is where the
/// nodes keep `certs.d` ([`CERTS_DIR`]).
pub fn node_config(
    images: &BundleImages,
    target: &Target,
    ca_pem: Option<&str>,
    certs_dir: &str,
) -> Result<NodeConfig, NotCarried> {
    let certs_dir = certs_dir.trim_end_matches('/');
    let site = &target.registry;
    let ca_path = ca_pem.map(|_| format!("{certs_dir}/{site}/ca.crt"));
    let (url, override_path) = match &target.prefix {
        Some(prefix) => (format!("https://{site}/v2/{prefix}"), true),
        None => (format!("https://{site}"), false),
    };
    let mut files = Vec::new();
    let mut mirrors = Vec::new();
    for upstream in images.registries() {
        if upstream == site {
            continue;
        }
        files.push(NodeFile {
            path: PathBuf::from("certs.d").join(upstream).join("hosts.toml"),
            text: format!(
                "# Pulls of {upstream}/... go to the site registry only.\n{}",
                hosts_toml(&url, override_path, ca_path.as_deref())
            ),
        });
        mirrors.push(upstream.to_string());
    }
    let site_dir = PathBuf::from("certs.d").join(site);
    files.push(NodeFile {
        path: site_dir.join("hosts.toml"),
        text: hosts_toml(&format!("https://{site}"), false, ca_path.as_deref()),
    });
    if let Some(pem) = ca_pem {
        files.push(NodeFile {
            path: site_dir.join("ca.crt"),
            text: pem.to_string(),
        });
    }
    let sandbox_image = match images.tagged(SANDBOX_REPOSITORY).last() {
        Some(pause) => Some(images.pin(pause, target)?),
        None => None,
    };
    files.push(NodeFile {
        path: PathBuf::from(DROP_IN),
        text: drop_in(certs_dir, sandbox_image.as_deref()),
    });
    Ok(NodeConfig {
        files,
        mirrors,
        sandbox_image,
    })
}

/// containerd's configuration (version 2, read by 1.6, 1.7 and, migrated, 2.x) that turns on
/// `certs.d` and sets the sandbox image.
fn drop_in(certs_dir: &str, sandbox_image: Option<&str>) -> String {
    let mut text = String::from(
        "# containerd settings for the messenger stack; the main config must import this file\n\
         # (`imports = [\"/etc/containerd/conf.d/*.toml\"]`) and set no registry mirrors of its own.\n\
         version = 2\n",
    );
    if let Some(image) = sandbox_image {
        text.push_str(&format!(
            "\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = {}\n",
            quote(image)
        ));
    }
    text.push_str(&format!(
        "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = {}\n",
        quote(certs_dir)
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci::{Digest, Reference};

    fn images() -> BundleImages {
        let mut images = BundleImages::default();
        for (name, n) in [
            ("docker.io/matrixdotorg/synapse:v1.164.2", 1u8),
            ("ghcr.io/cloudnative-pg/postgresql:17.6", 2),
            ("registry.k8s.io/pause:3.10", 3),
        ] {
            images.add(&Reference::parse(name).unwrap(), Digest::of(&[n]));
        }
        images
    }

    fn file(config: &NodeConfig, path: &str) -> toml::Table {
        let found = config
            .files
            .iter()
            .find(|f| f.path == std::path::Path::new(path))
            .unwrap_or_else(|| panic!("no {path}"));
        found.text.parse().unwrap()
    }

    #[test]
    fn every_upstream_registry_goes_to_the_site_registry_under_its_prefix() {
        let target = Target {
            registry: "registry.site:5000".into(),
            prefix: Some("mirror/matrix".into()),
        };
        let config = node_config(&images(), &target, Some("PEM"), CERTS_DIR).unwrap();
        assert_eq!(config.mirrors, ["docker.io", "ghcr.io", "registry.k8s.io"]);
        for upstream in &config.mirrors {
            let hosts = file(&config, &format!("certs.d/{upstream}/hosts.toml"));
            assert_eq!(
                hosts["server"].as_str(),
                Some("https://registry.site:5000/v2/mirror/matrix")
            );
            assert_eq!(hosts["override_path"].as_bool(), Some(true));
            assert_eq!(
                hosts["ca"].as_str(),
                Some("/etc/containerd/certs.d/registry.site:5000/ca.crt")
            );
        }
        let site = file(&config, "certs.d/registry.site:5000/hosts.toml");
        assert_eq!(site["server"].as_str(), Some("https://registry.site:5000"));
        assert!(site.get("override_path").is_none());
        let pause = format!(
            "registry.site:5000/mirror/matrix/pause@{}",
            Digest::of(&[3])
        );
        assert_eq!(config.sandbox_image.as_deref(), Some(pause.as_str()));
        let drop_in = file(&config, DROP_IN);
        let cri = &drop_in["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(cri["sandbox_image"].as_str(), Some(pause.as_str()));
        assert_eq!(
            cri["registry"]["config_path"].as_str(),
            Some("/etc/containerd/certs.d")
        );
        assert_eq!(drop_in["version"].as_integer(), Some(2));
    }

    #[test]
    fn without_prefix_ca_or_pause_the_files_say_less() {
        let mut images = BundleImages::default();
        images.add(
            &Reference::parse("quay.io/jetstack/cert-manager-controller:v1.21.1").unwrap(),
            Digest::of(&[9]),
        );
        let target = Target {
            registry: "10.0.0.5".into(),
            prefix: None,
        };
        let config = node_config(&images, &target, None, "/var/lib/certs.d/").unwrap();
        let hosts = file(&config, "certs.d/quay.io/hosts.toml");
        assert_eq!(hosts["server"].as_str(), Some("https://10.0.0.5"));
        assert!(hosts.get("ca").is_none() && hosts.get("override_path").is_none());
        assert!(config.sandbox_image.is_none());
        assert!(!config.files.iter().any(|f| f.path.ends_with("ca.crt")));
        let drop_in = file(&config, DROP_IN);
        let cri = &drop_in["plugins"]["io.containerd.grpc.v1.cri"];
        assert!(cri.get("sandbox_image").is_none());
        assert_eq!(
            cri["registry"]["config_path"].as_str(),
            Some("/var/lib/certs.d")
        );
    }
}
