//! `installer`: the field engineer's tool inside the enclave. Verifies a bundle before anything
//! else touches it.

mod ca;
mod capacity;
mod kube;
mod load;
mod serve;
mod tools;

use bundle::cli::output::OutputArgs;
use bundle::cli::verify_cmd::{self, VerifyArgs};
use bundle::cli::Output;
use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "installer",
    version,
    about = "Verify and install air-gap bundles"
)]
struct Cli {
    #[command(flatten)]
    output: OutputArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check a bundle's signatures and every member against bundle.json.
    Verify(VerifyArgs),
    /// Verify a bundle, then push its images and charts into a registry.
    Load(load::Args),
    /// Verify a bundle, then serve it as a read-only OCI registry.
    Serve(serve::Args),
    /// The site root CA: make it, give it to cert-manager, export it for nodes and phones.
    Ca(ca::Args),
    /// Check a deployed homeserver end to end: users, a room, messages, media.
    Smoke(smoke::cli::Args),
    /// Check that a profile fits the site: PostgreSQL connections, node CPU and memory.
    Capacity(capacity::Args),
    /// Write the helm and kubectl binaries the bundle carries for this machine.
    Tools(tools::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.output);
    let result = match cli.command {
        Command::Verify(args) => verify_cmd::run(&args, out),
        Command::Load(args) => load::run(&args, out),
        Command::Serve(args) => serve::run(&args, out),
        Command::Ca(args) => ca::run(&args, out),
        Command::Smoke(args) => return smoke::cli::main(&args, out),
        Command::Capacity(args) => return capacity::main(&args, out),
        Command::Tools(args) => tools::run(&args, out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(out.failure(&error)),
    }
}
