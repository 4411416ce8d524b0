//! `bundle keygen`: a new signing key pair.

use anyhow::{bail, Context, Result};
use bundle_file::sign::{KdfParams, SecretKey};
use cli_support::secrets::PassphraseArgs;
use cli_support::Output;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Base name of the key files: writes NAME.pub and NAME.key.
    #[arg(short, long, value_name = "NAME")]
    output: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &KeygenArgs, out: Output) -> Result<ExitCode> {
    let public = with_suffix(&args.output, ".pub");
    let secret = with_suffix(&args.output, ".key");
    for path in [&public, &secret] {
        if path.exists() && !args.force {
            bail!("{} exists (use --force to replace it)", path.display());
        }
    }
    let passphrase = args.passphrase.read(true)?;
    let key = SecretKey::generate();
    let encrypted = key
        .to_encrypted_file_string(&passphrase, KdfParams::MINISIGN_DEFAULT)
        .context("encrypting the secret key")?;
    write_new(&secret, encrypted.as_bytes(), 0o600)?;
    write_new(&public, key.public_key().to_file_string().as_bytes(), 0o644)?;
    out.result(
        format!(
            "key {}\n  public: {}\n  secret: {} (encrypted)\n",
            key.id(),
            public.display(),
            secret.display()
        ),
        &serde_json::json!({
            "ok": true,
            "key_id": key.id().to_string(),
            "public_key": public,
            "secret_key": secret,
        }),
    );
    Ok(ExitCode::SUCCESS)
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
