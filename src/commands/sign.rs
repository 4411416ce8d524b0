//! `bundle sign`: countersign an existing bundle.

use anyhow::{Context, Result};
use bundle_file::archive::parallel::default_threads;
use bundle_file::signing::add_signature;
use cli_support::secrets::{load_secret_key, PassphraseArgs};
use cli_support::Output;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The bundle file; it is replaced atomically by the signed one.
    bundle: PathBuf,
    /// The secret key to sign with.
    #[arg(long, value_name = "NAME.key")]
    key: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

pub fn run(args: &SignArgs, out: Output) -> Result<ExitCode> {
    let key = load_secret_key(&args.key, &args.passphrase)?;
    let progress = out.progress();
    let member = add_signature(&args.bundle, &key, default_threads(), progress.as_ref())
        .with_context(|| format!("signing {}", args.bundle.display()))?;
    out.result(
        format!(
            "signed {} with key {} ({member})\n",
            args.bundle.display(),
            key.id()
        ),
        &serde_json::json!({ "ok": true, "key_id": key.id().to_string(), "member": member }),
    );
    Ok(ExitCode::SUCCESS)
}
