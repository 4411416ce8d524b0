//! Reading the OCI image layout a bundle carries: its `index.json` and the manifests under
//! each image, by digest, checked and parsed; what `load` plans from and `serve` answers
//! with.

use bundle_file::archive::ReadAt;
use bundle_file::{Bundle, BundleError};
use oci::layout::{blob_path, INDEX_FILE};
use oci::{Digest, ImageIndex, Manifest, ManifestError};

/// Why the layout cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// A member cannot be read.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// `index.json` is not an OCI index.
    #[error("index.json of the bundle is not an OCI index")]
    Index(#[source] serde_json::Error),
    /// A manifest's bytes do not hash to the digest it is stored under.
    #[error("manifest {0} in the bundle does not match its digest")]
    Digest(Digest),
    /// A manifest does not parse.
    #[error("manifest {digest}")]
    Manifest {
        /// Its digest.
        digest: Digest,
        /// What is wrong.
        #[source]
        source: ManifestError,
    },
}

/// A manifest or index of the layout.
#[derive(Debug, Clone)]
pub struct LayoutManifest {
    /// Its digest.
    pub digest: Digest,
    /// Its media type (its own, else its descriptor's, else its shape's).
    pub media_type: String,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// The parsed model.
    pub manifest: Manifest,
}

/// The bundle's `index.json`.
pub fn read_index<S: ReadAt>(bundle: &Bundle<S>) -> Result<ImageIndex, LayoutError> {
    ImageIndex::from_json(&bundle.read_small(INDEX_FILE)?).map_err(LayoutError::Index)
}

/// Whether the bundle holds blob (or manifest) `digest`.
pub fn holds<S: ReadAt>(bundle: &Bundle<S>, digest: &Digest) -> bool {
    bundle.member(&blob_path(digest)).is_some()
}

/// Reads manifest `digest`, which a descriptor says is of type `declared`, checks it hashes
/// to its digest, and parses it.
pub fn read_manifest<S: ReadAt>(
    bundle: &Bundle<S>,
    digest: &Digest,
    declared: &str,
) -> Result<LayoutManifest, LayoutError> {
    let bytes = bundle.read_small(&blob_path(digest))?;
    if Digest::of(&bytes) != *digest {
        return Err(LayoutError::Digest(digest.clone()));
    }
    let (media_type, manifest) =
        Manifest::parse(declared, &bytes).map_err(|source| LayoutError::Manifest {
            digest: digest.clone(),
            source,
        })?;
    Ok(LayoutManifest {
        digest: digest.clone(),
        media_type,
        bytes,
        manifest,
    })
}
