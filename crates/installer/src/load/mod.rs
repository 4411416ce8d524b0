//! `installer load`: pushing a verified bundle's images into a registry straight from the
//! compressed bundle file. [`plan()`] decides what goes where and in which order; [`run`]
//! pushes it with several blobs in flight, skipping what the registry already has, so a
//! load that was interrupted finishes when run again.

mod error;
pub mod plan;
pub mod run;

pub use error::LoadError;
pub use plan::{plan, ImagePlan, ManifestPush, Target};
pub use run::{load, LoadOptions, Summary};
