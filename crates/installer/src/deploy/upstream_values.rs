//! The values files of the upstream releases (`charts/upstream/*.yaml`): compiled into the
//! installer with `releases.toml`, which names them, and written into the work directory for
//! helm when the plan renders those releases. What each file sets: docs/upstream-values.md.

use std::path::{Path, PathBuf};

use online::spec::Release;

use super::DeployError;

/// Every values file `releases.toml` names for an upstream release: the path as
/// `releases.toml` writes it, and the file's text.
pub const FILES: &[(&str, &str)] = &[
    (
        "charts/upstream/cert-manager.yaml",
        include_str!("../../../../charts/upstream/cert-manager.yaml"),
    ),
    (
        "charts/upstream/cnpg.yaml",
        include_str!("../../../../charts/upstream/cnpg.yaml"),
    ),
    (
        "charts/upstream/barman-cloud.yaml",
        include_str!("../../../../charts/upstream/barman-cloud.yaml"),
    ),
    (
        "charts/upstream/monitoring.yaml",
        include_str!("../../../../charts/upstream/monitoring.yaml"),
    ),
    (
        "charts/upstream/loki.yaml",
        include_str!("../../../../charts/upstream/loki.yaml"),
    ),
    (
        "charts/upstream/alloy.yaml",
        include_str!("../../../../charts/upstream/alloy.yaml"),
    ),
    (
        "charts/upstream/gateway.yaml",
        include_str!("../../../../charts/upstream/gateway.yaml"),
    ),
];

/// The compiled-in text of the values file `written` (as `releases.toml` writes it).
pub fn text(written: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(path, _)| *path == written)
        .map(|(_, text)| *text)
}

/// Writes the values files of `release` under `dir` (each at its `releases.toml` path below
/// it) and returns their paths, in the release's order. A file this installer does not carry
/// is an error naming the release and the line of `releases.toml` that names the file.
pub fn write(release: &Release, dir: &Path) -> Result<Vec<PathBuf>, DeployError> {
    let mut paths = Vec::with_capacity(release.values.len());
    for file in &release.values {
        let text = text(&file.written).ok_or_else(|| DeployError::Bundle {
            what: format!(
                "release {} (releases.toml line {})",
                release.name, file.line
            ),
            message: format!(
                "values file {} is not compiled into this installer (it carries: {})",
                file.written,
                FILES
                    .iter()
                    .map(|(path, _)| *path)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        // Only paths of FILES get here: relative, without `..`, so they stay below `dir`.
        let path = dir.join(&file.written);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| DeployError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| DeployError::io(&path, e))?;
        paths.push(path);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Component;

    use online::spec::{RenderPlan, LOCKED_PREFIX};

    use super::*;

    /// The releases that get their `values` from this table: all but the site's release,
    /// which takes the site file and its profile instead.
    fn upstream(plan: &RenderPlan) -> Vec<&Release> {
        plan.releases.iter().filter(|r| !r.profiles).collect()
    }

    #[test]
    fn releases_toml_and_the_table_name_the_same_files() {
        let plan = super::super::releases().unwrap();
        let named: BTreeSet<&str> = upstream(&plan)
            .iter()
            .flat_map(|r| r.values.iter().map(|v| v.written.as_str()))
            .collect();
        let carried: BTreeSet<&str> = FILES.iter().map(|(path, _)| *path).collect();
        let not_carried: Vec<_> = named.difference(&carried).collect();
        assert!(
            not_carried.is_empty(),
            "releases.toml names values files upstream_values::FILES does not carry: \
             {not_carried:?}"
        );
        let not_named: Vec<_> = carried.difference(&named).collect();
        assert!(
            not_named.is_empty(),
            "upstream_values::FILES carries files releases.toml does not name: {not_named:?}"
        );
        assert_eq!(carried.len(), FILES.len(), "a file is listed twice");
    }

    #[test]
    fn every_upstream_release_has_a_values_file_of_its_own() {
        let plan = super::super::releases().unwrap();
        for release in upstream(&plan) {
            assert!(
                release.chart.written.starts_with(LOCKED_PREFIX),
                "{} is not a locked chart",
                release.name
            );
            let own = format!("charts/upstream/{}.yaml", release.name);
            assert!(
                release.values.iter().any(|v| v.written == own),
                "release {} (releases.toml line {}) does not name {own}",
                release.name,
                release.line
            );
        }
    }

    #[test]
    fn the_table_holds_the_files_as_they_are_on_disk() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        for (path, text) in FILES {
            assert!(
                Path::new(path)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{path} is not a plain relative path"
            );
            let on_disk = std::fs::read_to_string(root.join(path)).unwrap();
            assert_eq!(&on_disk, text, "{path}");
        }
    }

    #[test]
    fn write_puts_every_file_of_a_release_in_order_and_refuses_unknown_ones() {
        let plan = super::super::releases().unwrap();
        let monitoring = plan
            .releases
            .iter()
            .find(|r| r.name == "monitoring")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = write(monitoring, dir.path()).unwrap();
        assert_eq!(
            paths,
            [dir.path().join("charts/upstream/monitoring.yaml")],
            "one file, at its releases.toml path"
        );
        assert_eq!(
            std::fs::read_to_string(&paths[0]).unwrap(),
            text("charts/upstream/monitoring.yaml").unwrap()
        );

        let mut unknown = monitoring.clone();
        let mut extra = unknown.values[0].clone();
        extra.written = "charts/upstream/extra.yaml".into();
        extra.line = 99;
        unknown.values.push(extra);
        let e = write(&unknown, dir.path()).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "release monitoring (releases.toml line 99): values file \
                 charts/upstream/extra.yaml is not compiled into this installer"
            ),
            "{e}"
        );
    }
}
