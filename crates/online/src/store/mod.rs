//! Local content: the content-addressed blob cache shared by every build on the machine.

pub mod cache;

pub mod download;

pub use cache::{BlobCache, IncomingBlob, PendingBlob, StoreError};
pub use download::{download, http_client, DownloadError, Stored};
