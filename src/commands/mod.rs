//! The `bundle` subcommands, one module each: each parses its arguments, calls the library
//! and prints through [`Output`], returning the exit status.

mod build;
mod ca;
mod diff;
mod events;
mod extract;
mod find_images;
mod images_args;
mod inspect;
mod keygen;
mod lock;
mod pack;
mod sign;
mod split;

use cli_support::verify_cmd::{self, VerifyArgs};
use cli_support::Output;
use std::process::ExitCode;

/// Every subcommand of `bundle`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Create an Ed25519 signing key pair (NAME.pub in minisign format, NAME.key encrypted).
    Keygen(keygen::KeygenArgs),
    /// Resolve images.toml to digests and write manifests.lock.
    Lock(lock::LockArgs),
    /// Fetch every locked image and pack (and sign) the bundle.
    Build(Box<build::BuildArgs>),
    /// Pack a staged directory into a bundle.
    Pack(pack::PackArgs),
    /// Add a signature to an existing bundle (countersign) without rebuilding it.
    Sign(sign::SignArgs),
    /// Check a bundle's signatures and every member against bundle.json.
    Verify(VerifyArgs),
    /// Split a bundle into volumes for removable media (B.001, B.002, ... and B.sha256).
    Split(split::SplitArgs),
    /// Show what is inside a bundle without extracting it.
    Inspect(inspect::InspectArgs),
    /// Show what changed between two bundles or locks (exit 0: nothing, 1: something, 2: error).
    Diff(diff::DiffArgs),
    /// Extract a bundle into a directory, writing each member only after its hash matched.
    Extract(extract::ExtractArgs),
    /// Render releases.toml with helm and list every image, checked against images.toml.
    FindImages(find_images::FindImagesArgs),
    /// The site's internal root CA: `ca init` generates or imports it.
    Ca(ca::CaArgs),
}

/// Runs one subcommand.
pub fn run(command: Command, out: Output) -> anyhow::Result<ExitCode> {
    match command {
        Command::Keygen(args) => keygen::run(&args, out),
        Command::Lock(args) => lock::run(&args, out),
        Command::Build(args) => build::run(&args, out),
        Command::Pack(args) => pack::run(&args, out),
        Command::Sign(args) => sign::run(&args, out),
        Command::Verify(args) => verify_cmd::run(&args, out),
        Command::Split(args) => split::run(&args, out),
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Diff(args) => diff::run(&args, out),
        Command::Extract(args) => extract::run(&args, out),
        Command::FindImages(args) => find_images::run(&args, out),
        Command::Ca(args) => ca::run(&args, out),
    }
}
