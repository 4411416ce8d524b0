//! The tools the installer runs offline (helm, kubectl): declared in `tools.toml`
//! ([`crate::spec::tools`]), pinned by sha256 in manifests.lock (`[[tool]]`, one entry per tool and
//! platform: [`LockedTool`]), and carried in the bundle as `tools/<os>-<arch>/<name>`.
//!
//! `bundle lock` downloads each archive once to learn its digest and the binary's
//! ([`resolve`]); `bundle build` downloads only what the cache lacks, refuses anything that
//! does not hash to the pinned digests, and keeps the extracted binary in the cache under
//! its own digest ([`fetch`]).

use crate::spec::lock::tools_dir;
use crate::spec::{LockedTool, ToolsFile};
use crate::store::{download, BlobCache, DownloadError, StoreError};
use oci::Digest;
use oci::Platform;
use std::io::Read as _;
use std::path::PathBuf;

/// Why a tool cannot be locked or fetched, naming the tool, platform and URL.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The download failed or is not what the lock pins.
    #[error("tool {tool} for {platform}")]
    Download {
        /// The tool.
        tool: String,
        /// Its platform.
        platform: String,
        /// The cause.
        #[source]
        source: DownloadError,
    },
    /// The archive does not hold the named binary, or cannot be read.
    #[error("tool {tool} for {platform}: {message}")]
    Archive {
        /// The tool.
        tool: String,
        /// Its platform.
        platform: String,
        /// What is wrong.
        message: String,
    },
    /// The extracted binary is not the one the lock pins.
    #[error("tool {tool} for {platform}: the binary hashes to {actual}, the lock pins {expected}")]
    BinaryMismatch {
        /// The tool.
        tool: String,
        /// Its platform.
        platform: String,
        /// The pinned digest.
        expected: Digest,
        /// The binary's digest.
        actual: Digest,
    },
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lock entries for `tools` on `platforms`: entries of `previous` whose source did not
/// change are kept; the others are downloaded into `cache` and hashed. Sorted by name, then
/// platform.
pub async fn resolve(
    tools: &ToolsFile,
    platforms: &[Platform],
    previous: &[LockedTool],
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<LockedTool>, ToolError> {
    let mut locked = Vec::new();
    for tool in &tools.tools {
        for download in tool
            .downloads
            .iter()
            .filter(|d| platforms.contains(&d.platform))
        {
            if let Some(kept) = previous.iter().find(|p| p.matches(tool, download)) {
                locked.push(kept.clone());
                continue;
            }
            let fail = |source| ToolError::Download {
                tool: tool.name.clone(),
                platform: download.platform.to_string(),
                source,
            };
            let stored = download::download(http, &download.url, cache, None)
                .await
                .map_err(fail)?;
            let (sha256, size) = binary(
                cache,
                &stored.digest,
                &tool.name,
                &download.platform.to_string(),
                download.member.as_deref(),
            )?;
            locked.push(LockedTool {
                name: tool.name.clone(),
                version: tool.version.clone(),
                platform: download.platform.to_string(),
                url: download.url.clone(),
                member: download.member.clone(),
                download_sha256: stored.digest,
                sha256,
                size,
            });
        }
    }
    locked.sort_by(|a, b| (&a.name, &a.platform).cmp(&(&b.name, &b.platform)));
    Ok(locked)
}

/// A tool binary ready for the bundle.
#[derive(Debug, Clone)]
pub struct ToolFile {
    /// Its path in the bundle.
    pub bundle_path: String,
    /// The cached binary.
    pub file: PathBuf,
    /// Its size.
    pub size: u64,
}

/// Every locked binary, from the cache or downloaded, each checked against the lock.
pub async fn fetch(
    locked: &[LockedTool],
    http: &reqwest::Client,
    cache: &BlobCache,
) -> Result<Vec<ToolFile>, ToolError> {
    let mut files = Vec::with_capacity(locked.len());
    for tool in locked {
        let cached = {
            let cache = cache.clone();
            let digest = tool.sha256.clone();
            let size = tool.size;
            tokio::task::spawn_blocking(move || cache.verify(&digest, Some(size)))
                .await
                .map_err(|e| archive_error(tool, e.to_string()))??
        };
        if !cached {
            let stored = download::download(http, &tool.url, cache, Some(&tool.download_sha256))
                .await
                .map_err(|source| ToolError::Download {
                    tool: tool.name.clone(),
                    platform: tool.platform.clone(),
                    source,
                })?;
            let (actual, _) = binary(
                cache,
                &stored.digest,
                &tool.name,
                &tool.platform,
                tool.member.as_deref(),
            )?;
            if actual != tool.sha256 {
                return Err(ToolError::BinaryMismatch {
                    tool: tool.name.clone(),
                    platform: tool.platform.clone(),
                    expected: tool.sha256.clone(),
                    actual,
                });
            }
        }
        files.push(ToolFile {
            bundle_path: tool.bundle_path(),
            file: cache.file_of(&tool.sha256),
            size: tool.size,
        });
    }
    Ok(files)
}

/// The platform this program runs on, as tools.toml names platforms (`linux/amd64`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

/// The fetched binary `name` for this host (one of `files`, which [`fetch`] checked), copied
/// into `dir` as an executable file; `None` when the bundle carries none for this platform.
pub fn host_binary(
    files: &[ToolFile],
    name: &str,
    dir: &std::path::Path,
) -> std::io::Result<Option<PathBuf>> {
    let wanted = format!("{}/{name}", tools_dir(&host_platform()));
    let Some(tool) = files.iter().find(|f| f.bundle_path == wanted) else {
        return Ok(None);
    };
    let target = dir.join(name);
    std::fs::copy(&tool.file, &target)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(Some(target))
}

fn archive_error(tool: &LockedTool, message: String) -> ToolError {
    ToolError::Archive {
        tool: tool.name.clone(),
        platform: tool.platform.clone(),
        message,
    }
}

/// The binary of the cached download `download`: the download itself, or `member` of it
/// (a gzip-compressed tar), stored in the cache under its own digest. Returns its digest and
/// size.
fn binary(
    cache: &BlobCache,
    download: &Digest,
    tool: &str,
    platform: &str,
    member: Option<&str>,
) -> Result<(Digest, u64), ToolError> {
    let fail = |message: String| ToolError::Archive {
        tool: tool.to_string(),
        platform: platform.to_string(),
        message,
    };
    let Some(member) = member else {
        let path = cache.file_of(download);
        let size = std::fs::metadata(&path)
            .map_err(|e| fail(format!("{}: {e}", path.display())))?
            .len();
        return Ok((download.clone(), size));
    };
    let path = cache.file_of(download);
    let file = std::fs::File::open(&path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|e| fail(format!("the download is not a .tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("the download is not a .tar.gz: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| fail(format!("bad path in the archive: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if name != member {
            continue;
        }
        let mut incoming = cache.incoming()?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| fail(format!("reading {member} from the archive: {e}")))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut incoming, &buf[..n])
                .map_err(|e| fail(format!("writing {member} to the cache: {e}")))?;
        }
        return Ok(incoming.commit()?);
    }
    Err(fail(format!("the download holds no {member}")))
}

/// Differences between the tools of `tools` on `platforms` and `locked`, one line each, as
/// `bundle build --locked` reports them.
pub fn check_against(
    tools: &ToolsFile,
    platforms: &[Platform],
    locked: &[LockedTool],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; locked.len()];
    for tool in &tools.tools {
        for download in tool
            .downloads
            .iter()
            .filter(|d| platforms.contains(&d.platform))
        {
            match locked.iter().position(|l| l.matches(tool, download)) {
                Some(i) => used[i] = true,
                None => problems.push(format!(
                    "{}:{}: tool {} {} for {} is not locked from {} (run `bundle lock`)",
                    tools.path.display(),
                    download.line,
                    tool.name,
                    tool.version,
                    download.platform,
                    download.url
                )),
            }
        }
    }
    for (entry, used) in locked.iter().zip(used) {
        if !used {
            problems.push(format!(
                "the lock has tool {} {} for {}, which {} does not ask for",
                entry.name,
                entry.version,
                entry.platform,
                tools.path.display()
            ));
        }
    }
    problems
}
