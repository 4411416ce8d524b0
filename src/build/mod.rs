//! The online pipeline: images.toml -> manifests.lock -> blob cache -> OCI layout -> bundle.

mod error;
pub mod events;
pub mod fetch;
pub mod oci;
pub mod resolve;
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

/// What a lock is made from besides images.toml: the tools and where downloads go.
pub struct LockSources<'a> {
    /// tools.toml, when the bundle carries tools.
    pub tools: Option<&'a ToolsFile>,
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

/// Fetches everything `lock` names into the cache and packs the bundle with `extras`.
pub async fn build(
    images: &ImagesFile,
    lock: &Lock,
    extras: Extras,
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
    let (mut contents, report) = fetch::fetch(images, lock, client, cache, jobs, events).await?;
    contents.extend(extras.images);
    let staging = tempfile::tempdir().map_err(|e| BuildError::io(&std::env::temp_dir(), e))?;
    let mut options = output.pack;
    if options.timestamp.is_none() {
        options.timestamp = lock
            .resolved_at
            .as_deref()
            .and_then(crate::manifest::parse_rfc3339);
    }
    let timestamp = options.timestamp.unwrap_or(0);
    options.timestamp = Some(timestamp);
    let mut inputs = stage::stage(&contents, cache, staging.path(), timestamp)?;
    inputs.extend(extras.files.into_iter().map(|mut file| {
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
