//! `bundle`: the release engineer's tool. Packs, signs, verifies and inspects air-gap bundles.

mod commands;

use bundle::cli::output::OutputArgs;
use bundle::cli::Output;
use clap::Parser;
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
    match commands::run(cli.command, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => ExitCode::from(out.failure(&error)),
    }
}
