//! The bundle's bill of materials, `sbom.cdx.json` (CycloneDX 1.6 JSON): every image as a
//! `container` component (its digest, purl and one nested component per platform with its
//! manifest, config and layer digests and the OS packages its own package database lists),
//! the charts, tools, ClamAV databases and site files with their SHA-256. Written by the
//! build from the lock and the blob cache, sorted, with the lock's time: the same inputs give
//! the same bytes. [`diff`] compares two bundles' bills (or locks).
//!
//! - [`layers`]: the layer walk (streamed, whiteouts honoured).
//! - [`packages`]: the dpkg and apk databases, os-release.
//! - [`cdx`]: the document model and package URLs.

pub mod cdx;
pub mod diff;
pub mod layers;
pub mod packages;
mod scan_cache;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bundle_file::pack::Input;
use oci::{Digest, ImageIndex, ImageManifest, Platform, Reference};

use crate::build::fetch::ImageContent;
use crate::spec::Lock;
use crate::store::BlobCache;
use cdx::{prop, sha256, Bom, Component, Dependency, ExternalReference, Metadata, Tools};
use layers::LayerChanges;
use packages::{Manager, Package};

/// The member's path in the bundle.
pub const SBOM_MEMBER: &str = "sbom.cdx.json";
/// The largest bill a reader accepts.
pub const MAX_SBOM: u64 = 256 << 20;
/// The `bom-ref` of the bundle itself (`metadata.component`).
const BUNDLE_REF: &str = "bundle";

/// Why a bill of materials cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The member could not be staged.
    #[error(transparent)]
    Bundle(#[from] bundle_file::BundleError),
    /// A layer is not a readable tar stream.
    #[error("layer {layer}: {message}")]
    Layer { layer: String, message: String },
    /// A manifest or config in the cache cannot be used.
    #[error("{image}: {message}")]
    Manifest { image: String, message: String },
    /// A document that is not a bill this tool can read.
    #[error("{source_name}: not a CycloneDX bill of materials: {message}")]
    Document {
        source_name: String,
        message: String,
    },
}

impl SbomError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SbomError {
        SbomError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What the bill describes.
pub struct SbomInputs<'a> {
    /// Bundle name (bundle.json).
    pub name: &'a str,
    /// Bundle version.
    pub version: &'a str,
    /// Build time, seconds since the epoch (the lock's).
    pub timestamp: u64,
    /// Every entry of the bundle's OCI layout: the lock's images, the ClamAV signature image,
    /// the charts' artifacts (`charts/<name>:<version>`).
    pub images: &'a [ImageContent],
    /// The lock the bundle is built from.
    pub lock: &'a Lock,
    /// Whether the bundle carries the lock's tools and files (not an `--only clamav` update).
    pub tools_and_files: bool,
    /// Whether it carries the lock's ClamAV databases.
    pub clamav: bool,
}

/// Writes the bill into `staging` and returns it as a bundle member.
pub fn member(
    inputs: &SbomInputs<'_>,
    cache: &BlobCache,
    staging: &Path,
) -> Result<Input, SbomError> {
    let bom = document(inputs, cache)?;
    Ok(Input::staged(
        staging,
        SBOM_MEMBER,
        &to_bytes(&bom),
        inputs.timestamp,
    )?)
}

/// The document as pretty JSON with a final newline.
pub fn to_bytes(bom: &Bom) -> Vec<u8> {
    bundle_file::pack::json_bytes(bom)
}

/// Parses a bill; `source_name` names it in errors.
pub fn parse(bytes: &[u8], source_name: &str) -> Result<Bom, SbomError> {
    let bom: Bom = serde_json::from_slice(bytes).map_err(|e| SbomError::Document {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    if bom.bom_format != "CycloneDX" {
        return Err(SbomError::Document {
            source_name: source_name.to_string(),
            message: format!("bomFormat is {:?}", bom.bom_format),
        });
    }
    Ok(bom)
}

/// The bill of materials of `inputs`, reading manifests and layers from `cache`.
pub fn document(inputs: &SbomInputs<'_>, cache: &BlobCache) -> Result<Bom, SbomError> {
    let lock = inputs.lock;
    let mut images = Vec::new();
    let mut charts = Vec::new();
    for content in inputs.images {
        match content
            .ref_name
            .as_deref()
            .and_then(|n| n.strip_prefix("charts/"))
        {
            Some(chart) => charts.push((chart, content)),
            None => images.push(plan_image(content, lock, cache)?),
        }
    }
    let scanned = scan_layers(&images, cache);
    let mut components: Vec<Component> = images
        .iter()
        .map(|image| image_component(image, &scanned))
        .collect();
    for (chart, content) in charts {
        components.push(chart_component(chart, content, lock, cache)?);
    }
    if inputs.tools_and_files {
        components.extend(lock.tools.iter().map(|tool| {
            let mut c = Component {
                kind: "application".into(),
                bom_ref: Some(format!("tool:{}@{}", tool.name, tool.platform)),
                name: tool.name.clone(),
                version: Some(tool.version.clone()),
                hashes: vec![sha256(tool.sha256.hex())],
                external_references: vec![ExternalReference {
                    kind: "distribution".into(),
                    url: tool.url.clone(),
                }],
                ..Component::default()
            }
            .with(prop::KIND, "tool")
            .with(prop::PLATFORM, tool.platform.clone())
            .with(prop::PATH, tool.bundle_path());
            if let Some(member) = &tool.member {
                c = c.with(prop::SOURCE, format!("{} ({member})", tool.url));
            }
            c
        }));
        components.extend(lock.files.iter().map(|file| {
            Component {
                kind: "file".into(),
                bom_ref: Some(format!("file:{}", file.name)),
                name: file.name.clone(),
                hashes: vec![sha256(file.sha256.hex())],
                ..Component::default()
            }
            .with(prop::KIND, "file")
            .with(prop::SOURCE, file.source.clone())
            .with(prop::PATH, file.bundle_path())
        }));
    }
    if inputs.clamav {
        components.extend(lock.clamav.iter().map(|db| {
            Component {
                kind: "data".into(),
                bom_ref: Some(format!("clamav:{}", db.file)),
                name: db.file.clone(),
                version: Some(db.version.to_string()),
                hashes: vec![sha256(db.sha256.hex())],
                external_references: vec![ExternalReference {
                    kind: "distribution".into(),
                    url: db.url.clone(),
                }],
                ..Component::default()
            }
            .with(prop::KIND, "clamav")
            .with("messenger:signatures", db.signatures.to_string())
        }));
    }
    components.sort_by(|a, b| a.bom_ref.cmp(&b.bom_ref));
    let dependencies = vec![Dependency {
        reference: BUNDLE_REF.into(),
        depends_on: components
            .iter()
            .filter_map(|c| c.bom_ref.clone())
            .collect(),
    }];
    Ok(Bom {
        schema: Some(cdx::SCHEMA.into()),
        bom_format: "CycloneDX".into(),
        spec_version: "1.6".into(),
        version: 1,
        metadata: Some(Metadata {
            timestamp: oci::time::format_rfc3339(inputs.timestamp).ok(),
            tools: Some(Tools {
                components: vec![Component {
                    kind: "application".into(),
                    name: "bundle".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Component::default()
                }],
            }),
            component: Some(Component {
                kind: "application".into(),
                bom_ref: Some(BUNDLE_REF.into()),
                name: inputs.name.into(),
                version: Some(inputs.version.into()),
                ..Component::default()
            }),
        }),
        components,
        dependencies,
    })
}

/// An image of the layout, its platforms and their layers, as read from the cache.
struct ImagePlan {
    reference: Reference,
    /// `image` for the lock's images, `clamav-image` for the signature image, `files-image`
    /// for the download page's.
    kind: &'static str,
    /// The digest the reference resolved to (the registry's index or manifest).
    digest: Digest,
    /// The index the bundle carries instead, when it differs.
    bundled: Option<Digest>,
    platforms: Vec<PlatformPlan>,
}

struct PlatformPlan {
    platform: String,
    manifest: Digest,
    config: Digest,
    layers: Vec<Digest>,
    /// Why the packages are not read (a layer not in the cache), if so.
    unread: Option<String>,
}

fn read_json<T: serde::de::DeserializeOwned>(
    cache: &BlobCache,
    digest: &Digest,
    image: &Reference,
) -> Result<T, SbomError> {
    let path = cache.file_of(digest);
    let bytes = oci::files::read_capped(&path, oci::MAX_MANIFEST_SIZE)
        .map_err(|e| SbomError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| SbomError::Manifest {
        image: image.to_string(),
        message: format!("{digest}: {e}"),
    })
}

/// The platform of an image config (`os`, `architecture`, `variant`).
#[derive(serde::Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

fn plan_image(
    content: &ImageContent,
    lock: &Lock,
    cache: &BlobCache,
) -> Result<ImagePlan, SbomError> {
    let reference = &content.reference;
    let carried: BTreeSet<&Digest> = content.blobs.iter().map(|(d, _)| d).collect();
    let locked = lock.images.iter().find(|i| &i.reference == reference);
    // The platform manifests: the lock's, or the bundled root's for the signature image.
    let manifests: Vec<(String, Digest)> = match locked {
        Some(locked) => locked
            .platforms
            .iter()
            .map(|p| (p.platform.to_string(), p.manifest.digest.clone()))
            .collect(),
        None if oci::media::is_index(&content.root.media_type) => {
            let index: ImageIndex = read_json(cache, &content.root.digest, reference)?;
            index
                .manifests
                .into_iter()
                .filter(|m| carried.contains(&m.digest))
                .map(|m| {
                    let platform = m
                        .platform
                        .as_ref()
                        .map_or_else(String::new, Platform::to_string);
                    (platform, m.digest)
                })
                .collect()
        }
        None => vec![(String::new(), content.root.digest.clone())],
    };
    let mut platforms = Vec::new();
    for (platform, digest) in manifests {
        let manifest: ImageManifest = read_json(cache, &digest, reference)?;
        let platform = if platform.is_empty() {
            let config: ConfigPlatform = read_json(cache, &manifest.config.digest, reference)?;
            let mut p = format!("{}/{}", config.os, config.architecture);
            if let Some(v) = config.variant.filter(|v| !v.is_empty()) {
                p = format!("{p}/{v}");
            }
            p
        } else {
            platform
        };
        let missing = manifest
            .layers
            .iter()
            .find(|l| !cache.file_of(&l.digest).is_file());
        platforms.push(PlatformPlan {
            platform,
            manifest: digest,
            config: manifest.config.digest.clone(),
            layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
            unread: missing
                .map(|l| format!("not read: layer {} is not in the build cache", l.digest)),
        });
    }
    platforms.sort_by(|a, b| a.platform.cmp(&b.platform));
    let (digest, bundled) = match locked {
        Some(locked) => (
            locked.root_digest().clone(),
            locked.filtered_index.as_ref().map(|f| f.digest.clone()),
        ),
        None => (content.root.digest.clone(), None),
    };
    Ok(ImagePlan {
        reference: reference.clone(),
        kind: if locked.is_some() {
            "image"
        } else if crate::build::files_image::is_files_tag(reference.tag.as_deref()) {
            "files-image"
        } else {
            "clamav-image"
        },
        digest,
        bundled,
        platforms,
    })
}

/// What each layer does to the package databases, or why it could not be read.
type Scanned = BTreeMap<Digest, Result<LayerChanges, String>>;

/// Scans every distinct layer whose image's packages are to be read, on one thread per core;
/// a layer scanned by an earlier build is taken from the cache ([`scan_cache`]).
/// A layer that is not a readable tar stream is recorded as such: the images naming it list
/// no packages and say why, and the build goes on.
fn scan_layers(images: &[ImagePlan], cache: &BlobCache) -> Scanned {
    let queue: BTreeSet<&Digest> = images
        .iter()
        .flat_map(|i| &i.platforms)
        .filter(|p| p.unread.is_none())
        .flat_map(|p| &p.layers)
        .collect();
    let queue = Mutex::new(queue.into_iter().collect::<Vec<_>>());
    let results = Mutex::new(BTreeMap::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(digest) = next else { break };
                let changes = match scan_cache::load(cache, &packages::WANTED, digest) {
                    Some(kept) => Ok(kept),
                    None => {
                        let file: PathBuf = cache.file_of(digest);
                        let scanned = layers::scan_layer(&file, digest, &packages::WANTED);
                        if let Ok(changes) = &scanned {
                            scan_cache::keep(cache, &packages::WANTED, digest, changes);
                        }
                        scanned.map_err(|e| match e {
                            SbomError::Layer { message, .. } => message,
                            other => other.to_string(),
                        })
                    }
                };
                if let Ok(mut r) = results.lock() {
                    r.insert(digest.clone(), changes);
                }
            });
        }
    });
    results.into_inner().unwrap_or_default()
}

/// `pkg:oci/NAME@DIGEST?arch=..&repository_url=..&tag=..` of an image or platform image.
fn oci_purl(reference: &Reference, digest: &Digest, arch: Option<&str>) -> String {
    let name = reference
        .repository
        .rsplit('/')
        .next()
        .unwrap_or(&reference.repository)
        .to_lowercase();
    let repository = reference.name();
    let mut qualifiers = vec![("repository_url", repository.as_str())];
    if let Some(tag) = &reference.tag {
        qualifiers.push(("tag", tag.as_str()));
    }
    if let Some(arch) = arch {
        qualifiers.push(("arch", arch));
    }
    cdx::purl("oci", None, &name, digest.as_str(), &qualifiers)
}

fn image_component(image: &ImagePlan, scanned: &Scanned) -> Component {
    let reference = &image.reference;
    let image_ref = format!("{}:{}", image.kind, reference);
    let mut component = Component {
        kind: "container".into(),
        bom_ref: Some(image_ref.clone()),
        name: reference.name(),
        version: Some(
            reference
                .tag
                .clone()
                .unwrap_or_else(|| image.digest.to_string()),
        ),
        purl: Some(oci_purl(reference, &image.digest, None)),
        hashes: vec![sha256(image.digest.hex())],
        ..Component::default()
    }
    .with(prop::KIND, image.kind)
    .with(prop::REFERENCE, reference.to_string());
    if let Some(tag) = &reference.tag {
        component = component.with(prop::TAG, tag.clone());
    }
    if let Some(bundled) = &image.bundled {
        component = component.with(prop::BUNDLED_INDEX, bundled.to_string());
    }
    for platform in &image.platforms {
        let arch = platform.platform.split('/').nth(1);
        let platform_ref = format!("{image_ref}@{}", platform.platform);
        let mut p = Component {
            kind: "container".into(),
            bom_ref: Some(platform_ref.clone()),
            name: reference.name(),
            version: Some(platform.manifest.to_string()),
            purl: Some(oci_purl(reference, &platform.manifest, arch)),
            hashes: vec![sha256(platform.manifest.hex())],
            ..Component::default()
        }
        .with(prop::PLATFORM, platform.platform.clone())
        .with(prop::CONFIG, platform.config.to_string());
        for layer in &platform.layers {
            p = p.with(prop::LAYER, layer.to_string());
        }
        let (source, packages, os) = match &platform.unread {
            Some(why) => (why.clone(), Vec::new(), None),
            None => read_packages(platform, scanned),
        };
        p = p.with(prop::PACKAGES, source);
        if let Some(os) = &os {
            p = p.with(prop::OS, os.clone());
        }
        p.components = packages
            .iter()
            .map(|(manager, package)| {
                package_component(*manager, package, os.as_deref(), &platform_ref)
            })
            .collect();
        component.components.push(p);
    }
    component
}

/// The platform image's packages from its layers' merged database, and the distribution.
fn read_packages(
    platform: &PlatformPlan,
    scanned: &Scanned,
) -> (String, Vec<(Manager, Package)>, Option<String>) {
    let mut changes = Vec::new();
    for layer in &platform.layers {
        match scanned.get(layer) {
            Some(Ok(layer_changes)) => changes.push(layer_changes),
            Some(Err(why)) => return (format!("not read: layer {layer}: {why}"), Vec::new(), None),
            None => {
                return (
                    format!("not read: layer {layer} was not scanned"),
                    Vec::new(),
                    None,
                )
            }
        }
    }
    let files = layers::merge(changes);
    let text = |path: &str| {
        files
            .get(path)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let os = text(packages::OS_RELEASE)
        .or_else(|| text(packages::OS_RELEASE_USR))
        .map(|t| packages::os_release(&t));
    let os = os.and_then(|(id, version)| {
        id.map(|id| match version {
            Some(v) => format!("{id} {v}"),
            None => id,
        })
    });
    let mut found = Vec::new();
    let mut sources = Vec::new();
    if let Some(status) = text(packages::DPKG_STATUS) {
        sources.push("dpkg");
        found.extend(
            packages::dpkg(&status)
                .into_iter()
                .map(|p| (Manager::Dpkg, p)),
        );
    }
    if let Some(installed) = text(packages::APK_INSTALLED) {
        sources.push("apk");
        found.extend(
            packages::apk(&installed)
                .into_iter()
                .map(|p| (Manager::Apk, p)),
        );
    }
    found.sort();
    let source = if sources.is_empty() {
        "none: no dpkg or apk database in the image".to_string()
    } else {
        sources.join(" ")
    };
    (source, found, os)
}

fn package_component(
    manager: Manager,
    package: &Package,
    os: Option<&str>,
    parent: &str,
) -> Component {
    let distro = os.and_then(|o| o.split(' ').next());
    let (kind, namespace) = match manager {
        Manager::Dpkg => (
            "deb",
            match distro {
                Some("ubuntu") => "ubuntu",
                _ => "debian",
            },
        ),
        Manager::Apk => ("apk", distro.unwrap_or("alpine")),
    };
    let purl = cdx::purl(
        kind,
        Some(namespace),
        &package.name,
        &package.version,
        &[("arch", package.arch.as_str())],
    );
    let mut component = Component {
        kind: "library".into(),
        bom_ref: Some(format!("{parent}|{purl}")),
        name: package.name.clone(),
        version: Some(package.version.clone()),
        purl: Some(purl),
        licenses: package
            .license
            .iter()
            .map(|name| cdx::LicenseChoice {
                license: cdx::License { name: name.clone() },
            })
            .collect(),
        ..Component::default()
    };
    if let Some(source) = &package.source {
        component = component.with(prop::SOURCE, source.clone());
    }
    component
}

/// A chart from its artifact in the layout: the `.tgz` is the artifact's one layer.
fn chart_component(
    chart: &str,
    content: &ImageContent,
    lock: &Lock,
    cache: &BlobCache,
) -> Result<Component, SbomError> {
    let (name, version) = chart.rsplit_once(':').unwrap_or((chart, ""));
    let manifest: ImageManifest = read_json(cache, &content.root.digest, &content.reference)?;
    let archive = manifest.layers.first().ok_or_else(|| SbomError::Manifest {
        image: format!("chart {chart}"),
        message: "the artifact has no layer".into(),
    })?;
    let upstream = lock
        .charts
        .iter()
        .find(|c| c.name == name && c.version == version);
    let source = match upstream.map(|c| &c.source) {
        Some(crate::spec::lock::LockedSource::Repo { url, .. }) => url.clone(),
        Some(crate::spec::lock::LockedSource::Oci { repository, .. }) => repository.clone(),
        None => "built from the stack's own chart directory".to_string(),
    };
    Ok(Component {
        kind: "application".into(),
        bom_ref: Some(format!("chart:{name}@{version}")),
        name: name.to_string(),
        version: Some(version.to_string()),
        hashes: vec![sha256(archive.digest.hex())],
        ..Component::default()
    }
    .with(prop::KIND, "chart")
    .with(prop::SOURCE, source)
    .with(prop::ARTIFACT, content.root.digest.to_string())
    .with(
        prop::PATH,
        format!("charts/{}", crate::chart::repo::file_name(name, version)),
    ))
}

/// The bill a bundle carries, read and checked against the SHA-256 bundle.json lists for it
/// (so a bill that was changed in the file is refused; bundle.json itself is what the
/// signatures cover).
pub fn from_bundle<S: bundle_file::archive::ReadAt>(
    bundle: &bundle_file::Bundle<S>,
    name: &str,
) -> Result<Bom, SbomError> {
    parse(&bytes_from_bundle(bundle, name)?, name)
}

/// The bill's bytes as the bundle carries them, checked as [`from_bundle`] does.
pub fn bytes_from_bundle<S: bundle_file::archive::ReadAt>(
    bundle: &bundle_file::Bundle<S>,
    name: &str,
) -> Result<Vec<u8>, SbomError> {
    use sha2::Digest as _;
    let fail = |message: String| SbomError::Document {
        source_name: name.to_string(),
        message,
    };
    let member = bundle
        .member(SBOM_MEMBER)
        .ok_or_else(|| fail(format!("the bundle has no {SBOM_MEMBER}")))?;
    if member.size > MAX_SBOM {
        return Err(fail(format!(
            "{SBOM_MEMBER} is {} bytes, more than the {MAX_SBOM} this reads",
            member.size
        )));
    }
    let mut bytes = Vec::with_capacity(member.size as usize);
    std::io::Read::read_to_end(
        &mut bundle.member_reader(member, 0, member.size),
        &mut bytes,
    )
    .map_err(|e| fail(format!("reading {SBOM_MEMBER}: {e}")))?;
    let expected = bundle
        .toc()
        .entry(SBOM_MEMBER)
        .map(|e| e.sha256.clone())
        .unwrap_or_default();
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if actual != expected {
        return Err(fail(format!(
            "{SBOM_MEMBER} has sha256 {actual}, bundle.json lists {expected}: the bill was \
             changed after the bundle was made"
        )));
    }
    Ok(bytes)
}
