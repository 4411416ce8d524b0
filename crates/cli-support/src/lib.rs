//! What the `bundle` and `installer` front ends share: how a command talks to its user
//! ([`Output`]: text, one JSON document, JSON Lines events, or quiet), the progress bar, key
//! passphrases, trust arguments, and the two commands both binaries have (`verify` and
//! `ca init`).
//!
//! This crate and the binaries are the only code that knows clap, indicatif, rpassword and
//! anyhow; [`Output`] is the only code that prints.

pub mod ca_init;
pub mod output;
pub mod progress;
pub mod retries;
pub mod secrets;
pub mod trust_args;
pub mod verify_cmd;

pub use output::{Output, OutputArgs};
