//! Options shared by the commands that read images.toml and talk to registries.

use anyhow::{Context, Result};
use cli_support::retries::RetryReporter;
use cli_support::Output;
use online::build::{client_config, LockInputs, RefreshFiles};
use online::chart::Upstream;
use online::spec::{ChartsFile, FilesFile, ImagesFile, SpecError, ToolsFile};
use online::store::BlobCache;
use registry::{Client, Credentials};
use std::path::PathBuf;
use std::sync::Arc;

/// Input files and registry access.
#[derive(Debug, Clone, clap::Args)]
pub struct ImagesArgs {
    /// The image list.
    #[arg(long, default_value = "images.toml", value_name = "FILE")]
    pub images: PathBuf,
    /// The lock file.
    #[arg(long, default_value = "manifests.lock", value_name = "FILE")]
    pub lock: PathBuf,
    /// Talk to this registry (HOST\[:PORT\]) over plain HTTP or unverified TLS (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure: Vec<String>,
    /// Trust this PEM CA certificate for registries, beside the system's (repeatable).
    #[arg(long = "ca-file", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
    /// The tools the installer needs offline [default: tools.toml beside images.toml, skipped
    /// when absent].
    #[arg(long, value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// The upstream charts to pin and carry [default: charts.toml beside images.toml, skipped
    /// when absent].
    #[arg(long, value_name = "FILE")]
    pub charts: Option<PathBuf>,
    /// Files the site needs besides images, pinned and carried as files/ [default: files.toml
    /// beside images.toml, skipped when absent].
    #[arg(long, value_name = "FILE")]
    pub files: Option<PathBuf>,
    /// Take the ClamAV databases from this directory (kept by Cisco's cvdupdate), overriding
    /// images.toml's \[clamav\] source.
    #[arg(long, value_name = "DIR", conflicts_with = "clamav_mirror")]
    pub clamav_dir: Option<PathBuf>,
    /// Take the ClamAV databases from this private mirror URL, overriding images.toml.
    #[arg(long, value_name = "URL")]
    pub clamav_mirror: Option<String>,
    /// Requests and downloads in flight.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,
}

impl ImagesArgs {
    /// Loads images.toml.
    pub fn load_images(&self) -> Result<ImagesFile> {
        Ok(ImagesFile::load(&self.images)?)
    }

    /// `given`, or `name` beside images.toml when that exists; `None` when neither is named
    /// nor present.
    pub fn beside_images(&self, given: Option<&PathBuf>, name: &str) -> Option<PathBuf> {
        if let Some(path) = given {
            return Some(path.clone());
        }
        let default = self
            .images
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join(name);
        default.exists().then_some(default)
    }

    /// Loads the input file `given` or `name` beside images.toml with `load`, if there is one.
    fn load_beside<T>(
        &self,
        given: Option<&PathBuf>,
        name: &str,
        load: fn(&std::path::Path) -> Result<T, SpecError>,
    ) -> Result<Option<T>> {
        self.beside_images(given, name)
            .map(|path| load(&path))
            .transpose()
            .map_err(Into::into)
    }

    /// Loads tools.toml, if there is one.
    pub fn load_tools(&self) -> Result<Option<ToolsFile>> {
        self.load_beside(self.tools.as_ref(), "tools.toml", ToolsFile::load)
    }

    /// Loads charts.toml, if there is one.
    pub fn load_charts(&self) -> Result<Option<ChartsFile>> {
        self.load_beside(self.charts.as_ref(), "charts.toml", ChartsFile::load)
    }

    /// Loads files.toml, if there is one.
    pub fn load_files(&self) -> Result<Option<FilesFile>> {
        self.load_beside(self.files.as_ref(), "files.toml", FilesFile::load)
    }

    /// The ClamAV source the command line names, as a URL ending in `/`.
    pub fn clamav_source(&self) -> Option<String> {
        match (&self.clamav_dir, &self.clamav_mirror) {
            (Some(dir), _) => Some(online::spec::clamav::dir_url(dir)),
            (None, Some(url)) => Some(online::spec::clamav::mirror_url(url)),
            (None, None) => None,
        }
    }

    /// Loads what a lock needs besides images.toml; downloads go to `cache`.
    pub fn lock_inputs(&self, client: &Client, cache: BlobCache) -> Result<LockInputs> {
        let http = online::store::http_client(&self.ca_files)?;
        Ok(LockInputs {
            tools: self.load_tools()?,
            charts: self.load_charts()?,
            files: self.load_files()?,
            refresh_files: RefreshFiles::None,
            clamav_source: self.clamav_source(),
            upstream: Upstream::new(http.clone(), client.clone(), cache.clone()),
            http,
            cache,
        })
    }

    /// A registry client for `images`, with logins from docker's and podman's files.
    /// Its retries are reported through `out`.
    pub fn client(&self, images: &ImagesFile, out: Output) -> Result<Client> {
        let credentials = Credentials::from_environment().context("reading registry logins")?;
        let mut config = client_config(images, &self.ca_files, &self.insecure, credentials);
        config.retry_observer = Some(Arc::new(RetryReporter(out)));
        Ok(Client::new(config)?)
    }
}

/// A runtime for the async commands: two worker threads suit the machines this runs on, the
/// CPU-heavy packing runs on its own threads.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
