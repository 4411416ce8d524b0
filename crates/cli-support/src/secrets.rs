//! Passphrases for secret keys: from `--passphrase-file`, from `BUNDLE_KEY_PASSPHRASE`, or
//! typed at a prompt; never from the command line.

use anyhow::{bail, Context, Result};
use bundle_file::sign::SecretKey;
use std::io::IsTerminal;
use std::path::Path;

/// Environment variable holding a key passphrase.
pub const PASSPHRASE_ENV: &str = "BUNDLE_KEY_PASSPHRASE";

/// Where a passphrase comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct PassphraseArgs {
    /// Read the key passphrase from the first line of this file (else from the
    /// BUNDLE_KEY_PASSPHRASE environment variable, else a prompt).
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<std::path::PathBuf>,
}

impl PassphraseArgs {
    /// The passphrase; `confirm` asks twice at a prompt (for a new key).
    pub fn read(&self, confirm: bool) -> Result<String> {
        if let Some(path) = &self.passphrase_file {
            return from_file(path);
        }
        if let Ok(value) = std::env::var(PASSPHRASE_ENV) {
            if value.is_empty() {
                bail!("{PASSPHRASE_ENV} is set but empty");
            }
            return Ok(value);
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "no passphrase: give --passphrase-file FILE or set {PASSPHRASE_ENV} \
                 (there is no terminal to prompt on)"
            );
        }
        let first = rpassword::prompt_password("Key passphrase: ").context("reading passphrase")?;
        if first.is_empty() {
            bail!("an empty passphrase is not allowed");
        }
        if confirm {
            let second =
                rpassword::prompt_password("Repeat passphrase: ").context("reading passphrase")?;
            if first != second {
                bail!("the two passphrases differ");
            }
        }
        Ok(first)
    }
}

/// The signing options of commands that can sign what they write.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Sign with this secret key (NAME.key from `bundle keygen`).
    #[arg(long, value_name = "NAME.key")]
    pub sign_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
}

impl SigningArgs {
    /// The decrypted key, if one was given.
    pub fn load(&self) -> Result<Option<SecretKey>> {
        self.sign_key
            .as_deref()
            .map(|path| load_secret_key(path, &self.passphrase))
            .transpose()
    }
}

/// Reads and decrypts a secret key file, asking for its passphrase as `passphrase` says.
pub fn load_secret_key(path: &Path, passphrase: &PassphraseArgs) -> Result<SecretKey> {
    let pass = passphrase.read(false)?;
    SecretKey::from_encrypted_file(path, &pass)
        .with_context(|| format!("opening secret key {}", path.display()))
}

fn from_file(path: &Path) -> Result<String> {
    let text = oci::files::read_capped_to_string(path, oci::files::KEY_FILE_LIMIT)
        .with_context(|| format!("reading passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(line.to_string())
}
