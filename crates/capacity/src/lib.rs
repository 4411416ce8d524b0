//! The capacity check: does a profile fit the site? Layers the chart's values as helm does
//! (`values.yaml`, the site file, `profiles/<profile>.yaml`) and holds the PostgreSQL
//! connections every client may open to `max_connections`, and the requests of every pod to
//! the declared nodes, printing every line of arithmetic (docs/capacity.md).

mod connections;
mod error;
mod merge;
mod quantity;
mod report;
mod resources;
mod values;

pub use connections::{HEADROOM_PERCENT, POOLER_ADMIN_CONNECTIONS};
pub use error::CapacityError;
pub use quantity::{parse_cpu, parse_memory};
pub use report::{Check, Report};
pub use resources::{MIN_SYSTEM_RESERVE_CPU, MIN_SYSTEM_RESERVE_MIB, SYSTEM_RESERVE_PERCENT};

use std::path::Path;

/// The chart's profiles (`profiles/<name>.yaml`), smallest first (`100`, `1k`, `5k`, ...).
pub fn profiles(chart: &Path) -> Result<Vec<String>, CapacityError> {
    let dir = chart.join("profiles");
    let read = |source| CapacityError::Read {
        path: dir.clone(),
        source,
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(read)? {
        let name = entry.map_err(read)?.file_name();
        if let Some(name) = name.to_str().and_then(|n| n.strip_suffix(".yaml")) {
            names.push(name.to_string());
        }
    }
    names.sort_by_key(|name| (users(name), name.clone()));
    Ok(names)
}

/// The users a profile's name promises (`1k` → 1000), for ordering; unknown names go last.
fn users(name: &str) -> u64 {
    let (number, factor) = match name.strip_suffix('k') {
        Some(number) => (number, 1000),
        None => (name, 1),
    };
    number.parse::<u64>().map_or(u64::MAX, |n| n * factor)
}

/// Checks `profile` (the site file's `profile` when `None`) of the chart at `chart` on the site
/// described by `site`.
pub fn check(chart: &Path, site: &Path, profile: Option<&str>) -> Result<Report, CapacityError> {
    let mut layered = merge::layered(&[&chart.join("values.yaml"), site])?;
    let profile = match profile {
        Some(profile) => profile.to_string(),
        None => layered
            .get("profile")
            .and_then(|p| serde_norway::from_value::<values::Text>(p.clone()).ok())
            .map(|p| p.0)
            .ok_or_else(|| CapacityError::NoProfile {
                site: site.to_path_buf(),
            })?,
    };
    let known = profiles(chart)?;
    if !known.contains(&profile) {
        return Err(CapacityError::UnknownProfile {
            profile,
            dir: chart.join("profiles"),
            known: known.join(", "),
        });
    }
    let profile_file = chart.join("profiles").join(format!("{profile}.yaml"));
    merge::merge(&mut layered, merge::read_values(&profile_file)?);
    let values: values::Values =
        serde_norway::from_value(layered).map_err(|source| CapacityError::Values {
            profile: profile.clone(),
            source,
        })?;
    let nodes = values
        .nodes
        .as_ref()
        .ok_or_else(|| CapacityError::NoNodes {
            site: site.to_path_buf(),
        })?;
    let mut checks = vec![connections::check(&values)];
    checks.extend(resources::checks(&values, nodes, &profile)?);
    Ok(Report::new(profile, checks))
}

/// Checks every profile of the chart on one site, smallest first.
pub fn check_all_profiles(chart: &Path, site: &Path) -> Result<Vec<Report>, CapacityError> {
    profiles(chart)?
        .iter()
        .map(|profile| check(chart, site, Some(profile)))
        .collect()
}
