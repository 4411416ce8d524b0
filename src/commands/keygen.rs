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
    /// scrypt memory protecting the secret key's passphrase, in MiB: a power of two from 16
    /// to 1024. 1024 is what minisign itself uses (a few seconds per signature); a lower
    /// value signs faster (CI keys) and resists passphrase guessing less. The file stays a
    /// minisign key: it records its own scrypt parameters.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = kdf_memory)]
    kdf_memory: u64,
}

/// `--kdf-memory`: a power of two from 16 to 1024.
fn kdf_memory(text: &str) -> Result<u64, String> {
    let mib: u64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of MiB"))?;
    if !(16..=1024).contains(&mib) || !mib.is_power_of_two() {
        return Err(format!("{mib} MiB: give a power of two from 16 to 1024"));
    }
    Ok(mib)
}

/// libsodium's limits for `mib` MiB of scrypt memory: `opslimit = memlimit / 32`, the ratio of
/// minisign's own setting, which gives scrypt N = memlimit / 1 KiB, r = 8, p = 1.
fn kdf_params(mib: u64) -> KdfParams {
    let memlimit = mib << 20;
    KdfParams {
        opslimit: memlimit / 32,
        memlimit,
    }
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
        .to_encrypted_file_string(&passphrase, kdf_params(args.kdf_memory))
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
            "kdf_memory_mib": args.kdf_memory,
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

#[cfg(test)]
mod tests {
    use super::{kdf_memory, kdf_params};
    use bundle_file::sign::{KdfParams, ScryptCost};

    #[test]
    fn the_default_is_minisigns_own_setting() {
        assert_eq!(kdf_params(1024), KdfParams::MINISIGN_DEFAULT);
    }

    #[test]
    fn lighter_keys_use_less_memory_with_the_same_shape() {
        let cost = kdf_params(16).scrypt_cost().unwrap();
        assert_eq!(
            cost,
            ScryptCost {
                log_n: 14,
                r: 8,
                p: 1
            }
        );
        assert_eq!(cost.memory_bytes(), (16 << 20) + 128 * 8);
    }

    #[test]
    fn only_powers_of_two_from_16_to_1024() {
        assert_eq!(kdf_memory("64"), Ok(64));
        for bad in ["8", "100", "2048", "0", "x"] {
            assert!(kdf_memory(bad).is_err(), "{bad}");
        }
    }
}
