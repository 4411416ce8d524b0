//! The offline side: what `installer` does inside the enclave with a verified bundle.
//!
//! - [`load`]: push the bundle's images and charts into the site registry.
//! - [`pin`]: rewrite rendered releases to the bundle's digests in the site registry.
//! - [`deploy`]: plan a site's deploy from the bundle and its site file; dry runs.
//! - [`secrets`]: the stack's secrets, generated inside the enclave, backed up encrypted.
//! - [`serve`]: answer pulls straight from the bundle file, before any registry runs.
//! - [`layout`]: the bundle's OCI layout as both of them read it.
//! - [`tools`]: write out the helm and kubectl the bundle carries.
//! - [`ca`]: the site CA as cert-manager and the nodes need it.
//! - [`node_config`]: containerd mirrors and sandbox image for every node.
//! - [`kube`]: the one module that talks to the Kubernetes API.
//! - [`smoke`]: the post-deploy check of a homeserver, as a Matrix client.
//! - [`antivirus`]: signature updates: roll clamd to a new database image, start the rescan.
//!
//! The scale-profile capacity check lives in the `capacity` crate, which the build also uses.

pub mod antivirus;
pub mod ca;
pub mod deploy;
pub mod kube;
pub mod layout;
pub mod load;
pub mod node_config;
pub mod pin;
pub mod secrets;
pub mod serve;
pub mod site_files;
pub mod smoke;
pub mod tools;
