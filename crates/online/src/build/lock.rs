//! The lock a command works from: loaded, checked against the input files (`--locked`), or
//! brought up to date (images, tools, ClamAV databases, upstream charts) and written back.

use std::path::{Path, PathBuf};

use registry::{Client, ClientConfig, Credentials, RegistrySettings};

use super::{charts, resolve, BuildError};
use crate::chart::Upstream;
use crate::spec::{ChartsFile, ImageSpec, ImagesFile, Lock, ToolsFile};
use crate::store::BlobCache;

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

/// What a lock is made from besides images.toml, loaded once per command: tools.toml,
/// charts.toml, the ClamAV source, the download client, the chart resolver and the cache.
pub struct LockInputs {
    /// tools.toml, when the bundle carries tools.
    pub tools: Option<ToolsFile>,
    /// charts.toml, when the bundle carries upstream charts.
    pub charts: Option<ChartsFile>,
    /// files.toml, when the bundle carries the site's files.
    pub files: Option<crate::spec::FilesFile>,
    /// Which locked files are read again from their sources: `bundle lock` refreshes all
    /// (or the one `--update` names), a build none.
    pub refresh_files: RefreshFiles,
    /// Where to take the ClamAV databases from, overriding images.toml's `[clamav]` source
    /// (a `file://` directory or `http(s)://` mirror URL ending in `/`).
    pub clamav_source: Option<String>,
    /// Client for plain downloads (tool archives, signature databases).
    pub http: reqwest::Client,
    /// Resolves and fetches upstream charts.
    pub upstream: Upstream,
    /// The blob cache downloads land in.
    pub cache: BlobCache,
}

/// Which of the lock's `[[file]]` entries are read again from their sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RefreshFiles {
    /// None: entries with an unchanged name and source are kept (builds).
    #[default]
    None,
    /// Every file (`bundle lock`).
    All,
    /// Only this one (`bundle lock --update NAME`).
    Only(String),
}

impl RefreshFiles {
    fn accepts(&self, name: &str) -> bool {
        match self {
            RefreshFiles::None => false,
            RefreshFiles::All => true,
            RefreshFiles::Only(only) => only == name,
        }
    }
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
    bundle_file::pack::write_atomically(&lock.path, |mut file| {
        std::io::Write::write_all(&mut file, text.as_bytes())
            .map_err(|e| bundle_file::BundleError::io(&lock.path, e))?;
        Ok(file)
    })?;
    Ok(())
}

/// `previous` (or a new lock at `lock_path`) brought up to date with the input files: the
/// images `refresh` accepts are resolved again when they changed (others keep their
/// entries), then the tools, ClamAV databases and upstream charts. Not written.
pub async fn update_lock(
    images: &ImagesFile,
    inputs: &LockInputs,
    previous: Option<&Lock>,
    refresh: &dyn Fn(&ImageSpec) -> bool,
    client: &Client,
    jobs: usize,
    lock_path: &Path,
) -> Result<Lock, BuildError> {
    let mut lock = resolve::resolve(images, previous, refresh, client, jobs, lock_path).await?;
    lock_tools(&mut lock, images, inputs).await?;
    lock_clamav(&mut lock, images, inputs).await?;
    charts::lock_charts(&mut lock, inputs.charts.as_ref(), &inputs.upstream).await?;
    lock.files = match &inputs.files {
        Some(files) => {
            let refresh = |name: &str| inputs.refresh_files.accepts(name);
            crate::files::resolve(files, &lock.files, &refresh, &inputs.http, &inputs.cache).await?
        }
        None => Vec::new(),
    };
    Ok(lock)
}

/// The lock a build uses: with `locked`, the existing one, which must match the input files;
/// without, the existing one brought up to date (only what changed is resolved) and written
/// back.
pub async fn lock_for_build(
    images: &ImagesFile,
    inputs: &LockInputs,
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
        if let Some(tools) = &inputs.tools {
            problems.extend(crate::tools::check_against(
                tools,
                &images.platforms,
                &lock.tools,
            ));
        }
        problems.extend(clamav_mismatch(images, &lock));
        problems.extend(charts::chart_mismatch(inputs.charts.as_ref(), &lock));
        problems.extend(crate::files::mismatches(inputs.files.as_ref(), &lock.files));
        if !problems.is_empty() {
            return Err(BuildError::LockMismatch(problems.join("\n")));
        }
        return Ok(lock);
    }
    let lock = update_lock(
        images,
        inputs,
        previous.as_ref(),
        &|_| false,
        client,
        jobs,
        lock_path,
    )
    .await?;
    if previous.as_ref() != Some(&lock) {
        write_lock(&lock)?;
    }
    Ok(lock)
}

/// Brings the lock's `[[tool]]` entries up to date with tools.toml (no tools.toml: none).
async fn lock_tools(
    lock: &mut Lock,
    images: &ImagesFile,
    inputs: &LockInputs,
) -> Result<(), BuildError> {
    lock.tools = match &inputs.tools {
        Some(tools) => {
            tools.check_platforms(&images.platforms)?;
            crate::tools::resolve(
                tools,
                &images.platforms,
                &lock.tools,
                &inputs.http,
                &inputs.cache,
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
async fn lock_clamav(
    lock: &mut Lock,
    images: &ImagesFile,
    inputs: &LockInputs,
) -> Result<(), BuildError> {
    let Some(spec) = &images.clamav else {
        lock.clamav = Vec::new();
        return Ok(());
    };
    match inputs.clamav_source.as_ref().or(spec.source.as_ref()) {
        Some(source) => {
            lock.clamav =
                crate::clamav::collect::collect(spec, source, &inputs.http, &inputs.cache).await?;
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
