//! The air-gap bundle library: the bundle container (format, signatures, verification) and,
//! around it, what the online `bundle` and offline `installer` binaries share.

pub mod archive;
pub mod build;
pub mod ca;
pub mod capacity;
pub mod chart;
pub mod clamav;
pub mod cli;
pub mod container;
pub mod discover;
pub mod load;
pub mod manifest;
pub mod registry;
pub mod serve;
pub mod sign;
pub mod spec;
pub mod store;
pub mod tools;
