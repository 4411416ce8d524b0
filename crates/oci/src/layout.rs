//! The OCI image layout as a bundle carries it: file names, where a blob lives, the
//! annotation naming an image, and the size limit on anything read whole into memory.

use crate::Digest;

/// The layout's marker file.
pub const LAYOUT_FILE: &str = "oci-layout";
/// The content of [`LAYOUT_FILE`].
pub const LAYOUT_VERSION: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
/// The layout's top-level index.
pub const INDEX_FILE: &str = "index.json";
/// The directory holding SHA-256 blobs.
pub const BLOBS_DIR: &str = "blobs/sha256";

/// The annotation carrying an image's full reference in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation carrying a creation time (RFC 3339).
pub const CREATED: &str = "org.opencontainers.image.created";

/// Largest manifest, index or `index.json` read into memory, from a registry or a bundle.
/// Registries must accept manifests of at least 4 MiB (OCI distribution specification), and
/// the largest image indexes in the wild are a few hundred KiB.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// The layout path of blob `digest`: `blobs/sha256/<hex>`.
pub fn blob_path(digest: &Digest) -> String {
    format!("{BLOBS_DIR}/{}", digest.hex())
}

/// The digest of a layout path `blobs/sha256/<hex>`, if it is one.
pub fn blob_digest(path: &str) -> Option<Digest> {
    let hex = path.strip_prefix(BLOBS_DIR)?.strip_prefix('/')?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_paths_round_trip() {
        let digest = Digest::of(b"layer");
        let path = blob_path(&digest);
        assert_eq!(path, format!("blobs/sha256/{}", digest.hex()));
        assert_eq!(blob_digest(&path), Some(digest));
        assert_eq!(blob_digest("blobs/sha256/xyz"), None);
        assert_eq!(blob_digest("index.json"), None);
    }
}
