//! Local content: the content-addressed blob cache shared by every build on the machine.

pub mod cache;

pub use cache::{BlobCache, PendingBlob, StoreError};
