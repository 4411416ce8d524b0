//! `bundle lock`: resolve images.toml to digests and write manifests.lock.

use super::images_args::{runtime, ImagesArgs};
use anyhow::{bail, Result};
use cli_support::Output;
use online::build::{load_lock, update_lock, write_lock, RefreshFiles};
use online::store::BlobCache;
use std::process::ExitCode;

/// Arguments of `lock`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    #[command(flatten)]
    images: ImagesArgs,
    /// Refresh only this image (by reference or repository name) or this file of files.toml
    /// (by name); others keep their entries.
    #[arg(long, value_name = "NAME")]
    update: Option<String>,
}

pub fn run(args: &LockArgs, out: Output) -> Result<ExitCode> {
    let images = args.images.load_images()?;
    let previous = load_lock(&args.images.lock)?;
    let client = args.images.client(&images, out)?;
    let mut inputs = args
        .images
        .lock_inputs(&client, BlobCache::open(BlobCache::default_root())?)?;
    let is_file = |name: &str| {
        inputs
            .files
            .as_ref()
            .is_some_and(|f| f.files.iter().any(|s| s.name == name))
    };
    // `None`: every image; `Some(None)`: no image (a file is updated).
    let only = match &args.update {
        Some(name) if is_file(name) => {
            inputs.refresh_files = RefreshFiles::Only(name.clone());
            Some(None)
        }
        Some(name) => match images.find(name) {
            Some(spec) => Some(Some(spec.reference.clone())),
            None => bail!(
                "{name} is not in {} (nor a file of files.toml)",
                args.images.images.display()
            ),
        },
        None => {
            inputs.refresh_files = RefreshFiles::All;
            None
        }
    };
    let lock = runtime()?.block_on(update_lock(
        &images,
        &inputs,
        previous.as_ref(),
        &|spec| {
            only.as_ref()
                .is_none_or(|r| r.as_ref() == Some(&spec.reference))
        },
        &client,
        args.images.jobs,
        &args.images.lock,
    ))?;
    let changed = previous.as_ref() != Some(&lock);
    if changed {
        write_lock(&lock)?;
    }
    let mut human = String::new();
    for image in &lock.images {
        human.push_str(&format!(
            "{} -> {} ({})\n",
            image.reference,
            image.root_digest(),
            image
                .platform_list()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for tool in &lock.tools {
        human.push_str(&format!(
            "tool {} {} ({}) -> {}\n",
            tool.name, tool.version, tool.platform, tool.sha256
        ));
    }
    for chart in &lock.charts {
        human.push_str(&format!(
            "chart {} {} ({}) -> {}\n",
            chart.name,
            chart.version,
            chart.origin(),
            chart.digest
        ));
    }
    for file in &lock.files {
        human.push_str(&format!(
            "file {} ({}) -> {}\n",
            file.name, file.source, file.sha256
        ));
    }
    for database in &lock.clamav {
        human.push_str(&format!(
            "clamav {} version {} ({} signatures) -> {}\n",
            database.file, database.version, database.signatures, database.sha256
        ));
    }
    human.push_str(&format!(
        "{} {} ({} images, {} tool binaries)\n",
        if changed { "wrote" } else { "unchanged:" },
        args.images.lock.display(),
        lock.images.len(),
        lock.tools.len()
    ));
    out.result(
        human,
        &serde_json::json!({
            "ok": true,
            "lock": args.images.lock,
            "changed": changed,
            "images": lock.images.iter().map(|i| serde_json::json!({
                "ref": i.reference.to_string(),
                "digest": i.root_digest().to_string(),
                "platforms": i.platform_list().iter().map(ToString::to_string).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "tools": lock.tools,
            "files": lock.files,
            "clamav": lock.clamav,
            "charts": lock.charts.iter().map(|c| serde_json::json!({
                "name": c.name,
                "version": c.version,
                "origin": c.origin(),
                "digest": c.digest.to_string(),
            })).collect::<Vec<_>>(),
        }),
    );
    Ok(ExitCode::SUCCESS)
}
