//! `bundle ca`: the site's internal root CA, made (or imported) on the build host.

use anyhow::Result;
use cli_support::ca_init::{run_init, InitArgs};
use cli_support::Output;
use std::process::ExitCode;

/// Arguments of `ca`.
#[derive(Debug, clap::Args)]
pub struct CaArgs {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CaCommand {
    /// Generate the site root CA (or import the organisation's) into a directory that
    /// `bundle build --ca DIR` carries: DIR/ca.crt and DIR/ca.key.age (age-encrypted).
    Init(InitArgs),
}

pub fn run(args: &CaArgs, out: Output) -> Result<ExitCode> {
    match &args.command {
        CaCommand::Init(init) => run_init(init, out),
    }
}
