//! Target platforms: as images.toml and manifests.lock write them (`os/arch[/variant]`,
//! checked against Go's names) and as OCI index entries carry them (a JSON object, taken as
//! it is: indexes also list attestation manifests for `unknown/unknown`).

use std::fmt;
use std::str::FromStr;

/// Operating systems a platform may name (Go's `GOOS` values, as the OCI image index
/// specification uses them).
pub const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "illumos",
    "ios",
    "js",
    "linux",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
];

/// CPU architectures a platform may name (Go's `GOARCH` values, as the OCI image index
/// specification uses them).
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le", "mipsle", "ppc64",
    "ppc64le", "riscv64", "s390x", "wasm",
];

/// A target platform: `linux/amd64`, `linux/arm64`, `linux/arm/v7`.
///
/// Ordered by os, then architecture, then variant (none first), which is the order the lock
/// file lists platforms in. `linux/arm64` and `linux/arm64/v8` are different values here:
/// matching a requested platform against what a registry's index offers (where containerd
/// treats them as one) is the resolver's job, not this type's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, one of [`KNOWN_OS`].
    pub os: String,
    /// CPU architecture, one of [`KNOWN_ARCHITECTURES`].
    pub architecture: String,
    /// CPU variant (`v7`, `v8`), if any.
    pub variant: Option<String>,
}

/// Why a platform does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: {reason}")]
pub struct PlatformError {
    /// The text given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

impl Platform {
    /// Whether an index entry for `self` serves `wanted`: same OS and architecture, and the
    /// same variant when one is asked for.
    pub fn serves(&self, wanted: &Platform) -> bool {
        wanted.os == self.os
            && wanted.architecture == self.architecture
            && (wanted.variant.is_none() || wanted.variant == self.variant)
    }

    /// `linux/<architecture>` without a variant.
    pub fn linux(architecture: &str) -> Platform {
        Platform {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(input: &str) -> Result<Platform, PlatformError> {
        let fail = |reason: String| PlatformError {
            input: input.to_string(),
            reason,
        };
        let parts: Vec<&str> = input.split('/').collect();
        let (os, architecture, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(*variant)),
            _ => {
                return Err(fail(
                    "expected os/architecture or os/architecture/variant, e.g. linux/amd64"
                        .to_string(),
                ))
            }
        };
        if !KNOWN_OS.contains(&os) {
            return Err(fail(format!(
                "unknown operating system {os:?} (known: {})",
                KNOWN_OS.join(", ")
            )));
        }
        if !KNOWN_ARCHITECTURES.contains(&architecture) {
            return Err(fail(format!(
                "unknown architecture {architecture:?} (known: {})",
                KNOWN_ARCHITECTURES.join(", ")
            )));
        }
        if let Some(variant) = variant {
            let ok = !variant.is_empty()
                && variant.len() <= 16
                && variant
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                return Err(fail(format!(
                    "variant {variant:?} must be lower-case letters and digits, e.g. v7"
                )));
            }
        }
        Ok(Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// The `platform` object of an OCI index entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct PlatformJson {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        PlatformJson {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Platform, D::Error> {
        let json = PlatformJson::deserialize(deserializer)?;
        Ok(Platform {
            os: json.os,
            architecture: json.architecture,
            variant: json.variant,
        })
    }
}

/// Platforms joined with `", "` for messages; `none` for an empty list.
pub fn list(platforms: &[Platform]) -> String {
    if platforms.is_empty() {
        return "none".to_string();
    }
    platforms
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        for text in [
            "linux/amd64",
            "linux/arm64",
            "linux/arm64/v8",
            "linux/arm/v7",
        ] {
            let p: Platform = text.parse().unwrap();
            assert_eq!(p.to_string(), text);
        }
        let p: Platform = "linux/arm/v7".parse().unwrap();
        assert_eq!(p.os, "linux");
        assert_eq!(p.architecture, "arm");
        assert_eq!(p.variant.as_deref(), Some("v7"));
        assert_eq!(Platform::linux("amd64").to_string(), "linux/amd64");
    }

    #[test]
    fn refuses_malformed_and_unknown() {
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/",
            "linux/amd64/v8/x",
            "Linux/amd64",
            "linux/x86_64",
            "linux/aarch64",
            "plan10/amd64",
            "linux/arm/V7",
            "unknown/unknown",
            " linux/amd64",
        ] {
            assert!(bad.parse::<Platform>().is_err(), "{bad:?}");
        }
        let err = "linux".parse::<Platform>().unwrap_err();
        assert!(err.to_string().starts_with("invalid platform \"linux\""));
        let err = "linux/x86_64".parse::<Platform>().unwrap_err();
        assert!(err.to_string().contains("unknown architecture \"x86_64\""));
    }

    #[test]
    fn orders_by_os_architecture_variant() {
        let mut v: Vec<Platform> = [
            "linux/arm64/v8",
            "linux/arm64",
            "linux/amd64",
            "linux/arm/v7",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        v.sort();
        assert_eq!(
            list(&v),
            "linux/amd64, linux/arm/v7, linux/arm64, linux/arm64/v8"
        );
        assert_eq!(list(&[]), "none");
    }
}
