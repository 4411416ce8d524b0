//! `ca init`, the same command in `bundle` (on the build host) and `installer` (inside the
//! enclave): generate the site root CA or import the organisation's, and write a CA directory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use zeroize::Zeroizing;

use crate::secrets::PassphraseArgs;
use crate::Output;
use oci::files::{read_capped_to_string, INPUT_FILE_LIMIT, KEY_FILE_LIMIT};
use online::ca::{check_target, CaFiles, KeyProtection, RootCa, CA_KEY_FILE};

/// Arguments of `ca init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// Directory to write ca.crt and ca.key.age into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Common name of a generated CA.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "Messenger Site Root CA",
        conflicts_with = "import_cert"
    )]
    pub name: String,
    /// Organisation of a generated CA.
    #[arg(
        long,
        value_name = "ORG",
        default_value = "",
        conflicts_with = "import_cert"
    )]
    pub org: String,
    /// Validity of a generated CA, in days.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3650,
        conflicts_with = "import_cert"
    )]
    pub days: u32,
    /// Import the organisation's CA certificate (PEM) instead of generating a CA.
    #[arg(long, value_name = "PEM")]
    pub import_cert: Option<PathBuf>,
    /// The imported CA's private key (PKCS#8 PEM); left out with --no-key.
    #[arg(long, value_name = "PEM", requires = "import_cert")]
    pub import_key: Option<PathBuf>,
    /// Encrypt the key to this age recipient instead of a passphrase.
    #[arg(long, value_name = "age1...", conflicts_with_all = ["no_key", "passphrase_file"])]
    pub recipient: Option<String>,
    /// Store the certificate only (an imported CA whose key stays with its owner).
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_key: bool,
    #[command(flatten)]
    pub passphrase: PassphraseArgs,
    /// Replace a CA already in DIR.
    #[arg(long)]
    pub force: bool,
}

/// Runs `ca init`.
pub fn run_init(args: &InitArgs, out: Output) -> Result<ExitCode> {
    check_target(&args.out, args.force)?;
    let protection = if args.no_key {
        None
    } else if let Some(recipient) = &args.recipient {
        Some(KeyProtection::Recipient(recipient.clone()))
    } else {
        Some(KeyProtection::Passphrase(args.passphrase.read(true)?))
    };
    let files = match (&args.import_cert, &args.import_key) {
        (Some(cert), Some(key)) => {
            let cert_pem = read_capped_to_string(cert, INPUT_FILE_LIMIT)
                .with_context(|| format!("reading {}", cert.display()))?;
            let key_pem = Zeroizing::new(
                read_capped_to_string(key, KEY_FILE_LIMIT)
                    .with_context(|| format!("reading {}", key.display()))?,
            );
            let ca = RootCa::import(&cert_pem, &key_pem)
                .with_context(|| format!("importing {} and {}", cert.display(), key.display()))?;
            out.warn(format!(
                "{} is still in clear: remove it once the CA directory is safe",
                key.display()
            ));
            files_of(&ca, protection.as_ref())?
        }
        (Some(cert), None) => {
            if !args.no_key {
                bail!(
                    "--import-cert needs --import-key (or --no-key to keep the certificate only)"
                );
            }
            let cert_pem = read_capped_to_string(cert, INPUT_FILE_LIMIT)
                .with_context(|| format!("reading {}", cert.display()))?;
            CaFiles::new(cert_pem, None, &cert.display().to_string())?
        }
        (None, _) => {
            if args.no_key {
                bail!(
                    "--no-key would throw a generated CA's key away: protect it with a \
                     passphrase or --recipient, or import a certificate"
                );
            }
            let ca = RootCa::generate(&args.name, &args.org, args.days)?;
            files_of(&ca, protection.as_ref())?
        }
    };
    let written = files.write_dir(&args.out, args.force)?;
    let info = files.info()?;
    let key = match &protection {
        None => "none (left out)".to_string(),
        Some(KeyProtection::Passphrase(_)) => {
            format!("{CA_KEY_FILE} (age, passphrase)")
        }
        Some(KeyProtection::Recipient(r)) => format!("{CA_KEY_FILE} (age, to {r})"),
    };
    out.result(
        format!(
            "CA {}\n  expires: {}\n  SHA-256: {}\n  key: {key}\n  wrote: {}\n",
            info.subject,
            info.not_after,
            info.sha256,
            written
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &serde_json::json!({
            "ok": true,
            "certificate": info,
            "key": key,
            "files": written,
        }),
    );
    Ok(ExitCode::SUCCESS)
}

fn files_of(ca: &RootCa, protection: Option<&KeyProtection>) -> Result<CaFiles> {
    let key = protection.map(|p| ca.encrypted_key(p)).transpose()?;
    Ok(CaFiles::from_ca(ca, key)?)
}
