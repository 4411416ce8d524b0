//! The capacity check: does a profile fit the site? Layers the chart's values as helm does
//! (`values.yaml`, the site file, `profiles/<profile>.yaml`) and holds the PostgreSQL
//! connections every client may open to `max_connections`, and the requests of every pod to
//! the declared nodes, printing every line of arithmetic (docs/capacity.md).

mod connections;
mod data;
mod error;
mod haproxy;
mod merge;
mod quantity;
mod report;
mod resources;
mod values;

pub use connections::{HEADROOM_PERCENT, POOLER_ADMIN_CONNECTIONS};
pub use data::{POSTGRES_WORK_MEM_PERCENT, VALKEY_BASE_MIB, VALKEY_OVERHEAD_PERCENT};
pub use error::CapacityError;
pub use haproxy::{
    HAPROXY_BASE_MIB, HAPROXY_BUFFERS_PER_CONNECTION, HAPROXY_BUFFER_KIB,
    HAPROXY_CONNECTIONS_PER_THREAD, HAPROXY_CONNECTION_KIB, HAPROXY_CONNECTION_STATE_KIB,
};
pub use merge::merge;
pub use quantity::{parse_cpu, parse_memory};
pub use report::{Check, Report};
pub use resources::{
    Largest, Requests, MIN_SYSTEM_RESERVE_CPU, MIN_SYSTEM_RESERVE_MIB, SHUTDOWN_MANAGER_CPU,
    SHUTDOWN_MANAGER_MIB, SYSTEM_RESERVE_PERCENT,
};

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
    let (profile, values) = effective(chart, site, profile)?;
    let nodes = values
        .nodes
        .as_ref()
        .ok_or_else(|| CapacityError::NoNodes {
            site: site.to_path_buf(),
        })?;
    let mut checks = vec![connections::check(&values)];
    checks.extend(resources::checks(&values, nodes, &profile)?);
    checks.push(haproxy::check(&values, &profile)?);
    checks.push(data::valkey(&values, &profile)?);
    checks.push(data::postgres(&values, &profile)?);
    Ok(Report::new(profile, checks))
}

/// What the pods of `profile` (the site file's `profile` when `None`) request, summed over
/// every pod and for the largest one, with the same workloads and arithmetic as the `cpu`,
/// `memory`, `pod cpu` and `pod memory` checks of [`check`] (their totals), but without the
/// site's declared nodes: for comparing with a real cluster's nodes (the installer's
/// preflight).
pub fn requests(
    chart: &Path,
    site: &Path,
    profile: Option<&str>,
) -> Result<Requests, CapacityError> {
    let (profile, values) = effective(chart, site, profile)?;
    resources::requests(&values, &profile)
}

/// [`requests`] of values already layered (the chart's `values.yaml`, the site file and the
/// profile's file, as the installer's deploy plan merges them) for `profile`.
pub fn requests_of(values: &serde_norway::Value, profile: &str) -> Result<Requests, CapacityError> {
    let values: values::Values =
        serde_norway::from_value(values.clone()).map_err(|source| CapacityError::Values {
            profile: profile.to_string(),
            source,
        })?;
    resources::requests(&values, profile)
}

/// The profile and the effective values: the chart's `values.yaml`, the site file and
/// `profiles/<profile>.yaml`, layered as helm does.
fn effective(
    chart: &Path,
    site: &Path,
    profile: Option<&str>,
) -> Result<(String, values::Values), CapacityError> {
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
    Ok((profile, values))
}

/// Checks every profile of the chart on one site, smallest first.
pub fn check_all_profiles(chart: &Path, site: &Path) -> Result<Vec<Report>, CapacityError> {
    profiles(chart)?
        .iter()
        .map(|profile| check(chart, site, Some(profile)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `requests` is the checks' own arithmetic: its sums are the `cpu` and `memory` totals and
    /// its largest pods the `pod cpu` and `pod memory` totals, for every profile.
    #[test]
    fn requests_are_the_totals_of_the_resource_checks() {
        let root = test_support::workspace_root();
        let chart = root.join("charts/messenger");
        let site = root.join("tests/fixtures/site/site.yaml");
        for profile in profiles(&chart).unwrap() {
            let report = check(&chart, &site, Some(&profile)).unwrap();
            let total = |name: &str| {
                report
                    .checks
                    .iter()
                    .find(|c| c.name == name)
                    .map(|c| c.total)
                    .unwrap()
            };
            let requests = requests(&chart, &site, Some(&profile)).unwrap();
            assert_eq!(requests.profile, profile);
            assert_eq!(requests.cpu, total("cpu"), "{profile}");
            assert_eq!(requests.memory, total("memory"), "{profile}");
            assert_eq!(requests.largest_cpu.amount, total("pod cpu"), "{profile}");
            assert_eq!(
                requests.largest_memory.amount,
                total("pod memory"),
                "{profile}"
            );
            assert!(!requests.largest_cpu.workload.is_empty());
            assert!(requests.pods > 10, "{profile}: {}", requests.pods);
        }
        let r = requests(&chart, &site, None).unwrap();
        assert_eq!(r.profile, "1k");
        // The same from values layered by the caller.
        let mut layered = merge::layered(&[&chart.join("values.yaml"), &site]).unwrap();
        merge::merge(
            &mut layered,
            merge::read_values(&chart.join("profiles/1k.yaml")).unwrap(),
        );
        assert_eq!(requests_of(&layered, "1k").unwrap(), r);
        let error = requests_of(&serde_norway::Value::Null, "1k").unwrap_err();
        assert!(matches!(error, CapacityError::Values { .. }), "{error}");
    }
}
