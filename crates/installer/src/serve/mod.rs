//! `installer serve`: a read-only OCI distribution endpoint answered straight from a verified
//! bundle file, so nodes can pull images before any registry runs in the cluster.
//!
//! [`catalog`] maps repository names, tags and digests to bundle members, [`routes`] parses
//! request paths, [`http`] is the hyper service and the accept loop, [`errors`] the JSON error
//! bodies of the distribution spec, `stall` drops connections whose client stopped reading,
//! and [`connections`] closes quiet ones and sheds the longest-idle one when full.

pub mod catalog;
pub mod connections;
pub mod errors;
pub mod http;
pub mod routes;
mod stall;

pub use catalog::Catalog;
pub use connections::Timeouts;
pub use http::{serve, tls_acceptor, Limits, Server};

use crate::layout::LayoutError;

/// Where the server's access log and warnings go (the front end prints them).
pub trait ServeLog: Send + Sync {
    /// A line of the access log, or news about a connection.
    fn info(&self, line: &str);
    /// Something the operator should see.
    fn warn(&self, line: &str);
}

/// Why the bundle cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The bundle's OCI layout cannot be read.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The bundle's images cannot be catalogued as they are; the text says why.
    #[error("{0}")]
    Catalog(String),
    /// One image of the bundle cannot be catalogued.
    #[error("image {image}")]
    Image {
        /// Its reference.
        image: String,
        /// Why.
        #[source]
        source: Box<ServeError>,
    },
    /// The TLS certificate or key cannot be used.
    #[error("{what}")]
    Tls {
        /// What was being read or set up.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
