//! Images made by appending one layer to a locked image ([`append_layer`]), and the first of
//! them, the signature-database image: the pinned ClamAV image plus one appended layer holding
//! the validated databases under `/var/lib/clamav`, so clamd starts with fresh signatures and
//! without freshclam. (The site's download page is the other: `files_image`.) Every platform
//! of the base image gets the same layer; the base's layers are reused as they are, so a site
//! that has the base image only needs the new layer.
//!
//! The layer is a gzip tar written deterministically (sorted entries, the build timestamp,
//! uid/gid 0, mode 0644, gzip without a time or name), so the same base and databases give
//! the same image digests.

use bundle_file::archive::tar::TarWriter;
use oci::DigestWriter;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::fetch::ImageContent;
use super::BuildError;
use crate::clamav::collect::DatabaseFile;
use crate::spec::LockedDatabase;
use crate::spec::{LockedImage, Root};
use crate::store::BlobCache;
use oci::Descriptor;
use oci::{Digest, Reference};

/// Where the databases go in the image.
pub const DATABASE_DIR: &str = "var/lib/clamav";

/// An image made by appending one layer to a locked base image, and the base layers it
/// shares with that image.
#[derive(Debug, Clone)]
pub struct AppendedImage {
    /// The image's layout entry and its own blobs (index, manifests, configs, the new layer).
    pub content: ImageContent,
    /// The base image's layers: not part of the image's own blobs; a bundle that carries the
    /// image without the base names them as required at the target.
    pub base_layers: Vec<(Digest, u64)>,
}

/// The signature image is an [`AppendedImage`] of the ClamAV image.
pub type SignatureImage = AppendedImage;

/// One regular file of an appended layer: its path in the image (relative, no leading `/`),
/// the file holding its content, and its size.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Path in the image.
    pub path: String,
    /// Where its content is.
    pub file: std::path::PathBuf,
    /// Its size.
    pub size: u64,
}

fn bad(image: &Reference, message: impl Into<String>) -> BuildError {
    BuildError::BadManifest {
        image: image.to_string(),
        message: message.into(),
    }
}

/// The tag of the signature image: the base's tag, `-db.`, and each database's
/// `name-version` (`1.4_base-db.main-62.daily-27500.bytecode-339`).
pub fn signature_tag(base: &Reference, databases: &[LockedDatabase]) -> String {
    let labels: Vec<String> = databases.iter().map(LockedDatabase::label).collect();
    let tag = format!(
        "{}-db.{}",
        base.tag.as_deref().unwrap_or("base"),
        labels.join(".")
    );
    if tag.len() <= 128 {
        return tag;
    }
    let mut hasher = Sha256::new();
    for database in databases {
        hasher.update(database.sha256.as_str());
    }
    format!("db-{}", &hex::encode(hasher.finalize())[..32])
}

/// Whether `tag` is one [`signature_tag`] gives for a base tagged `base` (any databases):
/// `<base>-db.…`, or `db-` and 32 hex digits when that was too long.
pub fn is_signature_tag(tag: &str, base: Option<&str>) -> bool {
    let long = format!("{}-db.", base.unwrap_or("base"));
    let hashed = tag
        .strip_prefix("db-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    tag.starts_with(&long) || hashed
}

/// Builds the signature image from the cached `base` (its manifests and configs must be in
/// `cache`) and the database `files`, writing new blobs into `cache`.
pub fn signature_image(
    base: &LockedImage,
    databases: &[LockedDatabase],
    files: &[DatabaseFile],
    cache: &BlobCache,
    timestamp: u64,
) -> Result<SignatureImage, BuildError> {
    let history = format!(
        "bundle: ClamAV signature databases {}",
        databases
            .iter()
            .map(LockedDatabase::label)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let layer: Vec<LayerFile> = files
        .iter()
        .map(|f| LayerFile {
            path: format!("{DATABASE_DIR}/{}", f.name),
            file: f.path.clone(),
            size: f.size,
        })
        .collect();
    let tag = signature_tag(&base.reference, databases);
    append_layer(base, &[], &layer, &history, tag, cache, timestamp)
}

/// `base` (cached: its manifests and configs must be in `cache`) plus one layer holding
/// the directories `dirs` (mode 0755, written first) and `files`, appended to every platform,
/// as `base`'s repository at `tag`; `history` is the new layer's `created_by`. New blobs are
/// written into `cache`.
pub fn append_layer(
    base: &LockedImage,
    dirs: &[&str],
    files: &[LayerFile],
    history: &str,
    tag: String,
    cache: &BlobCache,
    timestamp: u64,
) -> Result<AppendedImage, BuildError> {
    let image = &base.reference;
    let (layer, layer_size, diff_id) = write_layer(dirs, files, cache, timestamp)?;
    let created = oci::time::format_rfc3339(timestamp)?;
    let mut blobs: Vec<(Digest, u64)> = vec![(layer.clone(), layer_size)];
    let mut base_layers = Vec::new();
    let mut entries = Vec::new();
    for platform in &base.platforms {
        let manifest_bytes = read_cached(cache, &platform.manifest.digest)?;
        let mut manifest: Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| bad(image, format!("manifest is not JSON: {e}")))?;
        let config_digest = Digest::parse(manifest["config"]["digest"].as_str().unwrap_or(""))
            .map_err(|e| bad(image, format!("manifest config digest: {e}")))?;
        let mut config: Value = serde_json::from_slice(&read_cached(cache, &config_digest)?)
            .map_err(|e| bad(image, format!("config {config_digest} is not JSON: {e}")))?;
        let Some(diff_ids) = config["rootfs"]["diff_ids"].as_array_mut() else {
            return Err(bad(
                image,
                format!("config {config_digest} has no rootfs.diff_ids"),
            ));
        };
        diff_ids.push(json!(diff_id.as_str()));
        match config.get_mut("history").and_then(Value::as_array_mut) {
            Some(list) => list.push(json!({ "created": created, "created_by": history })),
            None => {
                config["history"] = json!([{ "created": created, "created_by": history }]);
            }
        }
        let config_bytes = serde_json::to_vec(&config)
            .map_err(|e| bad(image, format!("writing the config: {e}")))?;
        let new_config = cache.put_bytes(&config_bytes)?;
        blobs.push((new_config.clone(), config_bytes.len() as u64));

        let docker = manifest["mediaType"].as_str() == Some(oci::media::DOCKER_MANIFEST_V2);
        let layer_type = if docker {
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        };
        let Some(layers) = manifest["layers"].as_array_mut() else {
            return Err(bad(image, "manifest without layers"));
        };
        for existing in layers.iter() {
            let digest = Digest::parse(existing["digest"].as_str().unwrap_or(""))
                .map_err(|e| bad(image, format!("layer digest: {e}")))?;
            let size = existing["size"]
                .as_u64()
                .ok_or_else(|| bad(image, format!("layer {digest} without a size")))?;
            if !base_layers.iter().any(|(d, _)| *d == digest) {
                base_layers.push((digest, size));
            }
        }
        layers.push(json!({
            "mediaType": layer_type,
            "digest": layer.as_str(),
            "size": layer_size,
        }));
        manifest["config"]["digest"] = json!(new_config.as_str());
        manifest["config"]["size"] = json!(config_bytes.len());
        let new_manifest_bytes = serde_json::to_vec(&manifest)
            .map_err(|e| bad(image, format!("writing the manifest: {e}")))?;
        let new_manifest = cache.put_bytes(&new_manifest_bytes)?;
        blobs.push((new_manifest.clone(), new_manifest_bytes.len() as u64));
        let mut platform_json = json!({
            "os": platform.platform.os,
            "architecture": platform.platform.architecture,
        });
        if let Some(variant) = &platform.platform.variant {
            platform_json["variant"] = json!(variant);
        }
        entries.push((
            Descriptor::new(
                platform.manifest.media_type.clone(),
                new_manifest,
                new_manifest_bytes.len() as u64,
            ),
            platform_json,
        ));
    }
    let root = match &base.root {
        Root::Manifest(_) => entries
            .first()
            .map(|(d, _)| d.clone())
            .ok_or_else(|| bad(image, "no platform"))?,
        Root::Index(index) => {
            let manifests: Vec<Value> = entries
                .iter()
                .map(|(d, platform)| {
                    json!({
                        "mediaType": d.media_type,
                        "digest": d.digest.as_str(),
                        "size": d.size,
                        "platform": platform,
                    })
                })
                .collect();
            let bytes = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": index.media_type,
                "manifests": manifests,
            }))
            .map_err(|e| bad(image, format!("writing the index: {e}")))?;
            let digest = cache.put_bytes(&bytes)?;
            blobs.push((digest.clone(), bytes.len() as u64));
            Descriptor::new(index.media_type.clone(), digest, bytes.len() as u64)
        }
    };
    blobs.sort();
    blobs.dedup();
    let reference = Reference {
        tag: Some(tag),
        digest: None,
        ..image.clone()
    };
    Ok(AppendedImage {
        content: ImageContent {
            reference,
            ref_name: None,
            root,
            blobs,
        },
        base_layers,
    })
}

fn read_cached(cache: &BlobCache, digest: &Digest) -> Result<Vec<u8>, BuildError> {
    let path = cache.file_of(digest);
    oci::files::read_capped(&path, oci::files::INPUT_FILE_LIMIT)
        .map_err(|e| BuildError::io(&path, e))
}

/// Writes the layer of `files` into the cache; returns its digest, size and diff ID (the
/// digest of the uncompressed tar).
fn write_layer(
    dirs: &[&str],
    files: &[LayerFile],
    cache: &BlobCache,
    timestamp: u64,
) -> Result<(Digest, u64, Digest), BuildError> {
    let incoming = cache.incoming()?;
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(incoming, flate2::Compression::fast());
    let mut tar = TarWriter::new(DigestWriter::new(gzip));
    let mut sorted: Vec<&LayerFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let layer_error = |path: &std::path::Path, e: std::io::Error| BuildError::io(path, e);
    for dir in dirs {
        tar.append_dir(dir, timestamp)
            .map_err(|e| layer_error(cache.root(), e))?;
    }
    for file in sorted {
        let mut reader = std::fs::File::open(&file.file).map_err(|e| layer_error(&file.file, e))?;
        tar.append(&file.path, file.size, timestamp, &mut reader)
            .map_err(|e| layer_error(&file.file, e))?;
    }
    let hashing = tar.finish().map_err(|e| layer_error(cache.root(), e))?;
    let (gzip, diff_id, _) = hashing.finish();
    let incoming = gzip.finish().map_err(|e| layer_error(cache.root(), e))?;
    let (digest, size) = incoming.commit()?;
    Ok((digest, size, diff_id))
}

#[cfg(test)]
mod tests {
    use super::{is_signature_tag, signature_tag};
    use crate::spec::LockedDatabase;
    use oci::{Digest, Reference};

    fn database(file: &str, version: u32) -> LockedDatabase {
        LockedDatabase {
            file: file.into(),
            url: format!("https://mirror.example.test/{file}"),
            version,
            signatures: 1,
            functionality_level: 1,
            build_time: 0,
            sha256: Digest::of(file.as_bytes()),
            size: 1,
            sign_sha256: None,
            sign_size: None,
        }
    }

    #[test]
    fn the_tags_signature_tag_gives_are_recognised_and_no_others() {
        let base = Reference::parse("docker.io/clamav/clamav:1.4_base").unwrap();
        let short = [database("main.cvd", 62), database("daily.cvd", 27500)];
        let long: Vec<_> = (0..20)
            .map(|i| database(&format!("custom-signatures-{i}.cud"), 1_000_000 + i))
            .collect();
        for databases in [&short[..], &long[..]] {
            let tag = signature_tag(&base, databases);
            assert!(is_signature_tag(&tag, Some("1.4_base")), "{tag}");
        }
        assert!(signature_tag(&base, &long).starts_with("db-"));
        for other in [
            "1.4_base",
            "1.5_base-db.main-62",
            "db-0123",
            "1.4_base-files.0123456789ab",
        ] {
            assert!(!is_signature_tag(other, Some("1.4_base")), "{other}");
        }
    }
}
