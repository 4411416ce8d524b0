//! Resolving and fetching pinned upstream charts. A repository chart: `index.yaml`, the
//! highest version in the range, the `.tgz` checked against the index's digest. An OCI chart:
//! the manifest by tag, checked to be a helm chart, its config checked to name the chart and
//! version, the chart layer fetched. Every `.tgz` lands in the content-addressed blob cache,
//! so fetching a locked chart again is offline once cached, and always digest-checked.

use std::path::PathBuf;

use futures_util::StreamExt as _;

use super::artifact::{helm_layers, tag};
use super::error::ChartError;
use super::metadata::{parse_version, ChartMetadata};
use super::package::PackagedChart;
use super::repo::{index_entries, IndexEntry, INDEX_FILE};
use crate::spec::lock::{LockedChart, LockedSource};
use crate::spec::{ChartSource, UpstreamChart};
use crate::store::{BlobCache, DownloadError};
use oci::media::OCI_MANIFEST;
use oci::{Digest, Reference};
use registry::Client;

/// Largest `index.yaml` read (the biggest public repositories' are tens of MiB).
const MAX_INDEX_SIZE: usize = 256 << 20;

/// Resolves and fetches upstream charts into a blob cache.
#[derive(Debug, Clone)]
pub struct Upstream {
    http: reqwest::Client,
    registry: Client,
    cache: BlobCache,
}

impl Upstream {
    /// Uses `http` for classic repositories, `registry` for OCI ones, and stores every
    /// `.tgz` in `cache`.
    pub fn new(http: reqwest::Client, registry: Client, cache: BlobCache) -> Upstream {
        Upstream {
            http,
            registry,
            cache,
        }
    }

    /// Resolves `chart` to an exact version and digest, and caches its `.tgz`.
    pub async fn resolve(&self, chart: &UpstreamChart) -> Result<LockedChart, ChartError> {
        match &chart.source {
            ChartSource::Repo { url, range } => self.resolve_repo(chart, url, range).await,
            ChartSource::Oci { repository } => {
                self.resolve_oci(chart, repository, &chart.version).await
            }
        }
    }

    /// The cached `.tgz` of `locked`, downloaded first if the cache lacks it; refuses content
    /// whose digest differs from the lock's.
    pub async fn fetch(&self, locked: &LockedChart) -> Result<PathBuf, ChartError> {
        if self.cached(&locked.name, &locked.digest, Some(locked.size))? {
            return Ok(self.cache.file_of(&locked.digest));
        }
        match &locked.source {
            LockedSource::Repo { url, .. } => {
                self.download(&locked.name, &locked.version, url, &locked.digest)
                    .await?;
            }
            LockedSource::Oci {
                repository,
                manifest_digest,
            } => {
                let reference =
                    oci_reference(&locked.name, &format!("{repository}@{manifest_digest}"))?;
                let (layer, _) = self.helm_manifest(&locked.name, &reference).await?;
                if layer.digest != locked.digest {
                    return Err(ChartError::DigestMismatch {
                        chart: locked.name.clone(),
                        version: locked.version.clone(),
                        source_url: format!("{repository}@{manifest_digest}"),
                        expected: locked.digest.to_string(),
                        actual: layer.digest.to_string(),
                    });
                }
                self.pull_layer(&locked.name, &reference, &locked.digest, locked.size)
                    .await?;
            }
        }
        Ok(self.cache.file_of(&locked.digest))
    }

    async fn resolve_repo(
        &self,
        chart: &UpstreamChart,
        repo: &str,
        range: &semver::VersionReq,
    ) -> Result<LockedChart, ChartError> {
        let index_url = format!("{repo}/{INDEX_FILE}");
        let bad_index = |message: String| ChartError::Index {
            chart: chart.name.clone(),
            url: index_url.clone(),
            message,
        };
        let text = self.get_small(&chart.name, &index_url).await?;
        let entries = index_entries(&text, &chart.name).map_err(bad_index)?;
        let entry = pick(&entries, range).ok_or_else(|| ChartError::NoMatch {
            chart: chart.name.clone(),
            repo: repo.to_string(),
            range: chart.version.clone(),
            available: available(&entries),
        })?;
        let version = entry.version.clone();
        let hex = entry
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&entry.digest);
        let expected = Digest::parse(&format!("sha256:{hex}")).map_err(|_| {
            bad_index(format!(
                "version {version} has no usable sha256 digest ({:?})",
                entry.digest
            ))
        })?;
        let first = entry
            .urls
            .first()
            .ok_or_else(|| bad_index(format!("version {version} has no urls")))?;
        let url = reqwest::Url::parse(&format!("{repo}/"))
            .and_then(|base| base.join(first))
            .map_err(|e| bad_index(format!("version {version} has a bad url {first:?}: {e}")))?
            .to_string();
        let size = match self.cache_size(&chart.name, &expected)? {
            Some(size) => size,
            None => {
                self.download(&chart.name, &version, &url, &expected)
                    .await?
            }
        };
        self.check_archive(&chart.name, &version, &expected)
            .map_err(|m| bad_index(format!("version {version} at {url}: {m}")))?;
        Ok(LockedChart {
            name: chart.name.clone(),
            version,
            source: LockedSource::Repo {
                repo: repo.to_string(),
                url,
            },
            digest: expected,
            size,
        })
    }

    async fn resolve_oci(
        &self,
        chart: &UpstreamChart,
        repository: &str,
        version: &str,
    ) -> Result<LockedChart, ChartError> {
        let reference = oci_reference(&chart.name, &format!("{repository}:{}", tag(version)))?;
        let (layer, manifest_digest) = self.helm_manifest(&chart.name, &reference).await?;
        let digest = layer.digest;
        self.pull_layer(&chart.name, &reference, &digest, layer.size)
            .await?;
        self.check_archive(&chart.name, version, &digest)
            .map_err(|message| ChartError::NotHelmArtifact {
                chart: chart.name.clone(),
                reference: reference.to_string(),
                message,
            })?;
        Ok(LockedChart {
            name: chart.name.clone(),
            version: version.to_string(),
            source: LockedSource::Oci {
                repository: repository.to_string(),
                manifest_digest,
            },
            digest,
            size: layer.size,
        })
    }

    /// The chart layer and manifest digest of `reference`, after checking the manifest and
    /// config are a helm chart named `chart` (of the tag's version, when fetched by tag).
    async fn helm_manifest(
        &self,
        chart: &str,
        reference: &Reference,
    ) -> Result<(oci::Descriptor, Digest), ChartError> {
        let not_helm = |message: String| ChartError::NotHelmArtifact {
            chart: chart.to_string(),
            reference: reference.to_string(),
            message,
        };
        let registry = |source| ChartError::Registry {
            chart: chart.to_string(),
            source,
        };
        let fetched = self
            .registry
            .get_manifest(reference)
            .await
            .map_err(registry)?;
        if fetched.media_type != OCI_MANIFEST {
            return Err(not_helm(format!(
                "manifest media type is {}",
                fetched.media_type
            )));
        }
        let (config, layer) = helm_layers(&fetched.bytes).map_err(not_helm)?;
        let mut bytes = Vec::new();
        self.registry
            .get_blob(
                reference,
                &config.digest,
                Some(config.size),
                &mut bytes,
                &|_| {},
            )
            .await
            .map_err(registry)?;
        let metadata: ChartMetadata = serde_json::from_slice(&bytes)
            .map_err(|e| not_helm(format!("config does not parse: {e}")))?;
        if metadata.name != chart {
            return Err(not_helm(format!("config names chart {}", metadata.name)));
        }
        if let Some(wanted) = &reference.tag {
            if tag(&metadata.version) != *wanted {
                return Err(not_helm(format!(
                    "config gives version {}, the tag is {wanted}",
                    metadata.version
                )));
            }
        }
        Ok((layer, fetched.digest))
    }

    /// Puts the layer `digest` of `reference` in the cache unless it is there.
    async fn pull_layer(
        &self,
        chart: &str,
        reference: &Reference,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ChartError> {
        if self.cached(chart, digest, Some(size))? {
            return Ok(());
        }
        let cache_err = |source| ChartError::Cache {
            chart: chart.to_string(),
            source,
        };
        let mut pending = self.cache.pending(digest).map_err(cache_err)?;
        let path = pending.path().to_path_buf();
        let file = pending
            .file()
            .try_clone()
            .map_err(super::error::io(&path))?;
        let mut out = tokio::fs::File::from_std(file);
        self.registry
            .get_blob(reference, digest, Some(size), &mut out, &|_| {})
            .await
            .map_err(|source| ChartError::Registry {
                chart: chart.to_string(),
                source,
            })?;
        tokio::io::AsyncWriteExt::flush(&mut out)
            .await
            .map_err(super::error::io(&path))?;
        pending.commit_checked(false).map_err(cache_err)?;
        Ok(())
    }

    /// Downloads `url` into the cache as `expected`; returns its size. Refuses other content.
    async fn download(
        &self,
        chart: &str,
        version: &str,
        url: &str,
        expected: &Digest,
    ) -> Result<u64, ChartError> {
        match crate::store::download(&self.http, url, &self.cache, Some(expected)).await {
            Ok(stored) => Ok(stored.size),
            Err(DownloadError::DigestMismatch { actual, .. }) => Err(ChartError::DigestMismatch {
                chart: chart.to_string(),
                version: version.to_string(),
                source_url: url.to_string(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            }),
            Err(source) => Err(ChartError::Download {
                chart: chart.to_string(),
                source,
            }),
        }
    }

    /// A small document (an index), whole.
    async fn get_small(&self, chart: &str, url: &str) -> Result<Vec<u8>, ChartError> {
        let http = |source| ChartError::Http {
            chart: chart.to_string(),
            url: url.to_string(),
            source,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(http)?;
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(http)?);
            if body.len() > MAX_INDEX_SIZE {
                return Err(ChartError::Index {
                    chart: chart.to_string(),
                    url: url.to_string(),
                    message: format!("larger than {MAX_INDEX_SIZE} bytes"),
                });
            }
        }
        Ok(body)
    }

    /// Checks the cached `.tgz` `digest` is chart `chart` at `version`; the error says what
    /// it is instead.
    fn check_archive(&self, chart: &str, version: &str, digest: &Digest) -> Result<(), String> {
        let opened = PackagedChart::open(&self.cache.file_of(digest)).map_err(|e| {
            let mut message = e.to_string();
            if let Some(source) = std::error::Error::source(&e) {
                message.push_str(&format!(": {source}"));
            }
            message
        })?;
        let metadata = &opened.metadata;
        if metadata.name != chart || tag(&metadata.version) != tag(version) {
            return Err(format!(
                "the archive holds chart {} version {}",
                metadata.name, metadata.version
            ));
        }
        Ok(())
    }

    /// Whether the cache holds `digest` whole (a bad entry is evicted).
    fn cached(&self, chart: &str, digest: &Digest, size: Option<u64>) -> Result<bool, ChartError> {
        self.cache
            .verify(digest, size)
            .map_err(|source| ChartError::Cache {
                chart: chart.to_string(),
                source,
            })
    }

    /// The size of `digest` in the cache, if it is there whole.
    fn cache_size(&self, chart: &str, digest: &Digest) -> Result<Option<u64>, ChartError> {
        if !self.cached(chart, digest, None)? {
            return Ok(None);
        }
        let path = self.cache.file_of(digest);
        let len = std::fs::metadata(&path)
            .map_err(super::error::io(&path))?
            .len();
        Ok(Some(len))
    }
}

/// The highest version of `entries` in `range` (prereleases only if the range names one).
fn pick<'a>(entries: &'a [IndexEntry], range: &semver::VersionReq) -> Option<&'a IndexEntry> {
    entries
        .iter()
        .filter_map(|e| parse_version(&e.version).map(|v| (v, e)))
        .filter(|(v, _)| range.matches(v))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, e)| e)
}

/// Up to ten versions of `entries`, highest first, for messages.
fn available(entries: &[IndexEntry]) -> String {
    let mut versions: Vec<semver::Version> = entries
        .iter()
        .filter_map(|e| parse_version(&e.version))
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    let shown: Vec<String> = versions.iter().take(10).map(|v| v.to_string()).collect();
    match versions.len() {
        0 => "none".to_string(),
        n if n > 10 => format!("{}, ... ({n} in all)", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// The registry reference of `oci://...` text.
fn oci_reference(chart: &str, written: &str) -> Result<Reference, ChartError> {
    let rest = written.strip_prefix("oci://").unwrap_or(written);
    Reference::parse(rest).map_err(|e| ChartError::NotHelmArtifact {
        chart: chart.to_string(),
        reference: written.to_string(),
        message: e.reason.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str) -> IndexEntry {
        IndexEntry {
            version: version.into(),
            digest: String::new(),
            urls: Vec::new(),
        }
    }

    #[test]
    fn the_highest_release_in_range_wins() {
        let entries = [
            entry("v1.19.1"),
            entry("1.19.3"),
            entry("1.20.0"),
            entry("1.19.4-rc.1"),
            entry("not-a-version"),
        ];
        let pick_version = |range: &str| {
            pick(&entries, &semver::VersionReq::parse(range).unwrap()).map(|e| e.version.clone())
        };
        assert_eq!(pick_version("~1.19").as_deref(), Some("1.19.3"));
        assert_eq!(
            pick_version(">=1.19.4-rc.1, <1.20").as_deref(),
            Some("1.19.4-rc.1")
        );
        assert_eq!(pick_version("^1").as_deref(), Some("1.20.0"));
        assert_eq!(pick_version("~2"), None);
        assert_eq!(available(&entries), "1.20.0, 1.19.4-rc.1, 1.19.3, 1.19.1");
    }
}
