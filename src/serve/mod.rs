//! `installer serve`: a read-only OCI distribution endpoint answered straight from a verified
//! bundle file, so nodes can pull images before any registry runs in the cluster.
//!
//! [`catalog`] maps repository names, tags and digests to bundle members, [`routes`] parses
//! request paths, [`http`] is the hyper service and the accept loop, [`errors`] the JSON error
//! bodies of the distribution spec, and `stall` drops connections whose client stopped reading.

pub mod catalog;
pub mod errors;
pub mod http;
pub mod routes;
mod stall;

pub use catalog::Catalog;
pub use http::{serve, tls_acceptor, Limits, Server};
