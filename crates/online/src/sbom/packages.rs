//! The OS package databases an image carries, read as text: dpkg's `status` file (Debian,
//! Ubuntu) and apk's `installed` database (Alpine), plus `os-release` for the distribution.
//!
//! Formats: dpkg's status file is a series of RFC 822-style stanzas (deb-control(5), "Status"
//! in dpkg-query(1)); apk's database is one stanza per package of `X:value` lines (apk-tools
//! `src/database.c`, `apk_db_index_read`: `P` name, `V` version, `A` architecture, `o` origin,
//! `L` licence); os-release is os-release(5).

use std::collections::BTreeMap;

/// Where dpkg keeps its database.
pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
/// Where apk keeps its database.
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
/// os-release(5), first place.
pub const OS_RELEASE: &str = "etc/os-release";
/// os-release(5), the fallback.
pub const OS_RELEASE_USR: &str = "usr/lib/os-release";

/// Every path the layer walk looks for.
pub const WANTED: [&str; 4] = [DPKG_STATUS, APK_INSTALLED, OS_RELEASE, OS_RELEASE_USR];

/// Which package manager a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Manager {
    /// dpkg (purl type `deb`).
    Dpkg,
    /// apk (purl type `apk`).
    Apk,
}

/// One installed OS package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Package {
    /// The package name.
    pub name: String,
    /// Its version, as the package manager prints it.
    pub version: String,
    /// Its architecture (`amd64`, `x86_64`, `all`, `noarch`).
    pub arch: String,
    /// The source package (dpkg `Source`, apk `o`), when it differs from the name.
    pub source: Option<String>,
    /// Its licence, when the database records one (apk).
    pub license: Option<String>,
}

/// Stanzas of `Key: value` (dpkg) lines separated by blank lines; continuation lines (starting
/// with a space or tab) belong to the previous field and are skipped.
fn dpkg_stanzas(text: &str) -> Vec<BTreeMap<&str, &str>> {
    let mut stanzas = Vec::new();
    let mut current = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.insert(key.trim(), value.trim());
        }
    }
    if !current.is_empty() {
        stanzas.push(current);
    }
    stanzas
}

/// The packages of a dpkg status file whose files are on disk: every stanza but those whose
/// `Status` state is `not-installed` or `config-files` (a removed package whose configuration
/// files remain). Sorted by name, then architecture.
pub fn dpkg(text: &str) -> Vec<Package> {
    let mut packages: Vec<Package> = dpkg_stanzas(text)
        .into_iter()
        .filter_map(|s| {
            let name = s.get("Package")?;
            let state = s
                .get("Status")
                .and_then(|st| st.split_whitespace().nth(2))
                .unwrap_or("installed");
            if matches!(state, "not-installed" | "config-files") {
                return None;
            }
            // `Source: name (version)` names the source package, sometimes with its version.
            let source = s
                .get("Source")
                .and_then(|src| src.split_whitespace().next())
                .filter(|src| src != name)
                .map(str::to_string);
            Some(Package {
                name: (*name).to_string(),
                version: s.get("Version").copied().unwrap_or_default().to_string(),
                arch: s
                    .get("Architecture")
                    .copied()
                    .unwrap_or_default()
                    .to_string(),
                source,
                license: None,
            })
        })
        .collect();
    packages.sort();
    packages
}

/// The packages of apk's `installed` database, sorted by name.
pub fn apk(text: &str) -> Vec<Package> {
    let mut packages = Vec::new();
    let mut fields: BTreeMap<char, String> = BTreeMap::new();
    let mut flush = |fields: &mut BTreeMap<char, String>| {
        if let Some(name) = fields.get(&'P') {
            let source = fields.get(&'o').filter(|o| *o != name).cloned();
            packages.push(Package {
                name: name.clone(),
                version: fields.get(&'V').cloned().unwrap_or_default(),
                arch: fields.get(&'A').cloned().unwrap_or_default(),
                source,
                license: fields.get(&'L').cloned(),
            });
        }
        fields.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut fields);
            continue;
        }
        let mut chars = line.chars();
        if let (Some(key), Some(':')) = (chars.next(), chars.next()) {
            // File lines (F, R, M, a, Z) repeat; only the package's own fields matter here.
            if matches!(key, 'P' | 'V' | 'A' | 'o' | 'L') {
                fields.insert(key, chars.as_str().to_string());
            }
        }
    }
    flush(&mut fields);
    packages.sort();
    packages
}

/// `ID` and `VERSION_ID` of an os-release file.
pub fn os_release(text: &str) -> (Option<String>, Option<String>) {
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']).to_string();
        match key.trim() {
            "ID" => id = Some(value),
            "VERSION_ID" => version = Some(value),
            _ => {}
        }
    }
    (id, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_keeps_installed_packages_and_their_source() {
        let text = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Source: glibc (2.36-9)\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n \
continuation: not a field\n\nPackage: gone\nStatus: deinstall ok config-files\n\
Version: 1\nArchitecture: all\n\nPackage: base-files\nStatus: install ok installed\n\
Version: 12.4\nArchitecture: amd64\n";
        let packages = dpkg(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "base-files");
        assert_eq!(packages[1].name, "libc6");
        assert_eq!(packages[1].version, "2.36-9+deb12u4");
        assert_eq!(packages[1].source.as_deref(), Some("glibc"));
    }

    #[test]
    fn apk_reads_name_version_arch_origin_and_licence() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
P:busybox-binsh\nV:1.36.1-r29\nA:x86_64\nL:GPL-2.0-only\no:busybox\n";
        let packages = apk(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "busybox-binsh");
        assert_eq!(packages[0].source.as_deref(), Some("busybox"));
        assert_eq!(packages[1].name, "musl");
        assert_eq!(packages[1].source, None);
        assert_eq!(packages[1].license.as_deref(), Some("MIT"));
    }

    #[test]
    fn os_release_id_and_version() {
        let (id, version) = os_release("NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n");
        assert_eq!(
            (id.as_deref(), version.as_deref()),
            (Some("alpine"), Some("3.20.3"))
        );
    }
}
