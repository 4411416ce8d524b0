//! The executor: first every image's blobs (mounted straight away from another repository this
//! run uploaded it to; else HEAD first, then mounted from a repository holding it or
//! uploaded), several in flight, while the bundle's member check may still be running; then,
//! once it passed, per image the child manifests by digest and the root by its tag, asking
//! first (HEAD) only when no blob of the image had to be sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bundle_file::archive::ReadAt;
use bundle_file::stream::member_pieces;
use bundle_file::{Bundle, Located, MemberCheck, Progress};
use futures_util::stream::{self, StreamExt as _};
use oci::{blob_path, Digest, Pieces, Reference};
use registry::{BlobSource, Client};
use serde::Serialize;

use super::error::{LoadError, Within as _};
use super::plan::ImagePlan;

type Result<T, E = LoadError> = std::result::Result<T, E>;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Blobs in flight at once (at least 1).
    pub jobs: usize,
    /// Blobs larger than this go up in chunks of this size ([`registry::CHUNK_SIZE`] by
    /// default).
    pub chunk_size: u64,
}

/// What a load did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Images in the bundle (charts not counted).
    pub images: usize,
    /// Images whose tag now points at a complete image.
    pub images_loaded: usize,
    /// Helm charts (OCI artifacts) in the bundle.
    pub charts: usize,
    /// Charts whose tag now points at a complete artifact.
    pub charts_loaded: usize,
    /// Blobs uploaded.
    pub blobs_pushed: u64,
    /// Blobs the registry already had.
    pub blobs_skipped: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Bytes uploaded.
    pub bytes_pushed: u64,
    /// Bytes not uploaded because the registry had them or mounted them.
    pub bytes_skipped: u64,
    /// Manifests and indexes pushed (by digest, or a tagged root by its tag).
    pub manifests_pushed: u64,
    /// Manifests and indexes the registry already had (a root: under its tag).
    pub manifests_skipped: u64,
    /// Tags set (or moved).
    pub tags_pushed: u64,
    /// Seconds the load took.
    pub seconds: f64,
    /// Images that failed, with why.
    pub failures: Vec<Failure>,
}

impl Summary {
    /// Whether the registry held everything already: every image and chart loaded, and not
    /// one blob, manifest or tag had to be sent.
    pub fn already_complete(&self) -> bool {
        self.failures.is_empty()
            && self.images_loaded == self.images
            && self.charts_loaded == self.charts
            && self.blobs_pushed == 0
            && self.blobs_mounted == 0
            && self.manifests_pushed == 0
            && self.tags_pushed == 0
    }
}

/// One image that could not be loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The image's reference in the bundle.
    pub image: String,
    /// Why.
    pub error: String,
}

#[derive(Default)]
struct Counters {
    /// Set once the registry could not be reached at all: nothing more is tried.
    unreachable: std::sync::atomic::AtomicBool,
    blobs_pushed: AtomicU64,
    blobs_skipped: AtomicU64,
    blobs_mounted: AtomicU64,
    bytes_pushed: AtomicU64,
    bytes_skipped: AtomicU64,
}

/// A blob of the bundle, streamed from the compressed file.
struct MemberBlob<S> {
    bundle: Arc<Bundle<S>>,
    member: Located,
}

impl<S: ReadAt + 'static> BlobSource for MemberBlob<S> {
    fn pieces(&self, offset: u64, len: u64) -> Pieces {
        member_pieces(Arc::clone(&self.bundle), self.member.clone(), offset, len)
    }
}

/// Pushes every planned image into the registry, with `progress` counting bytes (pushed and
/// skipped). Failed images are listed in the summary; the others are still loaded. With a
/// member `check` running, no manifest or tag is pushed until it passed, and its failure ends
/// the load. Must run inside a tokio runtime (bundle reads run on blocking threads).
pub async fn load<S: ReadAt + 'static>(
    client: &Client,
    bundle: Arc<Bundle<S>>,
    plans: &[ImagePlan],
    options: &LoadOptions,
    progress: &dyn Progress,
    check: Option<MemberCheck>,
) -> Result<Summary> {
    let started = Instant::now();
    check_left_to_site(client, &bundle, plans, options.jobs).await?;
    let total: u64 = plans
        .iter()
        .flat_map(|p| p.blobs.iter().map(|(_, size)| size))
        .sum();
    progress.start("pushing", total);
    let counters = Counters::default();
    let blobs = push_blobs(client, &bundle, plans, options, progress, &counters).await;
    progress.finish();
    if let Some(check) = check {
        check.verdict().await?;
    }
    let charts = plans.iter().filter(|p| is_chart(p)).count();
    let mut summary = Summary {
        images: plans.len() - charts,
        charts,
        ..Summary::default()
    };
    for (plan, blobs) in plans.iter().zip(blobs) {
        let pushed = match (blobs, not_tried(&plan.target, &counters)) {
            (Err(error), _) | (Ok(_), Some(error)) => Err(error),
            (Ok(sent), None) => push_manifests(client, plan, sent)
                .await
                .inspect_err(|e| note_unreachable(e, &counters)),
        };
        match pushed {
            Ok((pushed, skipped, tagged)) => {
                summary.manifests_pushed += pushed;
                summary.manifests_skipped += skipped;
                summary.tags_pushed += tagged;
                if is_chart(plan) {
                    summary.charts_loaded += 1;
                } else {
                    summary.images_loaded += 1;
                }
            }
            Err(error) => summary.failures.push(Failure {
                image: plan.source.clone(),
                error: oci::error_chain(&error),
            }),
        }
    }
    summary.blobs_pushed = counters.blobs_pushed.load(Ordering::Relaxed);
    summary.blobs_skipped = counters.blobs_skipped.load(Ordering::Relaxed);
    summary.blobs_mounted = counters.blobs_mounted.load(Ordering::Relaxed);
    summary.bytes_pushed = counters.bytes_pushed.load(Ordering::Relaxed);
    summary.bytes_skipped = counters.bytes_skipped.load(Ordering::Relaxed);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Once the registry could not be reached, the error of everything not tried after.
fn not_tried(target: &Reference, counters: &Counters) -> Option<LoadError> {
    counters
        .unreachable
        .load(Ordering::Relaxed)
        .then(|| LoadError::NotTried {
            registry: target.registry.clone(),
        })
}

/// Remembers a registry that could not be reached at all (its requests had their retries).
fn note_unreachable(error: &LoadError, counters: &Counters) {
    let mut current = error;
    loop {
        match current {
            LoadError::Registry(registry::RegistryError::Unreachable { .. }) => {
                counters.unreachable.store(true, Ordering::Relaxed);
                return;
            }
            LoadError::In { source, .. } => current = source,
            _ => return,
        }
    }
}

/// Whether a plan is a Helm chart artifact (`charts/<name>:<version>` in the bundle).
fn is_chart(plan: &ImagePlan) -> bool {
    plan.source
        .starts_with(&format!("{}/", online::chart::artifact::REPOSITORY_PREFIX))
}

/// Where a blob already is in the target registry: the repository it was found in or put
/// into, and whether this load uploaded it there. A task holds its blob's slot while it puts
/// the blob there, so a task for the same blob in another repository waits and then mounts it
/// instead of uploading it again.
type Landing = tokio::sync::Mutex<Option<Landed>>;

/// A repository holding a blob.
struct Landed {
    repository: String,
    /// This load uploaded it (the first repository asked lacked it): another repository
    /// mounts it without asking (HEAD) first; a mount of a blob already there does no harm.
    uploaded: bool,
}

/// Puts every blob of every image in the target, `options.jobs` at once across images; the
/// result per image: whether anything was sent into its repository (an upload or a mount).
/// Each blob's first use goes first, largest first, so the long uploads start early; its other
/// uses (mounts, mostly) follow.
async fn push_blobs<S: ReadAt + 'static>(
    client: &Client,
    bundle: &Arc<Bundle<S>>,
    plans: &[ImagePlan],
    options: &LoadOptions,
    progress: &dyn Progress,
    counters: &Counters,
) -> Vec<Result<bool>> {
    let mut landings: HashMap<&Digest, Landing> = HashMap::new();
    let (mut firsts, mut repeats) = (Vec::new(), Vec::new());
    for (index, plan) in plans.iter().enumerate() {
        for (digest, size) in &plan.blobs {
            let first = !landings.contains_key(digest);
            landings.entry(digest).or_default();
            let task = (index, digest, *size);
            if first {
                firsts.push(task);
            } else {
                repeats.push(task);
            }
        }
    }
    firsts.sort_by_key(|&(_, _, size)| std::cmp::Reverse(size));
    let landings = &landings;
    let pushed: Vec<(usize, Result<bool>)> = stream::iter(firsts.into_iter().chain(repeats))
        .map(|(index, digest, size)| async move {
            let target = &plans[index].target;
            let landing = &landings[digest];
            let result = match not_tried(target, counters) {
                Some(error) => Err(error),
                None => push_blob(
                    client, bundle, target, digest, size, landing, options, progress, counters,
                )
                .await
                .inspect_err(|e| note_unreachable(e, counters)),
            }
            .within(|| format!("pushing blob {digest} to {}", target.name()));
            (index, result)
        })
        .buffer_unordered(options.jobs.max(1))
        .collect()
        .await;
    let mut results: Vec<Result<bool>> = plans.iter().map(|_| Ok(false)).collect();
    for (index, result) in pushed {
        match (result, &mut results[index]) {
            (Err(error), Ok(_)) => results[index] = Err(error),
            (Ok(sent), Ok(any)) => *any |= sent,
            (_, Err(_)) => {}
        }
    }
    results
}

/// Fails before anything is pushed when a blob the bundle leaves to the site (an update's base
/// layers, a delta's unchanged blobs) is not in the repository its image loads into; a delta's
/// error names the bundle it was built against.
async fn check_left_to_site<S: ReadAt + 'static>(
    client: &Client,
    bundle: &Bundle<S>,
    plans: &[ImagePlan],
    jobs: usize,
) -> Result<()> {
    /// A blob left to the site: the target it must be in, its digest, the image naming it.
    type Left<'a> = (&'a Reference, &'a Digest, &'a str);
    let wanted: Vec<(&Reference, &Digest, u64, &str)> = plans
        .iter()
        .flat_map(|p| {
            p.external
                .iter()
                .map(move |(d, size, image)| (&p.target, d, *size, image.as_str()))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let checked: Vec<Result<Option<Left>>> = stream::iter(&wanted)
        .map(|(target, digest, size, image)| async move {
            let present = client
                .has_blob(target, digest, *size)
                .await
                .within(|| format!("checking blob {digest} in {}", target.name()))?;
            Ok((!present).then_some((*target, *digest, *image)))
        })
        .buffered(jobs.max(1))
        .collect()
        .await;
    let mut missing = Vec::new();
    for result in checked {
        missing.extend(result?);
    }
    let Some((target, digest, image)) = missing.first().copied() else {
        return Ok(());
    };
    Err(match bundle_file::external::read_base(bundle)? {
        Some(base) => LoadError::MissingDeltaBase {
            base: base.to_string(),
            missing: missing.len(),
            digest: digest.clone(),
            repository: target.name(),
        },
        None => LoadError::MissingBase {
            image: image.to_string(),
            digest: digest.clone(),
            repository: target.name(),
        },
    })
}

/// Pushes one image's manifests (children first, by digest) and its tag (the blobs it leaves
/// to the site were checked first); returns manifests pushed, manifests skipped, tags set. A
/// tagged root goes up by its tag only. When `fresh` (this load sent some of the image's
/// blobs into its repository, which a registry holding its manifests would not have needed),
/// nothing is asked before it is put: putting a manifest again does no harm.
async fn push_manifests(client: &Client, plan: &ImagePlan, fresh: bool) -> Result<(u64, u64, u64)> {
    let target = &plan.target;
    let (mut pushed, mut skipped) = (0, 0);
    let untagged = plan.manifests.len() - usize::from(target.tag.is_some());
    for manifest in &plan.manifests[..untagged] {
        let by_digest = Reference {
            tag: None,
            digest: Some(manifest.digest.clone()),
            ..target.clone()
        };
        if !fresh {
            let present = client
                .head_manifest(&by_digest)
                .await
                .within(|| format!("checking {by_digest}"))?;
            if present.is_some() {
                skipped += 1;
                continue;
            }
        }
        client
            .put_manifest(&by_digest, &manifest.media_type, manifest.bytes.clone())
            .await
            .within(|| format!("pushing manifest {by_digest}"))?;
        pushed += 1;
    }
    let mut tagged = 0;
    if target.tag.is_some() {
        let root = plan.root();
        let current = if fresh {
            None
        } else {
            client
                .head_manifest(target)
                .await
                .within(|| format!("checking {target}"))?
                .map(|(_, digest, _)| digest)
        };
        if current.as_ref() == Some(&root.digest) {
            skipped += 1;
        } else {
            client
                .put_manifest(target, &root.media_type, root.bytes.clone())
                .await
                .within(|| format!("tagging {target}"))?;
            pushed += 1;
            tagged = 1;
        }
    }
    Ok((pushed, skipped, tagged))
}

/// Puts one blob in `target`'s repository: a mount, without asking first, if this load
/// uploaded it to another repository; else nothing if it is there, a mount if `landing` knows
/// another repository holding it, else an upload. Returns whether anything was sent.
#[allow(clippy::too_many_arguments)]
async fn push_blob<S: ReadAt + 'static>(
    client: &Client,
    bundle: &Arc<Bundle<S>>,
    target: &Reference,
    digest: &Digest,
    size: u64,
    landing: &Landing,
    options: &LoadOptions,
    progress: &dyn Progress,
    counters: &Counters,
) -> Result<bool> {
    let mut landed = landing.lock().await;
    let elsewhere = landed
        .as_ref()
        .filter(|l| l.repository != target.repository);
    let uploaded_elsewhere = elsewhere.is_some_and(|l| l.uploaded);
    if !uploaded_elsewhere && client.has_blob(target, digest, size).await? {
        counters.blobs_skipped.fetch_add(1, Ordering::Relaxed);
        counters.bytes_skipped.fetch_add(size, Ordering::Relaxed);
        progress.advance(size);
        landed.get_or_insert_with(|| Landed {
            repository: target.repository.clone(),
            uploaded: false,
        });
        return Ok(false);
    }
    if let Some(from) = elsewhere.map(|l| l.repository.as_str()) {
        if client.mount_blob(target, digest, from).await? {
            counters.blobs_mounted.fetch_add(1, Ordering::Relaxed);
            counters.bytes_skipped.fetch_add(size, Ordering::Relaxed);
            progress.advance(size);
            return Ok(true);
        }
    }
    let path = blob_path(digest);
    let Some(member) = bundle.member(&path) else {
        return Err(LoadError::Unloadable(format!("the bundle has no {path}")));
    };
    let source = MemberBlob {
        bundle: Arc::clone(bundle),
        member: member.clone(),
    };
    let report = |n: u64| progress.advance(n);
    client
        .upload_blob(target, digest, size, options.chunk_size, &source, &report)
        .await?;
    counters.blobs_pushed.fetch_add(1, Ordering::Relaxed);
    counters.bytes_pushed.fetch_add(size, Ordering::Relaxed);
    *landed = Some(Landed {
        repository: target.repository.clone(),
        uploaded: true,
    });
    Ok(true)
}
