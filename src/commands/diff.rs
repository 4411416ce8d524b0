//! `bundle diff OLD NEW`: what changed between two bundles or locks, like diff(1) in its exit
//! status.

use anyhow::{Context, Result};
use bundle_file::Bundle;
use cli_support::trust_args::TrustArgs;
use cli_support::Output;
use online::sbom::diff::{diff, human, Inventory};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Each side is a bundle (its sbom.cdx.json, checked against its bundle.json) or a manifests.lock.
A lock knows no OS packages, own charts or ClamAV signature image: compare two bundles for those.

Exit status: 0 when nothing differs, 1 when something does, 2 on error (as diff(1)).")]
pub struct DiffArgs {
    /// The old bundle or manifests.lock.
    old: PathBuf,
    /// The new bundle or manifests.lock.
    new: PathBuf,
    /// Check each bundle's bundle.json against these signers first.
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: &DiffArgs, out: Output) -> Result<ExitCode> {
    match compare(args, out) {
        Ok(code) => Ok(code),
        Err(error) => {
            out.failure(&error);
            Ok(ExitCode::from(2))
        }
    }
}

fn compare(args: &DiffArgs, out: Output) -> Result<ExitCode> {
    let old = inventory(&args.old, &args.trust)?;
    let new = inventory(&args.new, &args.trust)?;
    let result = diff(&old, &new);
    out.result(human(&result), &result);
    Ok(if result.changed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A bundle's bill, or a lock's pins: a file that opens as a bundle is one.
fn inventory(path: &Path, trust: &TrustArgs) -> Result<Inventory> {
    let name = path.display().to_string();
    match Bundle::open_path(path) {
        Ok(bundle) => {
            if !trust.keys.is_empty() {
                trust.check_signatures(&bundle, &name)?;
            }
            let bom = online::sbom::from_bundle(&bundle, &name)?;
            Ok(Inventory::from_bom(&bom))
        }
        Err(bundle_error) => {
            let lock = online::spec::Lock::load(path).with_context(|| {
                format!("{name} is neither a bundle ({bundle_error}) nor a manifests.lock")
            })?;
            Ok(Inventory::from_lock(&lock))
        }
    }
}
