//! `bundle inspect`: list members, sizes, kinds and signers without extracting; `--sbom`
//! prints the bill of materials.

use anyhow::{Context, Result};
use bundle_file::inspect::{summarize, Summary};
use bundle_file::Bundle;
use cli_support::trust_args::TrustArgs;
use cli_support::Output;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// List every member, not only totals per kind.
    #[arg(long)]
    members: bool,
    /// Print the bill of materials (sbom.cdx.json, CycloneDX JSON) instead, after checking
    /// it against bundle.json (and, with --key, bundle.json against the signatures).
    #[arg(long)]
    sbom: bool,
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: &InspectArgs, out: Output) -> Result<ExitCode> {
    let bundle = Bundle::open_path(&args.bundle)
        .with_context(|| format!("opening {}", args.bundle.display()))?;
    if args.sbom {
        return print_sbom(args, &bundle, out);
    }
    let summary = summarize(&bundle);
    out.result(human(&summary, args.members), &summary);
    Ok(ExitCode::SUCCESS)
}

/// Prints the bill exactly as the bundle carries it (the JSON document in every output mode),
/// once its bytes match bundle.json and, given keys, bundle.json matches the signatures.
fn print_sbom(
    args: &InspectArgs,
    bundle: &Bundle<bundle_file::archive::source::FileSource>,
    out: Output,
) -> Result<ExitCode> {
    let name = args.bundle.display().to_string();
    if !args.trust.keys.is_empty() {
        args.trust.check_signatures(bundle, &name)?;
    }
    let bytes = online::sbom::bytes_from_bundle(bundle, &name)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{name}: sbom.cdx.json is not JSON"))?;
    out.result(String::from_utf8_lossy(&bytes), &json);
    Ok(ExitCode::SUCCESS)
}

fn human(s: &Summary, all: bool) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "bundle   {} {}", s.name, s.version);
    let _ = writeln!(t, "created  {} by {}", s.created, s.tool);
    if !s.platforms.is_empty() {
        let _ = writeln!(t, "targets  {}", s.platforms.join(", "));
    }
    let _ = writeln!(
        t,
        "size     {} bytes in the file, {} bytes of tar in {} frames",
        s.file_size, s.tar_size, s.frames
    );
    let _ = writeln!(t, "contents bundle.json sha256 {}", s.toc_sha256);
    let mut kinds: BTreeMap<String, (usize, u64, u64)> = BTreeMap::new();
    for m in &s.members {
        let kind = m.kind.map_or("contents".into(), |k| {
            serde_json::to_value(k)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        let e = kinds.entry(kind).or_default();
        e.0 += 1;
        e.1 += m.size;
        e.2 += m.compressed;
    }
    let _ = writeln!(t, "members  {}", s.members.len());
    for (kind, (n, size, compressed)) in &kinds {
        let _ = writeln!(
            t,
            "  {kind:<12} {n:>6} files {size:>14} bytes ({compressed} compressed)"
        );
    }
    if all {
        for m in &s.members {
            let _ = writeln!(t, "  {:>14}  {}", m.size, m.path);
        }
        if !s.stored_runs.is_empty() {
            let _ = writeln!(t, "stored runs (file offset, length, sha256, members)");
        }
        for r in &s.stored_runs {
            let _ = writeln!(
                t,
                "  {:>14} {:>12}  {}  {} .. {}",
                r.offset, r.length, r.sha256, r.first, r.last
            );
        }
    }
    if let Some(problem) = &s.signature_problem {
        let _ = writeln!(t, "signers  unreadable: {problem}");
    } else if s.signatures.is_empty() {
        let _ = writeln!(t, "signers  none (unsigned)");
    } else {
        let _ = writeln!(t, "signers  (not verified; use `bundle verify`)");
        for sig in &s.signatures {
            let _ = writeln!(
                t,
                "  {}  {}",
                sig.key_id.as_deref().unwrap_or("(malformed)"),
                sig.member
            );
        }
    }
    t
}
