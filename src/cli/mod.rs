//! The command-line front end both binaries share: output modes, progress bars, passphrases,
//! trust options and the `verify` command. This is the only part of the library that prints.

pub mod output;
pub mod progress;
pub mod secrets;
pub mod trust_args;
pub mod verify_cmd;

pub use output::Output;
