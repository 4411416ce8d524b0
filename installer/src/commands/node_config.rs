//! `installer node-config`: the containerd files every node needs to pull the bundle's images
//! from the site registry, by their upstream names too, and the pinned sandbox image.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use cli_support::verify_cmd::{open_signed, TrustedBundleArgs};
use cli_support::Output;
use installer::node_config::{node_config, CERTS_DIR, DROP_IN};
use installer::pin::BundleImages;
use online::ca::write_atomic;

use super::registry_args::SiteRegistryArgs;

/// Arguments of `node-config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bundle: TrustedBundleArgs,
    #[command(flatten)]
    pub target: SiteRegistryArgs,
    /// The CA certificate (PEM) the site registry's TLS certificate chains to; without it,
    /// nodes use their system trust.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Where the nodes keep containerd's certs.d (the paths inside the files point there).
    #[arg(long, value_name = "DIR", default_value = CERTS_DIR)]
    pub certs_dir: String,
    /// Directory to write into (created if missing): certs.d/ and conf.d/messenger.toml.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let target = args.target.target()?;
    let ca_pem = match &args.ca_file {
        Some(path) => {
            let pem = oci::files::read_capped_to_string(path, oci::files::KEY_FILE_LIMIT)
                .with_context(|| format!("reading the CA certificate {}", path.display()))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                anyhow::bail!(
                    "{} is not a PEM certificate (no BEGIN CERTIFICATE line)",
                    path.display()
                );
            }
            Some(pem)
        }
        None => None,
    };
    let signed = open_signed(&args.bundle, out)?;
    let images = BundleImages::read(signed.bundle())
        .with_context(|| format!("reading the images of {}", args.bundle.bundle.display()))?;
    let config = node_config(&images, &target, ca_pem.as_deref(), &args.certs_dir)
        .map_err(|e| anyhow::anyhow!("the sandbox (pause) image: {}", e.0))?;
    let mut written = Vec::new();
    for file in &config.files {
        let path = args.out.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomic(&path, file.text.as_bytes(), 0o644)?;
        written.push(path);
    }
    let sandbox = match &config.sandbox_image {
        Some(image) => format!("sandbox image {image}"),
        None => {
            out.warn("the bundle carries no pause image: the nodes keep their own sandbox image");
            "no sandbox image".to_string()
        }
    };
    out.result(
        format!(
            "{} upstream registr{} sent to {}{}; {sandbox}\n{}\n\
             On every node: copy certs.d/ to {} and {DROP_IN} to /etc/containerd/{DROP_IN},\n\
             import it from /etc/containerd/config.toml, restart containerd (docs/install.md).\n",
            config.mirrors.len(),
            if config.mirrors.len() == 1 {
                "y"
            } else {
                "ies"
            },
            target.registry,
            target
                .prefix
                .as_deref()
                .map(|p| format!("/{p}"))
                .unwrap_or_default(),
            written
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect::<Vec<_>>()
                .join("\n"),
            args.certs_dir,
        ),
        &serde_json::json!({
            "ok": true,
            "mirrors": config.mirrors,
            "sandbox_image": config.sandbox_image,
            "files": written,
        }),
    );
    Ok(ExitCode::SUCCESS)
}
