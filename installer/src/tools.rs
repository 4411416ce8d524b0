//! `installer tools`: the helm and kubectl binaries the bundle carries for one platform,
//! written out of a verified bundle as executables, each checked against bundle.json.

use anyhow::{bail, Context as _, Result};
use bundle::cli::verify_cmd::{open_verified, TrustedBundleArgs};
use bundle::cli::Output;
use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Arguments of `tools`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    bundle: TrustedBundleArgs,
    /// Directory to write the binaries into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The platform the binaries must run on (default: this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
}

pub fn run(args: &Args, out: Output) -> Result<()> {
    let bundle = open_verified(&args.bundle, out)?;
    let platform = args
        .platform
        .clone()
        .unwrap_or_else(bundle::tools::host_platform);
    let prefix = format!("{}/", bundle::tools::tools_dir(&platform));
    let members: Vec<_> = bundle
        .manifest()
        .members
        .iter()
        .filter(|m| m.path.starts_with(&prefix))
        .cloned()
        .collect();
    if members.is_empty() {
        let mut carried: Vec<String> = bundle
            .manifest()
            .members
            .iter()
            .filter_map(|m| m.path.strip_prefix("tools/")?.split_once('/'))
            .map(|(p, _)| p.replace('-', "/"))
            .collect();
        carried.dedup();
        bail!(
            "{} carries no tools for {platform} (it has: {})",
            args.bundle.bundle.display(),
            if carried.is_empty() {
                "none".to_string()
            } else {
                carried.join(", ")
            }
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    for entry in &members {
        let name = &entry.path[prefix.len()..];
        let located = bundle
            .member(&entry.path)
            .with_context(|| format!("{} is listed but not in the bundle", entry.path))?;
        let target = args.out.join(name);
        write_checked(
            &mut bundle.member_reader(located, 0, located.size),
            &target,
            &entry.sha256,
        )
        .with_context(|| format!("writing {} from {}", target.display(), entry.path))?;
        written.push(target);
    }
    let human: String = written
        .iter()
        .map(|p| format!("wrote {}\n", p.display()))
        .collect();
    out.result(
        human,
        &serde_json::json!({ "ok": true, "platform": platform, "tools": written }),
    );
    Ok(())
}

/// Copies `reader` to `target` through a `.partial` file, made executable and renamed into
/// place only when its sha256 is `expected`.
fn write_checked(reader: &mut dyn std::io::Read, target: &Path, expected: &str) -> Result<()> {
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| -> Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
        }
        file.sync_all()?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            bail!("content hashes to {actual}, bundle.json says {expected}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&partial, target)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
