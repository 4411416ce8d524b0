//! `installer capacity`: does a profile fit the site's PostgreSQL and nodes? Prints every line
//! of arithmetic and fails naming each check that does not hold (docs/capacity.md).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use capacity::Report;
use cli_support::Output;

/// Arguments of `capacity`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site file (the one the install uses).
    #[arg(long = "values", value_name = "SITE.yaml")]
    site: PathBuf,
    /// The profile to check; default: the site file's `profile`. `all`: every profile.
    #[arg(long, value_name = "P")]
    profile: Option<String>,
    /// The stack chart's directory.
    #[arg(long, value_name = "DIR", default_value = "charts/messenger")]
    chart: PathBuf,
}

/// Runs the check; fails when a check fails or the values cannot be read.
pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let reports = reports(args)?;
    let text: String = reports.iter().map(Report::to_string).collect();
    let ok = reports.iter().all(Report::ok);
    out.result(text, &serde_json::json!({ "ok": ok, "reports": reports }));
    if ok {
        return Ok(ExitCode::SUCCESS);
    }
    let failures: Vec<String> = reports
        .iter()
        .flat_map(|report| {
            report.failures().map(|check| {
                format!(
                    "profile {} fails {}: {}",
                    report.profile,
                    check.name,
                    check.verdict()
                )
            })
        })
        .collect();
    Ok(out.partial_failure(failures.join("\nerror: ")))
}

fn reports(args: &Args) -> Result<Vec<Report>> {
    let context = || {
        format!(
            "capacity of {} with chart {}",
            args.site.display(),
            args.chart.display()
        )
    };
    match args.profile.as_deref() {
        Some("all") => capacity::check_all_profiles(&args.chart, &args.site).with_context(context),
        profile => capacity::check(&args.chart, &args.site, profile)
            .map(|report| vec![report])
            .with_context(context),
    }
}
