//! The OCI distribution client: [`Client`] pulls manifests, indexes and blobs from OCI registries over reqwest: bearer and
//! Basic authentication with logins from docker's `config.json`, credential helpers and
//! containers' `auth.json` ([`Credentials`]), retries with backoff honouring `Retry-After`,
//! plain HTTP only for registries marked insecure, extra CA files, and registry mirrors.

mod auth;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod push;
mod redact;
mod request;
mod retry;
mod transport;

pub use transport::ca_roots;

pub use client::{Client, FetchedManifest};
pub use config::{ClientConfig, RegistrySettings};
pub use credentials::{Auth, Credentials};
pub use error::RegistryError;
pub use push::{BlobOutcome, BlobSource, CHUNK_SIZE};
pub use redact::redact_credentials;
pub use retry::{Retry, RetryObserver};
