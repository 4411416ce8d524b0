//! The `installer` subcommands, one module each: each parses its arguments, calls the library
//! and prints through [`Output`], returning the exit status.

mod antivirus;
mod ca;
mod capacity;
mod deploy;
mod deploy_outside;
mod files;
mod kube_args;
mod load;
mod node_config;
mod post_render;
mod registry_args;
mod serve;
mod site_state;
mod smoke;
mod tools;

use anyhow::Result;
use cli_support::verify_cmd::{self, VerifyArgs};
use cli_support::Output;
use std::process::ExitCode;

/// Every subcommand of `installer`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a bundle's signatures and every member against bundle.json.
    Verify(VerifyArgs),
    /// Verify a bundle, then push its images and charts into a registry.
    Load(load::Args),
    /// Deploy the stack from a bundle and a site file, step by step, resuming where a
    /// previous run stopped; or (--dry-run DIR) write the plan and every final manifest.
    Deploy(deploy::Args),
    /// Move a deployed site to a new bundle (refuses Synapse and PostgreSQL downgrades).
    Upgrade(deploy::Args),
    /// Show each deploy step, release revision, pinned image and workload health.
    Status(site_state::StatusArgs),
    /// Return every release to its revision before the last deploy, keeping data and Secrets.
    Rollback(site_state::RollbackArgs),
    /// Export the site's secret values to an age-encrypted file, or import them.
    Secrets(site_state::SecretsArgs),
    /// Write the containerd files every node needs: registry mirrors for the bundle's
    /// upstream registries, the site registry's CA, the pinned sandbox image.
    NodeConfig(node_config::Args),
    /// Helm post-renderer: pin every image of rendered manifests (stdin) to the bundle's
    /// digest in the site registry (stdout); refuse images the bundle does not carry.
    PostRender(post_render::Args),
    /// Verify a bundle, then serve it as a read-only OCI registry.
    Serve(serve::Args),
    /// The site root CA: make it, give it to cert-manager, export it for nodes and phones.
    Ca(ca::Args),
    /// Check a deployed homeserver end to end: users, a room, messages, media.
    Smoke(smoke::Args),
    /// Check that a profile fits the site: PostgreSQL connections, node CPU and memory.
    Capacity(capacity::Args),
    /// Write the helm and kubectl binaries the bundle carries for this machine.
    Tools(tools::Args),
    /// Write the files the site needs besides images (files.toml) out of the bundle.
    Files(files::Args),
    /// Roll clamd to a new signature-database image (from an update bundle) and start the
    /// rescan Job for media uploaded since the previous signatures.
    AntivirusUpdate(antivirus::Args),
}

/// Runs one subcommand.
pub fn run(command: Command, out: Output) -> Result<ExitCode> {
    match command {
        Command::Verify(args) => verify_cmd::run(&args, out),
        Command::Load(args) => load::run(&args, out),
        Command::Deploy(args) => deploy::run(&args, out),
        Command::Upgrade(args) => deploy::run_upgrade(&args, out),
        Command::Status(args) => site_state::run_status(&args, out),
        Command::Rollback(args) => site_state::run_rollback(&args, out),
        Command::Secrets(args) => site_state::run_secrets(&args, out),
        Command::NodeConfig(args) => node_config::run(&args, out),
        Command::PostRender(args) => post_render::run(&args, out),
        Command::Serve(args) => serve::run(&args, out),
        Command::Ca(args) => ca::run(&args, out),
        Command::Smoke(args) => smoke::run(&args, out),
        Command::Capacity(args) => capacity::run(&args, out),
        Command::Tools(args) => tools::run(&args, out),
        Command::Files(args) => files::run(&args, out),
        Command::AntivirusUpdate(args) => antivirus::run(&args, out),
    }
}
