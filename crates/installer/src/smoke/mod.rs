//! The post-deploy smoke test: a small Matrix client ([`MatrixClient`]) and the sequence of
//! steps field engineers run against a fresh homeserver (`installer smoke`).

mod client;
mod error;
mod receive;
mod registration;
mod report;
mod run;
mod secret;
mod sync;

pub use client::MatrixClient;
pub use error::MatrixError;
pub use receive::await_messages;
pub use registration::registration_mac;
pub use report::{Report, StepResult};
pub use run::{run_smoke, SmokeOptions};
pub use secret::{registration_secret, SecretError};
pub use sync::{Message, SyncBatch};
