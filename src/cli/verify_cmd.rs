//! `verify`: the same command in `bundle` and `installer`.

use super::trust_args::TrustArgs;
use super::Output;
use crate::container::verify::verify;
use crate::container::Bundle;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The bundle file.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Decompression threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    name: String,
    version: String,
    members: usize,
    bytes: u64,
    signers: Vec<String>,
    ignored_unknown_signers: Vec<String>,
}

/// How commands that use a bundle's content decide to trust it.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustedBundleArgs {
    /// The bundle file.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Use the bundle WITHOUT checking its signatures (member hashes are still checked).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

/// A bundle whose signatures passed the trust policy, with the signature members found (none
/// with `--insecure-skip-verify`); its members are not checked yet.
pub struct SignedBundle {
    /// The open bundle.
    pub bundle: Bundle<crate::archive::source::FileSource>,
    /// The signature members, which the member check expects exactly.
    pub signatures: Option<Vec<crate::container::FoundSignature>>,
    /// The bundle file, for messages.
    path: PathBuf,
}

/// Checks every member of `bundle` against bundle.json in one streaming pass; the error names
/// the bundle file.
fn check_members_of(
    bundle: &Bundle<crate::archive::source::FileSource>,
    signatures: Option<&[crate::container::FoundSignature]>,
    path: &std::path::Path,
    progress: &dyn crate::container::Progress,
) -> Result<()> {
    crate::container::verify::check_members(
        bundle,
        signatures,
        crate::archive::parallel::default_threads(),
        progress,
        None,
    )
    .with_context(|| format!("{} failed verification", path.display()))?;
    Ok(())
}

impl SignedBundle {
    /// Checks every member against bundle.json in one streaming pass.
    pub fn check_members(&self, progress: &dyn crate::container::Progress) -> Result<()> {
        check_members_of(
            &self.bundle,
            self.signatures.as_deref(),
            &self.path,
            progress,
        )
    }

    /// Shares the bundle and runs the member check on its own thread meanwhile: the gate
    /// gets its verdict (the error as one line).
    pub fn check_in_background(
        self,
    ) -> (
        std::sync::Arc<Bundle<crate::archive::source::FileSource>>,
        crate::load::run::Gate,
    ) {
        let bundle = std::sync::Arc::new(self.bundle);
        let checked = std::sync::Arc::clone(&bundle);
        let (verdict, gate) = tokio::sync::oneshot::channel();
        let (signatures, path) = (self.signatures, self.path);
        std::thread::spawn(move || {
            let result = check_members_of(
                &checked,
                signatures.as_deref(),
                &path,
                &crate::container::NoProgress,
            )
            .map_err(|e| format!("{e:#}"));
            let _ = verdict.send(result);
        });
        (bundle, gate)
    }
}

/// Opens the bundle and checks its signatures against the trust policy, naming the signers;
/// with `--insecure-skip-verify` it says loudly that the signatures are not checked. The
/// members are NOT checked: call [`SignedBundle::check_members`] before relying on them, or
/// use [`open_verified`].
pub fn open_signed(args: &TrustedBundleArgs, out: Output) -> Result<SignedBundle> {
    let bundle = Bundle::open_path(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    if args.insecure_skip_verify {
        out.warn(
            "SIGNATURES NOT CHECKED (--insecure-skip-verify): nothing proves who made this bundle",
        );
        return Ok(SignedBundle {
            bundle,
            signatures: None,
            path: args.bundle.clone(),
        });
    }
    let policy = args.trust.policy()?;
    let failed = || format!("{} failed verification", args.bundle.display());
    let signatures: Vec<_> = bundle
        .signatures()
        .map_err(|problem| crate::container::BundleError::Layout(problem.to_string()))
        .with_context(failed)?
        .iter()
        .map(|(_, signature)| signature.clone())
        .collect();
    let signers = policy
        .check(bundle.manifest_bytes(), &signatures)
        .with_context(failed)?;
    out.info(format!(
        "signatures of {} {} verified: signed by {}",
        bundle.manifest().name,
        bundle.manifest().version,
        signers
            .trusted
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(SignedBundle {
        bundle,
        signatures: Some(signatures),
        path: args.bundle.clone(),
    })
}

/// Opens the bundle and verifies it (signatures, then every member) before anything uses it;
/// with `--insecure-skip-verify` it still checks every member against bundle.json and says
/// loudly that the signatures were not checked.
pub fn open_verified(
    args: &TrustedBundleArgs,
    out: Output,
) -> Result<Bundle<crate::archive::source::FileSource>> {
    let signed = open_signed(args, out)?;
    let progress = out.progress();
    signed.check_members(progress.as_ref())?;
    out.info(format!(
        "verified {} {}: {} members",
        signed.bundle.manifest().name,
        signed.bundle.manifest().version,
        signed.bundle.manifest().members.len()
    ));
    Ok(signed.bundle)
}

/// Checks signatures and every member of a bundle and reports who signed it.
pub fn run(args: &VerifyArgs, out: Output) -> Result<()> {
    let policy = args.trust.policy()?;
    let bundle = Bundle::open_path(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    let threads = args
        .threads
        .unwrap_or_else(crate::archive::parallel::default_threads);
    let progress = out.progress();
    let report = verify(&bundle, &policy, threads, progress.as_ref())
        .with_context(|| format!("{} failed verification", args.bundle.display()))?;
    let signers: Vec<String> = report
        .signers
        .trusted
        .iter()
        .map(|k| k.to_string())
        .collect();
    let unknown: Vec<String> = report
        .signers
        .unknown
        .iter()
        .map(|k| k.to_string())
        .collect();
    let mut human = format!(
        "OK {} {}: {} members, {} bytes checked; signed by {}\n",
        report.name,
        report.version,
        report.members,
        report.bytes,
        signers.join(", ")
    );
    if !unknown.is_empty() {
        human.push_str(&format!(
            "ignored signatures by untrusted keys: {}\n",
            unknown.join(", ")
        ));
    }
    out.result(
        human,
        &VerifyJson {
            ok: true,
            name: report.name,
            version: report.version,
            members: report.members,
            bytes: report.bytes,
            signers,
            ignored_unknown_signers: unknown,
        },
    );
    Ok(())
}
