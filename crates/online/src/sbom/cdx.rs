//! The part of CycloneDX 1.6 JSON the bill of materials uses (CycloneDX 1.6 JSON schema,
//! `bom-1.6.schema.json`), and package URLs (purl-spec: the `oci`, `deb` and `apk` types).
//! The same structs read a bill back for `bundle diff`.

use serde::{Deserialize, Serialize};

/// The schema a document names.
pub const SCHEMA: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";
/// Property names this project gives components, under its own namespace.
pub mod prop {
    /// What a top-level component is: `image`, `clamav-image`, `chart`, `tool`, `clamav`,
    /// `file`.
    pub const KIND: &str = "messenger:kind";
    /// An image's full reference as images.toml names it.
    pub const REFERENCE: &str = "messenger:reference";
    /// An image's tag.
    pub const TAG: &str = "messenger:tag";
    /// The index the bundle carries when it leaves platforms out of the registry's.
    pub const BUNDLED_INDEX: &str = "messenger:bundled-index";
    /// A platform (`linux/amd64`).
    pub const PLATFORM: &str = "messenger:platform";
    /// A platform image's config digest.
    pub const CONFIG: &str = "messenger:config";
    /// One layer digest of a platform image, in order, bottom first.
    pub const LAYER: &str = "messenger:layer";
    /// Where a platform image's packages came from (`dpkg`, `apk`), or why none are listed.
    pub const PACKAGES: &str = "messenger:packages";
    /// The distribution from os-release (`debian 12`).
    pub const OS: &str = "messenger:os";
    /// Where a chart, tool or file came from.
    pub const SOURCE: &str = "messenger:source";
    /// A member's path in the bundle.
    pub const PATH: &str = "messenger:path";
    /// A chart's OCI artifact manifest in the bundle's layout.
    pub const ARTIFACT: &str = "messenger:artifact";
}

/// A CycloneDX document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bom {
    /// The JSON schema.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Always `CycloneDX`.
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    /// `1.6`.
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    /// The document's version, 1.
    pub version: u32,
    /// What the document describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// The components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// Which component depends on which.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// The document's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// When the bundle was built (the lock's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The tool that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Tools>,
    /// The bundle itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
}

/// `metadata.tools` in the 1.5+ form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    /// The tools, as components.
    #[serde(default)]
    pub components: Vec<Component>,
}

/// One component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// `container`, `application`, `library`, `data`, `file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique within the document.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// The name.
    pub name: String,
    /// The version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Licences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    /// The package URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Hashes of the component's bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// Where it was downloaded from.
    #[serde(
        rename = "externalReferences",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_references: Vec<ExternalReference>,
    /// Name-value facts of this project's own (see [`prop`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// Components inside this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// A hash of a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hash {
    /// `SHA-256`.
    pub alg: String,
    /// Lower-case hex.
    pub content: String,
}

/// A licence, by name as the package database gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseChoice {
    /// The licence.
    pub license: License,
}

/// A named licence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    /// The name.
    pub name: String,
}

/// An external reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalReference {
    /// `distribution`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The URL.
    pub url: String,
}

/// A property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Property {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
}

/// One node of the dependency graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// The component's `bom-ref`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The `bom-ref`s it depends on.
    #[serde(rename = "dependsOn", default)]
    pub depends_on: Vec<String>,
}

impl Component {
    /// The value of the first property `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// Every value of property `name`, in order.
    pub fn properties_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.properties
            .iter()
            .filter(move |p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// The SHA-256 hash, if the component has one.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes
            .iter()
            .find(|h| h.alg == "SHA-256")
            .map(|h| h.content.as_str())
    }

    /// Adds property `name` = `value`.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Component {
        self.properties.push(Property {
            name: name.to_string(),
            value: value.into(),
        });
        self
    }
}

/// A SHA-256 hash entry of lower-case hex `content`.
pub fn sha256(content: &str) -> Hash {
    Hash {
        alg: "SHA-256".to_string(),
        content: content.to_string(),
    }
}

/// Percent-encodes `text` for a purl component: everything but ASCII letters, digits and
/// `.-_~` (purl-spec, "Character encoding"); `keep` lists further characters left as they are.
fn encode(text: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A purl `pkg:TYPE[/NAMESPACE]/NAME@VERSION[?QUALIFIERS]`; qualifiers are sorted by key
/// and those with empty values left out, as the spec's canonical form asks.
pub fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(namespace) = namespace {
        out.push_str(&encode(namespace, b""));
        out.push('/');
    }
    out.push_str(&encode(name, b""));
    out.push('@');
    out.push_str(&encode(version, b""));
    let mut qualifiers: Vec<_> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qualifiers.sort();
    for (i, (key, value)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        // The spec's own oci examples keep `/` (and a registry's `:port`) unencoded here.
        out.push_str(&encode(value, b"/:"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_follow_the_spec_examples() {
        assert_eq!(
            purl(
                "oci",
                None,
                "debian",
                "sha256:244fd47e07d10",
                &[
                    ("tag", "latest"),
                    ("repository_url", "docker.io/library/debian"),
                    ("arch", "amd64"),
                ]
            ),
            "pkg:oci/debian@sha256%3A244fd47e07d10?arch=amd64&repository_url=docker.io/library/debian&tag=latest"
        );
        assert_eq!(
            purl(
                "deb",
                Some("debian"),
                "libstdc++6",
                "1:12.2.0-14+deb12u1",
                &[("arch", "amd64")]
            ),
            "pkg:deb/debian/libstdc%2B%2B6@1%3A12.2.0-14%2Bdeb12u1?arch=amd64"
        );
    }
}
