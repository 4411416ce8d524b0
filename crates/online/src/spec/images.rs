//! `images.toml`: every image the stack runs, written by hand by the release engineer.
//!
//! ```toml
//! platforms = ["linux/amd64", "linux/arm64"]      # default for every image
//!
//! [registries."registry.corp:5000"]
//! insecure = true                                  # plain HTTP, or TLS without verification
//! mirror = "proxy.corp:5000"                       # fetch this registry's images via a mirror
//!                                                  # (host[:port], or host[:port]/prefix as
//!                                                  # Harbor proxy caches are addressed)
//!
//! [[images]]
//! ref = "docker.io/matrixdotorg/synapse:v1.142.0"  # NAME:TAG, NAME@sha256:..., or both
//! platforms = ["linux/amd64"]                      # per-image override
//! ```
//!
//! Rules, each reported as `FILE:LINE[:COLUMN]: message`: unknown keys are errors; every
//! reference parses and names a tag or a digest (no implicit `latest`); no image is listed
//! twice (same repository and tag, or same repository and digest); every image ends up with
//! at least one platform, from the top-level default or its own list, and no list names a
//! platform twice; every `[registries."HOST"]` entry names a registry some image comes from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::{line_of, read_text, Location, SpecError};
use oci::Platform;
use oci::{Reference, DOCKER_HUB};

/// A parsed and validated `images.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagesFile {
    /// The file it was read from (used in messages).
    pub path: PathBuf,
    /// The default platforms (top-level `platforms`), sorted; empty when the file sets none,
    /// in which case every image has its own list.
    pub platforms: Vec<Platform>,
    /// Per-registry settings, keyed by registry host as image references name it
    /// (`docker.io`, `registry.corp:5000`).
    pub registries: BTreeMap<String, RegistrySettingsSpec>,
    /// The images, in file order.
    pub images: Vec<ImageSpec>,
    /// The `[clamav]` table, when the bundle carries signature databases.
    pub clamav: Option<super::clamav::ClamavSpec>,
}

/// How to reach one source registry (`[registries."HOST"]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegistrySettingsSpec {
    /// Plain HTTP, or TLS without certificate verification.
    pub insecure: bool,
    /// Fetch this registry's images through a mirror: `host[:port]`, optionally followed by a
    /// path prefix (`harbor.corp/dockerhub-proxy`); no scheme.
    pub mirror: Option<String>,
    /// Line of the `[registries."HOST"]` header.
    pub line: usize,
}

/// One `[[images]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The normalised reference (`haproxy:3.2` becomes `docker.io/library/haproxy:3.2`).
    pub reference: Reference,
    /// The reference as written in the file.
    pub written: String,
    /// The platforms to carry: the image's own `platforms`, or the file's default; sorted.
    pub platforms: Vec<Platform>,
    /// Line of the entry's `ref`.
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    registries: BTreeMap<Spanned<String>, Spanned<RawRegistry>>,
    #[serde(default)]
    images: Vec<Spanned<RawImage>>,
    clamav: Option<super::clamav::RawClamav>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    insecure: bool,
    mirror: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    #[serde(rename = "ref")]
    reference: Spanned<String>,
    platforms: Option<Spanned<Vec<Spanned<String>>>>,
}

impl ImagesFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<ImagesFile, SpecError> {
        let text = read_text(path)?;
        ImagesFile::parse(&text, path)
    }

    /// Parses `text`; `path` names the file in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<ImagesFile, SpecError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| SpecError::from_toml(&e, text, path))?;
        let at = |span: std::ops::Range<usize>| Location::line(path, line_of(text, span.start));

        let platforms = match &raw.platforms {
            Some(list) => parse_platforms(list, text, path)?,
            None => Vec::new(),
        };

        let mut images: Vec<ImageSpec> = Vec::with_capacity(raw.images.len());
        for entry in &raw.images {
            let entry = entry.get_ref();
            let written = entry.reference.get_ref().clone();
            let line = line_of(text, entry.reference.span().start);
            let reference = Reference::parse(&written).map_err(|e| {
                SpecError::invalid(
                    at(entry.reference.span()),
                    format!("invalid image reference {written:?}: {}", e.reason),
                )
            })?;
            if !names_tag_or_digest(&written) {
                return Err(SpecError::invalid(
                    at(entry.reference.span()),
                    format!(
                        "image reference {written:?} names no tag or digest (write the tag to \
                         carry, e.g. {}:1.2.3; an implicit latest is not allowed)",
                        reference.name()
                    ),
                ));
            }
            if let Some(first) = images.iter().find(|i| same_image(&i.reference, &reference)) {
                return Err(SpecError::invalid(
                    at(entry.reference.span()),
                    format!("duplicate image {reference} (first at line {})", first.line),
                ));
            }
            let platforms = match &entry.platforms {
                Some(list) => parse_platforms(list, text, path)?,
                None if platforms.is_empty() => {
                    return Err(SpecError::invalid(
                        at(entry.reference.span()),
                        format!(
                            "image {written} has no platforms (set platforms at the top of \
                             the file or on the image)"
                        ),
                    ))
                }
                None => platforms.clone(),
            };
            images.push(ImageSpec {
                reference,
                written,
                platforms,
                line,
            });
        }

        // Mirror hosts may have settings of their own (insecure, a login) though no image
        // names them.
        let mirror_hosts: Vec<String> = raw
            .registries
            .values()
            .filter_map(|s| s.get_ref().mirror.as_ref())
            .map(|m| mirror_host(m.get_ref()).to_string())
            .collect();
        let mut registries = BTreeMap::new();
        for (host, settings) in &raw.registries {
            let location = at(host.span());
            let name = normalise_registry(host.get_ref());
            check_host(&name).map_err(|reason| {
                SpecError::invalid(
                    location.clone(),
                    format!("invalid registry {:?}: {reason}", host.get_ref()),
                )
            })?;
            if registries.contains_key(&name) {
                return Err(SpecError::invalid(
                    location,
                    format!("registry {name} has settings twice"),
                ));
            }
            if !images.iter().any(|i| i.reference.registry == name) && !mirror_hosts.contains(&name)
            {
                return Err(SpecError::invalid(
                    location,
                    format!(
                        "registry {name} has settings but no image comes from it and it is \
                         no registry's mirror (a typo? registries are named as in image \
                         references, e.g. docker.io)"
                    ),
                ));
            }
            let settings_ref = settings.get_ref();
            let mirror = match &settings_ref.mirror {
                Some(mirror) => {
                    let value = mirror.get_ref();
                    check_mirror(value).map_err(|reason| {
                        SpecError::invalid(
                            at(mirror.span()),
                            format!("invalid mirror {value:?}: {reason}"),
                        )
                    })?;
                    if mirror_host(value) == name {
                        return Err(SpecError::invalid(
                            at(mirror.span()),
                            format!("registry {name} cannot be its own mirror"),
                        ));
                    }
                    Some(value.clone())
                }
                None => None,
            };
            registries.insert(
                name,
                RegistrySettingsSpec {
                    insecure: settings_ref.insecure,
                    mirror,
                    line: line_of(text, settings.span().start),
                },
            );
        }

        let listed: Vec<Reference> = images.iter().map(|i| i.reference.clone()).collect();
        let clamav = match &raw.clamav {
            Some(table) => Some(table.convert(text, path, &listed)?),
            None => None,
        };
        Ok(ImagesFile {
            path: path.to_path_buf(),
            platforms,
            registries,
            images,
            clamav,
        })
    }

    /// Finds an image by its reference as written, its normalised reference
    /// (`docker.io/library/haproxy:3.2-alpine`, or any spelling that normalises to it, such as
    /// `haproxy:3.2-alpine`), or its repository name without tag or digest
    /// (`docker.io/library/haproxy`, `haproxy`), which gives the first image of that
    /// repository in file order. A tag without a digest also finds an image that pins that
    /// tag to a digest.
    pub fn find(&self, name: &str) -> Option<&ImageSpec> {
        if let Some(image) = self.images.iter().find(|i| i.written == name) {
            return Some(image);
        }
        let wanted = Reference::parse(name).ok()?;
        if !names_tag_or_digest(name) {
            return self
                .images
                .iter()
                .find(|i| i.reference.name() == wanted.name());
        }
        if let Some(image) = self.images.iter().find(|i| i.reference == wanted) {
            return Some(image);
        }
        if wanted.digest.is_none() {
            return self
                .images
                .iter()
                .find(|i| i.reference.name() == wanted.name() && i.reference.tag == wanted.tag);
        }
        None
    }

    /// The settings for `registry` (as image references name it), if the file has any.
    pub fn registry_settings(&self, registry: &str) -> Option<&RegistrySettingsSpec> {
        self.registries.get(registry)
    }

    /// Where `image` is in this file, for messages.
    pub fn location_of(&self, image: &ImageSpec) -> Location {
        Location::line(&self.path, image.line)
    }
}

/// Whether two references name the same image for the purpose of duplicates: the same
/// repository with the same tag, or the same repository with the same digest.
pub(crate) fn same_image(a: &Reference, b: &Reference) -> bool {
    a.registry == b.registry
        && a.repository == b.repository
        && ((a.tag.is_some() && a.tag == b.tag) || (a.digest.is_some() && a.digest == b.digest))
}

/// Whether `written` names a tag or a digest itself (rather than getting `latest` from
/// normalisation).
fn names_tag_or_digest(written: &str) -> bool {
    written.contains('@')
        || written
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
}

fn normalise_registry(host: &str) -> String {
    if host == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        host.to_string()
    }
}

/// A registry host as references name it: `host[:port]`, no scheme, no path.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("empty");
    }
    if host.contains("://") {
        return Err("write the host without a scheme (insecure = true for plain HTTP)");
    }
    if host.contains('/') {
        return Err("a registry is a host[:port], without a path");
    }
    let ok = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_' | b'[' | b']'));
    if !ok {
        return Err("only letters, digits, '.', '-', '_' and ':' are allowed");
    }
    Ok(())
}

/// The `host[:port]` of a mirror, without its path prefix.
fn mirror_host(mirror: &str) -> &str {
    mirror.split_once('/').map_or(mirror, |(host, _)| host)
}

/// A mirror: `host[:port]` optionally followed by a `/path` prefix.
fn check_mirror(mirror: &str) -> Result<(), &'static str> {
    let (host, prefix) = match mirror.split_once('/') {
        Some((host, prefix)) => (host, Some(prefix)),
        None => (mirror, None),
    };
    if mirror.contains("://") {
        return Err("write the host without a scheme (insecure = true for plain HTTP)");
    }
    check_host(host)?;
    if let Some(prefix) = prefix {
        let ok = prefix.split('/').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
        });
        if !ok {
            return Err("the path prefix must be lower-case path components");
        }
    }
    Ok(())
}

/// A `platforms = [...]` list: not empty, every entry a known platform, none twice; sorted.
fn parse_platforms(
    list: &Spanned<Vec<Spanned<String>>>,
    text: &str,
    path: &Path,
) -> Result<Vec<Platform>, SpecError> {
    if list.get_ref().is_empty() {
        return Err(SpecError::invalid(
            Location::line(path, line_of(text, list.span().start)),
            "platforms must not be empty",
        ));
    }
    let mut out: Vec<Platform> = Vec::with_capacity(list.get_ref().len());
    for item in list.get_ref() {
        let location = Location::line(path, line_of(text, item.span().start));
        let platform: Platform = item
            .get_ref()
            .parse()
            .map_err(|e: oci::PlatformError| SpecError::invalid(location.clone(), e.to_string()))?;
        if out.contains(&platform) {
            return Err(SpecError::invalid(
                location,
                format!("platform {platform} is listed twice"),
            ));
        }
        out.push(platform);
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImagesFile, SpecError> {
        ImagesFile::parse(text, Path::new("images.toml"))
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(_) => panic!("parsed: {text}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = r#"# the stack
platforms = ["linux/arm64", "linux/amd64"]

[registries."registry.corp:5000"]
insecure = true
mirror = "proxy.corp:5000/corp"

[[images]]
ref = "docker.io/matrixdotorg/synapse:v1.142.0"

[[images]]
ref = "haproxy:3.2-alpine"
platforms = ["linux/amd64"]

[[images]]
ref = "registry.corp:5000/team/app:1.0@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

[[images]]
ref = "ghcr.io/org/tool@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
"#;

    #[test]
    fn parses_a_complete_file() {
        let file = parse(GOOD).unwrap();
        assert_eq!(file.path, Path::new("images.toml"));
        assert_eq!(
            file.platforms,
            vec![Platform::linux("amd64"), Platform::linux("arm64")]
        );
        assert_eq!(file.images.len(), 4);
        let synapse = &file.images[0];
        assert_eq!(synapse.line, 9);
        assert_eq!(synapse.written, "docker.io/matrixdotorg/synapse:v1.142.0");
        assert_eq!(synapse.platforms, file.platforms);
        let haproxy = &file.images[1];
        assert_eq!(
            haproxy.reference.to_string(),
            "docker.io/library/haproxy:3.2-alpine"
        );
        assert_eq!(haproxy.written, "haproxy:3.2-alpine");
        assert_eq!(haproxy.platforms, vec![Platform::linux("amd64")]);
        assert_eq!(haproxy.line, 12);
        let app = &file.images[2];
        assert_eq!(app.reference.tag.as_deref(), Some("1.0"));
        assert!(app.reference.digest.is_some());
        let settings = file.registry_settings("registry.corp:5000").unwrap();
        assert!(settings.insecure);
        assert_eq!(settings.mirror.as_deref(), Some("proxy.corp:5000/corp"));
        assert_eq!(settings.line, 4);
        assert_eq!(file.location_of(haproxy).to_string(), "images.toml:12");
    }

    #[test]
    fn finds_images_by_any_spelling() {
        let file = parse(GOOD).unwrap();
        let line = |name: &str| file.find(name).map(|i| i.line);
        assert_eq!(line("haproxy:3.2-alpine"), Some(12));
        assert_eq!(line("docker.io/library/haproxy:3.2-alpine"), Some(12));
        assert_eq!(line("library/haproxy:3.2-alpine"), Some(12));
        assert_eq!(line("docker.io/library/haproxy"), Some(12));
        assert_eq!(line("haproxy"), Some(12));
        assert_eq!(line("matrixdotorg/synapse"), Some(9));
        assert_eq!(line("registry.corp:5000/team/app:1.0"), Some(16));
        assert_eq!(line("registry.corp:5000/team/app"), Some(16));
        assert_eq!(line("ghcr.io/org/tool"), Some(19));
        assert_eq!(line("haproxy:3.3"), None);
        assert_eq!(line("nginx"), None);
        assert_eq!(line("NOT A REF"), None);
    }

    #[test]
    fn unknown_keys_are_errors_with_line_and_column() {
        let text = "platforms = [\"linux/amd64\"]\n\n[[images]]\nref = \"haproxy:3.2\"\n      plaforms = [\"linux/amd64\"]\n";
        let e = error(text);
        assert!(
            e.starts_with("images.toml:5:7: unknown field `plaforms`"),
            "{e}"
        );
        let e = error("platform = [\"linux/amd64\"]\n");
        assert!(
            e.starts_with("images.toml:1:1: unknown field `platform`"),
            "{e}"
        );
        let e = error("[registries.\"r.corp\"]\ninsecure = true\nmirorr = \"m.corp\"\n");
        assert!(
            e.starts_with("images.toml:3:1: unknown field `mirorr`"),
            "{e}"
        );
    }

    #[test]
    fn syntax_and_type_errors_name_line_and_column() {
        let e = error("platforms = [\"linux/amd64\"]\n[[images]]\nref = \"haproxy:3.2\n");
        assert!(e.starts_with("images.toml:3:"), "{e}");
        let e = error("[[images]]\nref = 5\n");
        assert!(e.starts_with("images.toml:2:7: invalid type"), "{e}");
        let e = error("[[images]]\nplatforms = [\"linux/amd64\"]\n");
        assert!(e.starts_with("images.toml:1:1: missing field `ref`"), "{e}");
        let e = error("[registries.\"r.corp\"]\ninsecure = \"yes\"\n");
        assert!(e.starts_with("images.toml:2:12: invalid type"), "{e}");
    }

    #[test]
    fn invalid_references_name_the_line() {
        let text = "platforms = [\"linux/amd64\"]\n\n[[images]]\nref = \"Docker.io/UPPER:1\"\n";
        assert_eq!(
            error(text),
            "images.toml:4: invalid image reference \"Docker.io/UPPER:1\": repository must be \
             lower-case path components"
        );
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"app@sha256:12\"\n";
        assert_eq!(
            error(text),
            "images.toml:3: invalid image reference \"app@sha256:12\": sha256 digest must be \
             64 lower-case hex digits"
        );
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"haproxy\"\n";
        let e = error(text);
        assert!(
            e.starts_with("images.toml:3: image reference \"haproxy\" names no tag or digest"),
            "{e}"
        );
        // An explicit latest is the engineer's choice.
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"haproxy:latest\"\n";
        assert!(parse(text).is_ok());
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"localhost:5000/app\"\n";
        assert!(error(text).contains("names no tag or digest"));
    }

    #[test]
    fn duplicates_name_both_lines() {
        let text = "platforms = [\"linux/amd64\"]\n\n[[images]]\nref = \"haproxy:3.2\"\n\n[[images]]\nref = \"docker.io/library/haproxy:3.2\"\n";
        assert_eq!(
            error(text),
            "images.toml:7: duplicate image docker.io/library/haproxy:3.2 (first at line 4)"
        );
        // The same tag pinned and unpinned is the same image.
        let d = "a".repeat(64);
        let text = format!(
            "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"app:1\"\n[[images]]\nref = \"app:1@sha256:{d}\"\n"
        );
        assert!(error(&text).starts_with("images.toml:5: duplicate image"));
        // The same digest under two spellings too.
        let text = format!(
            "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"app@sha256:{d}\"\n[[images]]\nref = \"app:2@sha256:{d}\"\n"
        );
        assert!(error(&text).contains("(first at line 3)"));
        // Two tags of one repository are two images.
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"clamav/clamav:1.4_base\"\n[[images]]\nref = \"clamav/clamav:1.5_base\"\n";
        assert_eq!(parse(text).unwrap().images.len(), 2);
    }

    #[test]
    fn platform_errors_name_the_line() {
        let text = "# header\n\nplatforms = [\n  \"linux/amd64\",\n  \"linux\",\n]\n";
        assert!(
            error(text).starts_with("images.toml:5: invalid platform \"linux\""),
            "{}",
            error(text)
        );
        let text = "platforms = [\"linux/amd64\", \"linux/amd64\"]\n";
        assert_eq!(
            error(text),
            "images.toml:1: platform linux/amd64 is listed twice"
        );
        let text = "platforms = []\n";
        assert_eq!(error(text), "images.toml:1: platforms must not be empty");
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"a:1\"\nplatforms = [\"linux/sparc\"]\n";
        assert!(error(text).starts_with("images.toml:4: invalid platform \"linux/sparc\""));
        let text = "[[images]]\nref = \"a:1\"\n";
        assert_eq!(
            error(text),
            "images.toml:2: image a:1 has no platforms (set platforms at the top of the file \
             or on the image)"
        );
        // Without a default, per-image lists suffice.
        let text = "[[images]]\nref = \"a:1\"\nplatforms = [\"linux/arm64\"]\n";
        let file = parse(text).unwrap();
        assert!(file.platforms.is_empty());
        assert_eq!(file.images[0].platforms, vec![Platform::linux("arm64")]);
    }

    #[test]
    fn registry_settings_are_checked() {
        let base = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"r.corp:5000/app:1\"\n";
        let with = |extra: &str| format!("{base}{extra}");
        assert!(parse(&with("[registries.\"r.corp:5000\"]\ninsecure = true\n")).is_ok());
        let e = error(&with(
            "[registries.\"http://r.corp:5000\"]\ninsecure = true\n",
        ));
        assert!(e.starts_with("images.toml:4: invalid registry"), "{e}");
        let e = error(&with("[registries.\"other.corp\"]\ninsecure = true\n"));
        assert!(
            e.starts_with("images.toml:4: registry other.corp has settings but no image"),
            "{e}"
        );
        let e = error(&with(
            "[registries.\"r.corp:5000\"]\nmirror = \"https://m.corp\"\n",
        ));
        assert!(e.starts_with("images.toml:5: invalid mirror"), "{e}");
        let e = error(&with(
            "[registries.\"r.corp:5000\"]\nmirror = \"r.corp:5000\"\n",
        ));
        assert!(e.contains("cannot be its own mirror"), "{e}");
        // index.docker.io is Docker Hub.
        let text = "platforms = [\"linux/amd64\"]\n[[images]]\nref = \"haproxy:3.2\"\n[registries.\"index.docker.io\"]\nmirror = \"m.corp/hub\"\n";
        let file = parse(text).unwrap();
        assert_eq!(
            file.registry_settings("docker.io")
                .unwrap()
                .mirror
                .as_deref(),
            Some("m.corp/hub")
        );
    }

    #[test]
    fn an_empty_file_has_no_images() {
        let file = parse("").unwrap();
        assert!(file.images.is_empty());
        assert!(file.platforms.is_empty());
    }

    #[test]
    fn load_names_the_file_on_read_errors() {
        let e = ImagesFile::load(Path::new("/nonexistent/images.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/images.toml"), "{e}");
        assert!(e.location().is_none());
    }
}
