//! `bundle find-images`: render every release of releases.toml and list the images they run,
//! where each comes from, and which are missing from (or unused in) images.toml.

use anyhow::{Context, Result};
use cli_support::Output;
use online::discover::{check, discover, findings_of, Finding};
use online::spec::ImagesFile;
use online::spec::RenderPlan;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `find-images`.
#[derive(Debug, clap::Args)]
pub struct FindImagesArgs {
    /// The render plan: releases, charts, values files and scale profiles.
    #[arg(long, default_value = "releases.toml", value_name = "FILE")]
    releases: PathBuf,
    /// The image list to check the rendered images against.
    #[arg(long, default_value = "images.toml", value_name = "FILE")]
    images: PathBuf,
    /// The lock that pins the upstream charts releases name as `locked:NAME`.
    #[arg(long, default_value = "manifests.lock", value_name = "FILE")]
    lock: PathBuf,
    /// Render only this profile (repeatable; default: every profile).
    #[arg(long = "profile", value_name = "P")]
    profiles: Vec<String>,
    /// The helm binary.
    #[arg(long, env = "BUNDLE_HELM", default_value = "helm", value_name = "PATH")]
    helm: PathBuf,
    /// Print every place one image (NAME:TAG, or a repository for every tag) is rendered.
    #[arg(long, value_name = "IMAGE")]
    why: Option<String>,
}

pub fn run(args: &FindImagesArgs, out: Output) -> Result<ExitCode> {
    let mut plan = RenderPlan::load(&args.releases)?.only_profiles(&args.profiles)?;
    resolve_locked_charts(&mut plan, &args.lock)?;
    out.info(format!(
        "rendering {} release(s) of {} with {}",
        plan.releases.len(),
        args.releases.display(),
        args.helm.display()
    ));
    let findings = discover(&plan, &args.helm)?;
    match &args.why {
        Some(image) => why(image, &findings, out),
        None => list(args, &findings, out),
    }
}

/// Points `locked:NAME` charts at the pinned upstream charts (from the blob cache, fetched
/// by digest when missing).
fn resolve_locked_charts(plan: &mut RenderPlan, lock_path: &std::path::Path) -> Result<()> {
    if plan.locked_charts().is_empty() {
        return Ok(());
    }
    let lock = online::spec::Lock::load(lock_path)?;
    let cache = online::store::BlobCache::open(online::store::BlobCache::default_root())?;
    let registry = registry::Client::new(registry::ClientConfig::default())?;
    let upstream = online::chart::Upstream::new(online::store::http_client(&[])?, registry, cache);
    let paths = super::images_args::runtime()?
        .block_on(online::build::charts::fetch_upstream(&lock, &upstream))
        .context("fetching the pinned charts")?;
    plan.resolve_locked(|name| paths.get(name).cloned())?;
    Ok(())
}

/// Every image with its places, then what images.toml misses or does not need.
fn list(args: &FindImagesArgs, findings: &[Finding], out: Output) -> Result<ExitCode> {
    let images = ImagesFile::load(&args.images)?;
    let report = check(findings, &images);
    for unused in &report.unused {
        out.warn(format!(
            "{} ({}) is listed but no release renders it",
            unused.written,
            images.location_of(unused)
        ));
    }
    if out.machine_readable() {
        // The one JSON document is then the error.
        report.ensure_complete(&images.path)?;
    }
    let mut human = String::new();
    let mut json_images = Vec::new();
    for group in findings.chunk_by(|a, b| a.image == b.image) {
        let image = &group[0].image;
        let missing = report.missing.iter().any(|m| &m.image == image);
        human.push_str(&format!(
            "{image}{}\n",
            if missing {
                "  [NOT IN images.toml]"
            } else {
                ""
            }
        ));
        for place in group {
            human.push_str(&format!(
                "  {}: {} {}/{} {}{}\n",
                place.release,
                place.template,
                place.kind,
                place.object,
                place.field,
                profiles_note(place)
            ));
        }
        json_images.push(serde_json::json!({
            "image": image.to_string(),
            "listed": !missing,
            "places": group.iter().map(place_json).collect::<Vec<_>>(),
        }));
    }
    human.push_str(&format!(
        "{} image(s) in {} place(s); {} missing from {}; {} listed but unused\n",
        json_images.len(),
        findings.len(),
        report.missing.len(),
        images.path.display(),
        report.unused.len()
    ));
    out.result(
        human,
        &serde_json::json!({
            "ok": true,
            "images": json_images,
            "unused": report.unused.iter().map(|u| serde_json::json!({
                "ref": u.reference.to_string(),
                "line": u.line,
            })).collect::<Vec<_>>(),
        }),
    );
    report.ensure_complete(&images.path)?;
    Ok(ExitCode::SUCCESS)
}

/// Every place `image` is rendered, or that it never is.
fn why(image: &str, findings: &[Finding], out: Output) -> Result<ExitCode> {
    let places = findings_of(findings, image).with_context(|| format!("--why {image}"))?;
    let mut human = String::new();
    if places.is_empty() {
        human.push_str(&format!("{image} is never rendered by any release\n"));
    } else {
        human.push_str(&format!(
            "{image} is rendered in {} place(s):\n",
            places.len()
        ));
        for place in &places {
            human.push_str(&format!(
                "  release {} (chart {})\n    template: {}\n    object:   {}/{}\n    \
                 field:    {}\n    value:    {}\n    profiles: {}\n",
                place.release,
                place.chart,
                place.template,
                place.kind,
                place.object,
                place.field,
                place.written,
                if place.profiles.is_empty() {
                    "all (the release is rendered without profiles)".to_string()
                } else {
                    place.profiles.join(", ")
                }
            ));
        }
    }
    out.result(
        human,
        &serde_json::json!({
            "ok": true,
            "image": image,
            "rendered": !places.is_empty(),
            "places": places.iter().map(|p| place_json(p)).collect::<Vec<_>>(),
        }),
    );
    Ok(ExitCode::SUCCESS)
}

fn profiles_note(place: &Finding) -> String {
    if place.profiles.is_empty() {
        String::new()
    } else {
        format!(" [profiles: {}]", place.profiles.join(", "))
    }
}

fn place_json(place: &Finding) -> serde_json::Value {
    serde_json::json!({
        "image": place.image.to_string(),
        "written": place.written,
        "release": place.release,
        "chart": place.chart,
        "template": place.template,
        "kind": place.kind,
        "object": place.object,
        "field": place.field,
        "profiles": place.profiles,
    })
}
