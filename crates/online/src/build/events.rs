//! What the pipeline tells its caller while it works, for progress bars, per-image lines and
//! machine-readable event streams. The library only emits; the binaries decide what to show.

use serde::Serialize;

/// One thing that happened during a build.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum BuildEvent {
    /// An image resolved to a digest.
    Resolved {
        /// The image reference.
        image: String,
        /// What the reference resolved to.
        digest: String,
        /// Bundled platforms.
        platforms: Vec<String>,
    },
    /// The blob downloads start.
    FetchStarted {
        /// Distinct blobs needed.
        blobs: usize,
        /// Their total size.
        bytes: u64,
    },
    /// More bytes of blobs are in the cache (downloaded or found there).
    #[serde(skip)]
    Progress {
        /// Bytes since the last event.
        bytes: u64,
    },
    /// Every blob of an image is in the cache.
    ImageFetched {
        /// The image reference.
        image: String,
        /// Its blobs.
        blobs: usize,
        /// Their size.
        bytes: u64,
        /// Of which this many bytes were downloaded (the rest was cached).
        downloaded: u64,
    },
    /// Packing starts.
    PackStarted {
        /// Bytes to pack.
        bytes: u64,
    },
    /// Something the release engineer may want to read (capacity arithmetic, what is being
    /// rendered).
    Info {
        /// The text.
        message: String,
    },
    /// Something that does not stop the build but may be wrong.
    Warning {
        /// The text.
        message: String,
    },
}

/// Receives build events.
pub trait BuildEvents: Send + Sync {
    /// Something happened.
    fn event(&self, event: BuildEvent);
}

/// Events that go nowhere.
pub struct NoEvents;

impl BuildEvents for NoEvents {
    fn event(&self, _: BuildEvent) {}
}
