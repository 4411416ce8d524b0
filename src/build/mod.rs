//! The online pipeline: images.toml -> manifests.lock -> blob cache -> OCI layout -> bundle.

pub mod charts;
mod error;
pub mod events;
pub mod fetch;
pub mod oci;
pub mod resolve;
pub mod signature_image;
pub mod stage;

pub use error::BuildError;
pub use events::{BuildEvent, BuildEvents, NoEvents};

use crate::container::pack::{pack_inputs, PackOptions, PackReport};
use crate::container::Progress;
use crate::registry::{Client, ClientConfig, Credentials, RegistrySettings};
use crate::sign::SecretKey;
use crate::spec::{ImagesFile, Lock};
use crate::store::BlobCache;
use crate::tools::ToolsFile;
use std::path::{Path, PathBuf};

/// The registry client settings that images.toml implies, plus extra CA files and registries
/// marked insecure on the command line.
pub fn client_config(
    images: &ImagesFile,
    ca_files: &[PathBuf],
    insecure: &[String],
    credentials: Credentials,
) -> ClientConfig {
    let mut config = ClientConfig {
        ca_files: ca_files.to_vec(),
        credentials,
        ..ClientConfig::default()
    };
    for (host, settings) in &images.registries {
        config.registries.insert(
            host.clone(),
            RegistrySettings {
                insecure: settings.insecure,
                mirror: settings.mirror.clone(),
            },
        );
    }
    for host in insecure {
        config.registries.entry(host.clone()).or_default().insecure = true;
    }
    config
}

/// Loads the lock at `path`, or `None` when there is none yet.
pub fn load_lock(path: &Path) -> Result<Option<Lock>, BuildError> {
    if path.exists() {
        Ok(Some(Lock::load(path)?))
    } else {
        Ok(None)
    }
}

/// Writes `lock` to its path atomically.
pub fn write_lock(lock: &Lock) -> Result<(), BuildError> {
    let text = lock.to_toml_string();
    crate::container::pack::write_atomically(&lock.path, |mut file| {
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| crate::container::BundleError::io(&lock.path, e))?;
        Ok(file)
    })?;
    Ok(())
}

/// What a lock is made from besides images.toml: the tools, the ClamAV source, and where
/// downloads go.
pub struct LockSources<'a> {
    /// tools.toml, when the bundle carries tools.
    pub tools: Option<&'a ToolsFile>,
    /// Where to take the ClamAV databases from, overriding images.toml's `[clamav]` source
    /// (a `file://` directory or `http(s)://` mirror URL ending in `/`).
    pub clamav_source: Option<String>,
    /// charts.toml, when the bundle carries upstream charts.
    pub charts: Option<&'a crate::chart::ChartsFile>,
    /// Resolves and fetches upstream charts.
    pub upstream: &'a crate::chart::Upstream,
    /// Client for plain downloads (tool archives).
    pub http: &'a reqwest::Client,
    /// The blob cache downloads land in.
    pub cache: &'a BlobCache,
}

/// The lock a build uses: with `locked`, the existing one, which must match images.toml and
/// tools.toml; without, the existing one brought up to date (only images and tools that
/// changed are resolved) and written back.
pub async fn lock_for_build(
    images: &ImagesFile,
    sources: &LockSources<'_>,
    lock_path: &Path,
    locked: bool,
    client: &Client,
    jobs: usize,
) -> Result<Lock, BuildError> {
    let previous = load_lock(lock_path)?;
    if locked {
        let lock = previous.ok_or_else(|| {
            BuildError::LockMismatch(format!("{} does not exist", lock_path.display()))
        })?;
        let mut problems: Vec<String> = match lock.check_against(images) {
            Ok(()) => Vec::new(),
            Err(mismatches) => mismatches.iter().map(ToString::to_string).collect(),
        };
        if let Some(tools) = sources.tools {
            problems.extend(crate::tools::check_against(
                tools,
                &images.platforms,
                &lock.tools,
            ));
        }
        problems.extend(clamav_mismatch(images, &lock));
        problems.extend(charts::chart_mismatch(sources.charts, &lock));
        if !problems.is_empty() {
            return Err(BuildError::LockMismatch(problems.join("\n")));
        }
        return Ok(lock);
    }
    let mut lock = resolve::resolve(
        images,
        previous.as_ref(),
        &|_| false,
        client,
        jobs,
        lock_path,
    )
    .await?;
    lock_tools(&mut lock, images, sources).await?;
    lock_clamav(&mut lock, images, sources).await?;
    charts::lock_charts(&mut lock, sources.charts, sources.upstream).await?;
    if previous.as_ref() != Some(&lock) {
        write_lock(&lock)?;
    }
    Ok(lock)
}

/// Brings the lock's `[[tool]]` entries up to date with tools.toml (no tools.toml: none).
pub async fn lock_tools(
    lock: &mut Lock,
    images: &ImagesFile,
    sources: &LockSources<'_>,
) -> Result<(), BuildError> {
    lock.tools = match sources.tools {
        Some(tools) => {
            tools.check_platforms(&images.platforms)?;
            crate::tools::resolve(
                tools,
                &images.platforms,
                &lock.tools,
                sources.http,
                sources.cache,
            )
            .await?
        }
        None => Vec::new(),
    };
    Ok(())
}

/// Takes the ClamAV databases into the lock: from the command line's or images.toml's source
/// when there is one (validated, today's set), else the lock's entries stay; none without
/// `[clamav]`.
pub async fn lock_clamav(
    lock: &mut Lock,
    images: &ImagesFile,
    sources: &LockSources<'_>,
) -> Result<(), BuildError> {
    let Some(spec) = &images.clamav else {
        lock.clamav = Vec::new();
        return Ok(());
    };
    match sources.clamav_source.as_ref().or(spec.source.as_ref()) {
        Some(source) => {
            lock.clamav =
                crate::clamav::collect::collect(spec, source, sources.http, sources.cache).await?;
        }
        None if lock.clamav.is_empty() => {
            return Err(crate::clamav::collect::CollectError::NoSource.into())
        }
        None => {}
    }
    if let Some(problem) = clamav_mismatch(images, lock).first() {
        return Err(BuildError::LockMismatch(problem.clone()));
    }
    Ok(())
}

/// How the lock's databases differ from images.toml's `[clamav]` list, one line each.
fn clamav_mismatch(images: &ImagesFile, lock: &Lock) -> Vec<String> {
    let listed: Vec<&str> = lock.clamav.iter().map(|d| d.name()).collect();
    match &images.clamav {
        None if listed.is_empty() => Vec::new(),
        None => vec![format!(
            "the lock has ClamAV databases ({}) but {} has no [clamav]",
            listed.join(", "),
            images.path.display()
        )],
        Some(spec) if spec.databases != listed => vec![format!(
            "{}:{}: [clamav] asks for databases {} but the lock has {}",
            images.path.display(),
            spec.line,
            spec.databases.join(", "),
            if listed.is_empty() {
                "none".to_string()
            } else {
                listed.join(", ")
            }
        )],
        Some(_) => Vec::new(),
    }
}

/// What goes into the bundle beside the images of the lock: more OCI layout entries (charts
/// as OCI artifacts, the signature-database image) whose blobs are in the cache, and plain
/// files (tools, the chart repository, the CA).
#[derive(Debug, Default)]
pub struct Extras {
    /// Further OCI layout entries.
    pub images: Vec<fetch::ImageContent>,
    /// Further members.
    pub files: Vec<crate::container::pack::Input>,
}

/// Where a build writes, and how.
pub struct BuildOutput<'a> {
    /// The bundle file.
    pub path: &'a Path,
    /// Metadata and compression settings.
    pub pack: PackOptions,
    /// Signing key, if the bundle is signed at build time.
    pub signer: Option<&'a SecretKey>,
}

/// Where blobs come from and go: the registry client, the cache, and how many downloads run
/// at once.
pub struct Sources<'a> {
    /// The registry client.
    pub client: &'a Client,
    /// The blob cache.
    pub cache: &'a BlobCache,
    /// Downloads in flight.
    pub jobs: usize,
}

/// What a build puts in the bundle.
#[derive(Debug, Default)]
pub struct Contents {
    /// Only the ClamAV signature-database image (an update bundle whose base layers the site
    /// already has), instead of every image of the lock.
    pub only_clamav: bool,
    /// The signature databases for the signature image, when the bundle carries one.
    pub clamav: Option<Vec<crate::clamav::collect::DatabaseFile>>,
    /// Everything else beside the images.
    pub extras: Extras,
}

/// Name of the member listing blobs that the bundle's images name but the bundle does not
/// carry (the base layers of an update bundle's signature image): JSON
/// `[{"digest": "sha256:...", "size": N, "image": "REF"}]`, checked at the target by
/// `installer load`.
pub const EXTERNAL_BLOBS: &str = "external-blobs.json";

/// Fetches what `contents` needs into the cache and packs the bundle.
pub async fn build(
    images: &ImagesFile,
    lock: &Lock,
    contents: Contents,
    sources: Sources<'_>,
    output: BuildOutput<'_>,
    events: &dyn BuildEvents,
    progress: &dyn Progress,
) -> Result<(PackReport, fetch::FetchReport), BuildError> {
    let Sources {
        client,
        cache,
        jobs,
    } = sources;
    let mut options = output.pack;
    if options.timestamp.is_none() {
        options.timestamp = lock
            .resolved_at
            .as_deref()
            .and_then(crate::manifest::parse_rfc3339);
    }
    let timestamp = options.timestamp.unwrap_or(0);
    options.timestamp = Some(timestamp);
    let base = match (&contents.clamav, &images.clamav) {
        (Some(_), Some(spec)) => Some(
            lock.images
                .iter()
                .find(|i| i.reference == spec.image)
                .ok_or_else(|| {
                    BuildError::LockMismatch(format!(
                        "the ClamAV image {} is not in the lock",
                        spec.image
                    ))
                })?,
        ),
        _ => None,
    };
    let (mut images_out, report) = match (contents.only_clamav, base) {
        (true, Some(base)) => {
            let mut only = lock.clone();
            only.images = vec![base.clone()];
            let (_, report) = fetch::fetch(
                images,
                &only,
                fetch::Scope::Metadata,
                client,
                cache,
                jobs,
                events,
            )
            .await?;
            (Vec::new(), report)
        }
        (true, None) => {
            return Err(BuildError::LockMismatch(
                "--only clamav needs [clamav] in images.toml and databases in the lock".into(),
            ))
        }
        (false, _) => {
            fetch::fetch(
                images,
                lock,
                fetch::Scope::Everything,
                client,
                cache,
                jobs,
                events,
            )
            .await?
        }
    };
    let staging = tempfile::tempdir().map_err(|e| BuildError::io(&std::env::temp_dir(), e))?;
    let mut extra_files = contents.extras.files;
    if let (Some(files), Some(base)) = (&contents.clamav, base) {
        let image = tokio::task::block_in_place(|| {
            signature_image::signature_image(base, &lock.clamav, files, cache, timestamp)
        })?;
        if contents.only_clamav {
            let external: Vec<serde_json::Value> = image
                .base_layers
                .iter()
                .map(|(digest, size)| {
                    serde_json::json!({
                        "digest": digest.as_str(),
                        "size": size,
                        "image": base.reference.to_string(),
                    })
                })
                .collect();
            let path = staging.path().join(EXTERNAL_BLOBS);
            let mut bytes = serde_json::to_vec_pretty(&external).unwrap_or_default();
            bytes.push(b'\n');
            std::fs::write(&path, &bytes).map_err(|e| BuildError::io(&path, e))?;
            extra_files.push(crate::container::pack::Input {
                path: EXTERNAL_BLOBS.to_string(),
                file: path,
                size: bytes.len() as u64,
                mtime: timestamp,
            });
        }
        images_out.push(image.content);
    }
    images_out.extend(contents.extras.images);
    let mut inputs = stage::stage(&images_out, cache, staging.path(), timestamp)?;
    inputs.extend(extra_files.into_iter().map(|mut file| {
        file.mtime = timestamp;
        file
    }));
    crate::container::pack::sort_inputs(&mut inputs);
    events.event(BuildEvent::PackStarted {
        bytes: inputs.iter().map(|i| i.size).sum(),
    });
    // Packing is CPU-bound and runs its own threads; keep it off the async workers.
    let packed = tokio::task::block_in_place(|| {
        pack_inputs(inputs, output.path, &options, output.signer, progress)
    })?;
    Ok((packed, report))
}
