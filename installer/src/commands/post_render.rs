//! `installer post-render`: the Helm post-renderer that pins every image of a rendered
//! release to the bundle's digest in the site registry, refusing images the bundle lacks.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use cli_support::verify_cmd::{open_signed, TrustedBundleArgs};
use cli_support::Output;
use installer::pin::{self, BundleImages};

use super::registry_args::SiteRegistryArgs;

/// Arguments of `post-render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bundle: TrustedBundleArgs,
    #[command(flatten)]
    pub target: SiteRegistryArgs,
    /// The release being rendered, for messages.
    #[arg(long, value_name = "NAME", default_value = "(release)")]
    pub release: String,
    /// Also write a refusal to FILE (helm does not show a post-renderer's errors).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let result = pin_stdin(args, out);
    if let (Err(error), Some(report)) = (&result, &args.report) {
        std::fs::write(report, format!("{error:#}\n"))
            .with_context(|| format!("writing {}", report.display()))?;
    }
    result
}

fn pin_stdin(args: &Args, out: Output) -> Result<ExitCode> {
    let target = args.target.target()?;
    let signed = open_signed(&args.bundle, out)?;
    let images = BundleImages::read(signed.bundle())
        .with_context(|| format!("reading the images of {}", args.bundle.bundle.display()))?;
    let mut stream = String::new();
    std::io::stdin()
        .read_to_string(&mut stream)
        .context("reading the rendered manifests from stdin")?;
    let (pinned, fields) = pin::post_render(&stream, &args.release, &images, &target)?;
    std::io::stdout()
        .write_all(pinned.as_bytes())
        .context("writing the pinned manifests to stdout")?;
    out.info(format!(
        "release {}: {} image field(s) pinned",
        args.release,
        fields.len()
    ));
    Ok(ExitCode::SUCCESS)
}
