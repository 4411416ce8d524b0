//! What a build checks before it packs: the stack chart's capacity for every scale profile,
//! and that every image the releases render is in images.toml.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{BuildError, BuildEvent, BuildEvents};
use crate::discover::{check, discover};
use crate::spec::{ImagesFile, RenderPlan};
use crate::tools::ToolFile;

/// Checks the stack chart's capacity for every profile, then renders every release of
/// `releases` for every profile (upstream charts from their fetched archives), with the
/// pinned helm when the bundle carries one for this machine (else `fallback_helm`), and fails
/// when an image it renders is not in images.toml (warning on listed images nothing renders).
pub fn check_rendered_images(
    releases: &Path,
    images: &ImagesFile,
    (tools, upstream): (&[ToolFile], &BTreeMap<String, PathBuf>),
    fallback_helm: &Path,
    events: &dyn BuildEvents,
) -> Result<(), BuildError> {
    let mut plan = RenderPlan::load(releases)?;
    plan.resolve_locked(|name| upstream.get(name).cloned())?;
    check_capacity(&plan, events)?;
    let scratch =
        tempfile::tempdir().map_err(|e| BuildError::io(std::env::temp_dir().as_path(), e))?;
    let helm = crate::tools::host_binary(tools, "helm", scratch.path())
        .map_err(|e| BuildError::io(scratch.path(), e))?
        .unwrap_or_else(|| fallback_helm.to_path_buf());
    events.event(BuildEvent::Info {
        message: format!(
            "rendering {} release(s) of {} with {}",
            plan.releases.len(),
            releases.display(),
            helm.display()
        ),
    });
    let findings = discover(&plan, &helm)?;
    let report = check(&findings, images);
    for unused in &report.unused {
        events.event(BuildEvent::Warning {
            message: format!(
                "{} ({}) is listed but no release of {} renders it",
                unused.written,
                images.location_of(unused),
                releases.display()
            ),
        });
    }
    report.ensure_complete(&images.path)?;
    Ok(())
}

/// The stack chart's capacity check for every scale profile on the site values the render
/// plan gives it: a profile whose connection pools exceed PostgreSQL's `max_connections`
/// (with headroom) fails the build, whatever the site; CPU and memory depend on the site's
/// nodes, so there a shortfall of the reference site is a warning (`installer capacity` is
/// the site's own check).
fn check_capacity(plan: &RenderPlan, events: &dyn BuildEvents) -> Result<(), BuildError> {
    let Some(release) = plan
        .releases
        .iter()
        .find(|r| r.chart.path.join("profiles").is_dir() && r.chart.path.ends_with("messenger"))
    else {
        return Ok(());
    };
    let Some(site) = release.values.first() else {
        return Ok(());
    };
    let reports = capacity::check_all_profiles(&release.chart.path, &site.path).map_err(|e| {
        BuildError::Capacity {
            chart: release.chart.path.clone(),
            source: e,
        }
    })?;
    let mut failed = Vec::new();
    for report in &reports {
        events.event(BuildEvent::Info {
            message: format!("capacity, profile {}:\n{report}", report.profile),
        });
        for check in report.failures() {
            let line = format!(
                "profile {} fails {}: {}",
                report.profile,
                check.name,
                check.verdict()
            );
            if check.name == "connections" {
                failed.push(line);
            } else {
                events.event(BuildEvent::Warning {
                    message: format!("{line} (on the reference site {})", site.written),
                });
            }
        }
    }
    if !failed.is_empty() {
        return Err(BuildError::CapacityFails(failed.join("\n")));
    }
    Ok(())
}
