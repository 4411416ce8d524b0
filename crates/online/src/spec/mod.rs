//! Every input file of the online side and what it resolves to, with line-accurate errors.
//!
//! - [`images`]: `images.toml`, every image the stack runs, by name and tag (or digest), with
//!   the platforms to carry and per-registry settings (plain HTTP, mirrors); its `[clamav]`
//!   table is [`clamav`].
//! - [`charts`]: `charts.toml`, the pinned upstream charts.
//! - [`tools`]: `tools.toml`, the helm and kubectl downloads per platform.
//! - [`files`]: `files.toml`, files the site needs besides images.
//! - [`releases`]: `releases.toml`, what the installer renders, for `bundle find-images`.
//! - [`lock`]: `manifests.lock`, what the others resolved to (image digests and sizes,
//!   charts, ClamAV databases, tools), written deterministically so that it diffs well and
//!   builds from it are reproducible; `bundle build --locked` checks it against
//!   `images.toml` with [`Lock::check_against`].
//!
//! Every parse or validation error is a [`SpecError`] whose [`Location`] names the file, the
//! line and, where it helps, the column: `images.toml:12:7: unknown field ...`.

pub mod charts;
pub mod clamav;
pub mod error;
pub mod files;
pub mod images;
pub mod lock;
pub mod releases;
pub mod tools;

pub use charts::{ChartSource, ChartsFile, UpstreamChart};
pub use clamav::ClamavSpec;
pub use error::{Location, SpecError};
pub use files::{FileSpec, FilesFile};
pub use images::{ImageSpec, ImagesFile, RegistrySettingsSpec};
pub use lock::{
    FilteredIndex, Lock, LockedChart, LockedDatabase, LockedFile, LockedImage, LockedPlatform,
    LockedTool, Mismatch, MismatchKind, Root,
};
pub use releases::{PlanFile, Profile, Release, RenderPlan, DEFAULT_STEP, LOCKED_PREFIX};
pub use tools::{ToolDownload, ToolSpec, ToolsFile};
