//! `bundle`: the release engineer's tool. Locks, builds, packs, signs, verifies and inspects
//! air-gap bundles.

mod commands;

use clap::Parser;
use cli_support::{Output, OutputArgs};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bundle",
    version,
    about = "Build, sign and verify air-gap bundles"
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
