//! `verify`, the same command in `bundle` and `installer`, and how every other command that
//! uses a bundle's content opens it: signatures first, then the members.

use crate::trust_args::TrustArgs;
use crate::Output;
use anyhow::{Context, Result};
use bundle_file::archive::parallel::default_threads;
use bundle_file::archive::source::FileSource;
use bundle_file::verify::{verify, Depth};
use bundle_file::{Bundle, SignedBundle};
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The bundle file.
    pub bundle: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Threads that hash (and, with --content, decompress) members (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Decompress every member and check its content's SHA-256 and tar header, as `extract`
    /// does, instead of hashing the frames as stored against the SHA-256 bundle.json pins for
    /// each run of members (the default: as strong under the signature, and only bundle.json
    /// and SHA256SUMS are decompressed). A bundle of format v1 is always checked by content.
    #[arg(long)]
    pub content: bool,
}

#[derive(Serialize)]
struct VerifyJson {
    ok: bool,
    name: String,
    version: String,
    members: usize,
    bytes: u64,
    checked: Depth,
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
    /// Use the bundle WITHOUT checking its signatures (the members are still checked against
    /// bundle.json).
    #[arg(long)]
    pub insecure_skip_verify: bool,
}

impl TrustedBundleArgs {
    /// These options as command-line arguments again (paths made absolute), for a child
    /// process of this program that must trust the same bundle.
    pub fn to_args(&self) -> Vec<String> {
        let absolute = |p: &std::path::Path| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .to_string_lossy()
                .into_owned()
        };
        let mut args = vec![absolute(&self.bundle)];
        for key in &self.trust.keys {
            args.extend(["--key".to_string(), absolute(key)]);
        }
        args.push(format!("--threshold={}", self.trust.threshold));
        if self.insecure_skip_verify {
            args.push("--insecure-skip-verify".to_string());
        }
        args
    }
}

/// Opens the bundle and checks its signatures against the trust policy, naming the signers;
/// with `--insecure-skip-verify` it says loudly that the signatures are not checked. The
/// members are NOT checked: check them ([`SignedBundle::check_members`],
/// [`SignedBundle::check_in_background`]) before relying on them, or use [`open_verified`].
pub fn open_signed(args: &TrustedBundleArgs, out: Output) -> Result<SignedBundle> {
    let policy = if args.insecure_skip_verify {
        out.warn(
            "SIGNATURES NOT CHECKED (--insecure-skip-verify): nothing proves who made this bundle",
        );
        None
    } else {
        Some(args.trust.policy()?)
    };
    let signed = SignedBundle::open(&args.bundle, policy.as_ref())
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    if let Some(signers) = signed.signers() {
        let toc = signed.bundle().toc();
        out.info(format!(
            "signatures of {} {} verified: signed by {}",
            toc.name,
            toc.version,
            signers
                .trusted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(signed)
}

/// Opens the bundle and verifies it (signatures, then every member) before anything uses it;
/// with `--insecure-skip-verify` it still checks every member against bundle.json and says
/// loudly that the signatures were not checked.
pub fn open_verified(args: &TrustedBundleArgs, out: Output) -> Result<Bundle<FileSource>> {
    let signed = open_signed(args, out)?;
    let progress = out.progress();
    let bundle = signed.into_verified(progress.as_ref())?;
    let toc = bundle.toc();
    out.info(format!(
        "verified {} {}: {} members",
        toc.name,
        toc.version,
        toc.members.len()
    ));
    Ok(bundle)
}

/// Checks signatures and every member of a bundle and reports who signed it.
pub fn run(args: &VerifyArgs, out: Output) -> Result<ExitCode> {
    let policy = args.trust.policy()?;
    let bundle = Bundle::open_path(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    let threads = args.threads.unwrap_or_else(default_threads);
    let progress = out.progress();
    let depth = if args.content {
        Depth::Content
    } else {
        Depth::Stored
    };
    let report = verify(&bundle, &policy, threads, depth, progress.as_ref())
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
    let how = match report.checked.depth {
        Depth::Stored => "frames as stored",
        Depth::Content => "content",
    };
    let mut human = format!(
        "OK {} {}: {} members, {} bytes checked ({how}); signed by {}\n",
        report.name,
        report.version,
        report.checked.members,
        report.checked.bytes,
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
            members: report.checked.members,
            bytes: report.checked.bytes,
            checked: report.checked.depth,
            signers,
            ignored_unknown_signers: unknown,
        },
    );
    Ok(ExitCode::SUCCESS)
}
