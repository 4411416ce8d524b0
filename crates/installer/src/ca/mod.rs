//! The site CA as the cluster and its nodes need it: the cert-manager `ClusterIssuer` and the
//! Secret it reads ([`issuer`]), and the containerd `hosts.toml` that makes a node trust the
//! registry's certificate ([`containerd`]). The CA itself is made by `online::ca`.

pub mod containerd;
pub mod issuer;

pub use containerd::{containerd_hosts_toml, hosts_toml};
pub use issuer::{cluster_issuer, tls_secret, CERT_MANAGER_NAMESPACE};
