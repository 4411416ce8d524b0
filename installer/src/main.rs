//! `installer`: the field engineer's tool inside the enclave. Verifies a bundle before anything
//! else touches it.

mod commands;

use clap::Parser;
use cli_support::{Output, OutputArgs};
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
    command: commands::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.output);
    commands::run(cli.command, out).unwrap_or_else(|error| out.failure(&error))
}
