//! `bundle diff`: what changed between two bundles (their bills of materials) or two locks,
//! or one of each. Images are matched by name (registry and repository) and kind; a changed
//! tag or digest is a change, and where both sides list the OS packages of a platform, the
//! packages added, removed and changed. Charts, tools, ClamAV databases and files are matched
//! by name (tools by name and platform).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::cdx::{prop, Bom, Component};
use crate::spec::Lock;

/// What one side holds, from a bill or a lock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    /// Images, sorted by (kind, name, tag).
    pub images: Vec<ImageItem>,
    /// Charts by name.
    pub charts: BTreeMap<String, Item>,
    /// Tools by `name (platform)`.
    pub tools: BTreeMap<String, Item>,
    /// ClamAV databases by file name.
    pub clamav: BTreeMap<String, Item>,
    /// Files by name.
    pub files: BTreeMap<String, Item>,
}

/// One image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageItem {
    /// `image`, `clamav-image` for the signature-database image or `files-image` for the
    /// download page's.
    pub kind: String,
    /// `registry/repository`.
    pub name: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest the reference resolved to.
    pub digest: String,
    /// Packages per platform, `(name, arch)` to version, where the bill lists them.
    pub packages: BTreeMap<String, BTreeMap<(String, String), String>>,
}

/// A chart, tool, database or file: its version (if it has one) and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// The version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// The images' tag and digest on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageVersion {
    /// The tag.
    pub tag: Option<String>,
    /// The digest.
    pub digest: String,
}

/// One image added, removed or changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageChange {
    /// `image`, `clamav-image` or `files-image`.
    pub kind: String,
    /// `registry/repository`.
    pub name: String,
    /// Before (absent: added).
    pub old: Option<ImageVersion>,
    /// After (absent: removed).
    pub new: Option<ImageVersion>,
    /// Package changes per platform, where both sides list packages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<PlatformPackages>,
}

/// The package changes of one platform image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlatformPackages {
    /// `linux/amd64`.
    pub platform: String,
    /// Each package added (no `old`), removed (no `new`) or of another version.
    pub changes: Vec<PackageChange>,
}

/// One package change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// Package name.
    pub name: String,
    /// Architecture.
    pub arch: String,
    /// Version before.
    pub old: Option<String>,
    /// Version after.
    pub new: Option<String>,
}

/// A chart, tool, database or file added, removed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    /// Its name.
    pub name: String,
    /// Before (absent: added).
    pub old: Option<Item>,
    /// After (absent: removed).
    pub new: Option<Item>,
}

/// Everything that differs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    /// Whether anything differs.
    pub changed: bool,
    /// Images.
    pub images: Vec<ImageChange>,
    /// Charts.
    pub charts: Vec<ItemChange>,
    /// Tools.
    pub tools: Vec<ItemChange>,
    /// ClamAV databases.
    pub clamav: Vec<ItemChange>,
    /// Files.
    pub files: Vec<ItemChange>,
}

impl Inventory {
    /// What a bill of materials lists.
    pub fn from_bom(bom: &Bom) -> Inventory {
        let mut inventory = Inventory::default();
        for c in &bom.components {
            let item = || Item {
                version: c.version.clone(),
                sha256: c.sha256().unwrap_or_default().to_string(),
            };
            match c.property(prop::KIND) {
                Some(kind @ ("image" | "clamav-image" | "files-image")) => {
                    inventory.images.push(image_of(kind, c));
                }
                Some("chart") => {
                    inventory.charts.insert(c.name.clone(), item());
                }
                Some("tool") => {
                    let platform = c.property(prop::PLATFORM).unwrap_or_default();
                    inventory
                        .tools
                        .insert(format!("{} ({platform})", c.name), item());
                }
                Some("clamav") => {
                    inventory.clamav.insert(c.name.clone(), item());
                }
                Some("file") => {
                    inventory.files.insert(c.name.clone(), item());
                }
                _ => {}
            }
        }
        inventory.images.sort_by(|a, b| key(a).cmp(&key(b)));
        inventory
    }

    /// What a lock pins (its images, upstream charts, tools, ClamAV databases and files; no
    /// packages, no own charts, no signature image: only a bundle's bill has those).
    pub fn from_lock(lock: &Lock) -> Inventory {
        let mut inventory = Inventory::default();
        for image in &lock.images {
            inventory.images.push(ImageItem {
                kind: "image".into(),
                name: image.reference.name(),
                tag: image.reference.tag.clone(),
                digest: image.root_digest().to_string(),
                packages: BTreeMap::new(),
            });
        }
        inventory.images.sort_by(|a, b| key(a).cmp(&key(b)));
        for chart in &lock.charts {
            inventory.charts.insert(
                chart.name.clone(),
                Item {
                    version: Some(chart.version.clone()),
                    sha256: chart.digest.hex().to_string(),
                },
            );
        }
        for tool in &lock.tools {
            inventory.tools.insert(
                format!("{} ({})", tool.name, tool.platform),
                Item {
                    version: Some(tool.version.clone()),
                    sha256: tool.sha256.hex().to_string(),
                },
            );
        }
        for db in &lock.clamav {
            inventory.clamav.insert(
                db.file.clone(),
                Item {
                    version: Some(db.version.to_string()),
                    sha256: db.sha256.hex().to_string(),
                },
            );
        }
        for file in &lock.files {
            inventory.files.insert(
                file.name.clone(),
                Item {
                    version: None,
                    sha256: file.sha256.hex().to_string(),
                },
            );
        }
        inventory
    }
}

fn key(image: &ImageItem) -> (&str, &str, Option<&str>) {
    (&image.kind, &image.name, image.tag.as_deref())
}

fn image_of(kind: &str, c: &Component) -> ImageItem {
    let mut packages = BTreeMap::new();
    for platform in &c.components {
        let Some(name) = platform.property(prop::PLATFORM) else {
            continue;
        };
        // Only a platform whose database was read lists packages (an empty list included).
        let read = platform
            .property(prop::PACKAGES)
            .is_some_and(|s| !s.starts_with("not read"));
        if !read {
            continue;
        }
        let list: BTreeMap<(String, String), String> = platform
            .components
            .iter()
            .map(|p| {
                let arch = p
                    .purl
                    .as_deref()
                    .and_then(|u| u.split_once("arch="))
                    .map(|(_, a)| a.split('&').next().unwrap_or(a).to_string())
                    .unwrap_or_default();
                (
                    (p.name.clone(), arch),
                    p.version.clone().unwrap_or_default(),
                )
            })
            .collect();
        packages.insert(name.to_string(), list);
    }
    ImageItem {
        kind: kind.to_string(),
        name: c.name.clone(),
        tag: c.property(prop::TAG).map(str::to_string),
        digest: c
            .sha256()
            .map(|h| format!("sha256:{h}"))
            .unwrap_or_default(),
        packages,
    }
}

/// What differs from `old` to `new`.
pub fn diff(old: &Inventory, new: &Inventory) -> Diff {
    let mut result = Diff {
        images: diff_images(&old.images, &new.images),
        charts: diff_items(&old.charts, &new.charts),
        tools: diff_items(&old.tools, &new.tools),
        clamav: diff_items(&old.clamav, &new.clamav),
        files: diff_items(&old.files, &new.files),
        changed: false,
    };
    result.changed = !(result.images.is_empty()
        && result.charts.is_empty()
        && result.tools.is_empty()
        && result.clamav.is_empty()
        && result.files.is_empty());
    result
}

fn diff_items(old: &BTreeMap<String, Item>, new: &BTreeMap<String, Item>) -> Vec<ItemChange> {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (o, n) = (old.get(name), new.get(name));
            (o != n).then(|| ItemChange {
                name: name.clone(),
                old: o.cloned(),
                new: n.cloned(),
            })
        })
        .collect()
}

/// Images are paired by kind and name: the same tag first, then what is left in tag order.
fn diff_images(old: &[ImageItem], new: &[ImageItem]) -> Vec<ImageChange> {
    type Sides<'a> = (Vec<&'a ImageItem>, Vec<&'a ImageItem>);
    let mut groups: BTreeMap<(&str, &str), Sides<'_>> = BTreeMap::new();
    for image in old {
        groups
            .entry((&image.kind, &image.name))
            .or_default()
            .0
            .push(image);
    }
    for image in new {
        groups
            .entry((&image.kind, &image.name))
            .or_default()
            .1
            .push(image);
    }
    let mut changes = Vec::new();
    for ((kind, name), (mut olds, mut news)) in groups {
        let mut pairs = Vec::new();
        olds.retain(|o| match news.iter().position(|n| n.tag == o.tag) {
            Some(i) => {
                pairs.push((Some(*o), Some(news.remove(i))));
                false
            }
            None => true,
        });
        let mut olds = olds.into_iter();
        let mut news = news.into_iter();
        loop {
            match (olds.next(), news.next()) {
                (None, None) => break,
                (o, n) => pairs.push((o, n)),
            }
        }
        for (o, n) in pairs {
            let version = |i: &ImageItem| ImageVersion {
                tag: i.tag.clone(),
                digest: i.digest.clone(),
            };
            let packages = match (o, n) {
                (Some(o), Some(n)) => diff_packages(o, n),
                _ => Vec::new(),
            };
            let same = match (o, n) {
                (Some(o), Some(n)) => o.tag == n.tag && o.digest == n.digest,
                _ => false,
            };
            if same && packages.is_empty() {
                continue;
            }
            changes.push(ImageChange {
                kind: kind.to_string(),
                name: name.to_string(),
                old: o.map(version),
                new: n.map(version),
                packages,
            });
        }
    }
    changes
}

fn diff_packages(old: &ImageItem, new: &ImageItem) -> Vec<PlatformPackages> {
    let mut out = Vec::new();
    for (platform, before) in &old.packages {
        let Some(after) = new.packages.get(platform) else {
            continue;
        };
        let mut keys: Vec<&(String, String)> = before.keys().chain(after.keys()).collect();
        keys.sort();
        keys.dedup();
        let changes: Vec<PackageChange> = keys
            .into_iter()
            .filter_map(|k| {
                let (o, n) = (before.get(k), after.get(k));
                (o != n).then(|| PackageChange {
                    name: k.0.clone(),
                    arch: k.1.clone(),
                    old: o.cloned(),
                    new: n.cloned(),
                })
            })
            .collect();
        if !changes.is_empty() {
            out.push(PlatformPackages {
                platform: platform.clone(),
                changes,
            });
        }
    }
    out
}

/// The diff as text for people: one section per kind of thing, `+` added, `-` removed, `~`
/// changed.
pub fn human(diff: &Diff) -> String {
    let mut t = String::new();
    if !diff.changed {
        t.push_str("no differences\n");
        return t;
    }
    if !diff.images.is_empty() {
        t.push_str("images:\n");
        for c in &diff.images {
            let label = if c.kind == "image" {
                c.name.clone()
            } else {
                format!("{} ({})", c.name, c.kind)
            };
            let show = |v: &ImageVersion| match &v.tag {
                Some(tag) => format!("{tag} {}", v.digest),
                None => v.digest.clone(),
            };
            match (&c.old, &c.new) {
                (None, Some(n)) => {
                    let _ = writeln!(t, "  + {label} {}", show(n));
                }
                (Some(o), None) => {
                    let _ = writeln!(t, "  - {label} {}", show(o));
                }
                (Some(o), Some(n)) => {
                    let mut parts = Vec::new();
                    if o.tag != n.tag {
                        parts.push(format!(
                            "tag {} -> {}",
                            o.tag.as_deref().unwrap_or("(none)"),
                            n.tag.as_deref().unwrap_or("(none)")
                        ));
                    }
                    if o.digest != n.digest {
                        parts.push(format!("digest {} -> {}", o.digest, n.digest));
                    }
                    let _ = writeln!(t, "  ~ {label}: {}", parts.join(", "));
                }
                (None, None) => {}
            }
            for platform in &c.packages {
                let _ = writeln!(t, "      {} packages:", platform.platform);
                for p in &platform.changes {
                    let _ = match (&p.old, &p.new) {
                        (None, Some(n)) => writeln!(t, "        + {} {n} ({})", p.name, p.arch),
                        (Some(o), None) => writeln!(t, "        - {} {o} ({})", p.name, p.arch),
                        (Some(o), Some(n)) => {
                            writeln!(t, "        ~ {} {o} -> {n} ({})", p.name, p.arch)
                        }
                        (None, None) => Ok(()),
                    };
                }
            }
        }
    }
    for (title, list) in [
        ("charts", &diff.charts),
        ("tools", &diff.tools),
        ("clamav", &diff.clamav),
        ("files", &diff.files),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(t, "{title}:");
        for c in list {
            let show = |i: &Item| match &i.version {
                Some(v) => format!("{v} (sha256:{})", i.sha256),
                None => format!("sha256:{}", i.sha256),
            };
            let _ = match (&c.old, &c.new) {
                (None, Some(n)) => writeln!(t, "  + {} {}", c.name, show(n)),
                (Some(o), None) => writeln!(t, "  - {} {}", c.name, show(o)),
                (Some(o), Some(n)) => writeln!(t, "  ~ {} {} -> {}", c.name, show(o), show(n)),
                (None, None) => Ok(()),
            };
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(name: &str, tag: &str, digest: &str, packages: &[(&str, &str)]) -> ImageItem {
        ImageItem {
            kind: "image".into(),
            name: name.into(),
            tag: Some(tag.into()),
            digest: digest.into(),
            packages: BTreeMap::from([(
                "linux/amd64".to_string(),
                packages
                    .iter()
                    .map(|(n, v)| ((n.to_string(), "amd64".to_string()), v.to_string()))
                    .collect(),
            )]),
        }
    }

    #[test]
    fn images_pair_by_name_and_tag_and_list_package_changes() {
        let old = Inventory {
            images: vec![
                image("r/a", "1", "sha256:a1", &[("libc", "1"), ("gone", "1")]),
                image("r/b", "1", "sha256:b1", &[]),
                image("r/old", "1", "sha256:o", &[]),
            ],
            ..Inventory::default()
        };
        let new = Inventory {
            images: vec![
                image("r/a", "1", "sha256:a2", &[("libc", "2"), ("new", "1")]),
                image("r/b", "2", "sha256:b1", &[]),
                image("r/new", "1", "sha256:n", &[]),
            ],
            ..Inventory::default()
        };
        let d = diff(&old, &new);
        assert!(d.changed);
        let names: Vec<(&str, bool, bool)> = d
            .images
            .iter()
            .map(|c| (c.name.as_str(), c.old.is_some(), c.new.is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("r/a", true, true),
                ("r/b", true, true),
                ("r/new", false, true),
                ("r/old", true, false)
            ]
        );
        let a = &d.images[0].packages[0].changes;
        assert_eq!(a.len(), 3);
        assert_eq!((a[0].name.as_str(), a[0].new.as_deref()), ("gone", None));
        assert_eq!(
            (a[1].old.as_deref(), a[1].new.as_deref()),
            (Some("1"), Some("2"))
        );
        assert!(human(&d).contains("~ r/b: tag 1 -> 2\n"));
        assert!(!diff(&new, &new).changed);
        assert_eq!(human(&diff(&old, &old)), "no differences\n");
    }
}
