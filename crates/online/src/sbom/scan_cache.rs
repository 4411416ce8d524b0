//! What a layer does to the wanted paths, kept in the blob cache so a warm build does not
//! decompress every layer again: layers are content-addressed, so a layer's scan never
//! changes. One record per layer, `<cache>/sbom/<key>/<layer hex>.json`, where the key names
//! the wanted paths (another list is another scan): `{"PATH": "removed" | "sha256:..."}`, the
//! digest naming the file's bytes, stored as a blob of the cache.
//!
//! The record is a hint: a missing or unreadable record, or a blob it names that is missing or
//! does not hash to its name, means the layer is scanned again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci::Digest;

use super::layers::{Change, LayerChanges};
use crate::store::BlobCache;

const REMOVED: &str = "removed";

/// The record's path for `layer` when scanning for `wanted`.
fn record(cache: &BlobCache, wanted: &[&str], layer: &Digest) -> PathBuf {
    let key = Digest::of(wanted.join("\n").as_bytes());
    cache
        .root()
        .join("sbom")
        .join(&key.hex()[..16])
        .join(format!("{}.json", layer.hex()))
}

/// The kept scan of `layer`, if there is a sound one.
pub fn load(cache: &BlobCache, wanted: &[&str], layer: &Digest) -> Option<LayerChanges> {
    let text = std::fs::read(record(cache, wanted, layer)).ok()?;
    let entries: BTreeMap<String, String> = serde_json::from_slice(&text).ok()?;
    let mut changes = LayerChanges::new();
    for (path, value) in entries {
        let change = if value == REMOVED {
            Change::Removed
        } else {
            let digest = Digest::parse(&value).ok()?;
            let bytes = std::fs::read(cache.file_of(&digest)).ok()?;
            if Digest::of(&bytes) != digest {
                return None;
            }
            Change::Written(bytes)
        };
        changes.insert(path, change);
    }
    Some(changes)
}

/// Keeps `changes` as the scan of `layer`; failures only cost a rescan next time.
pub fn keep(cache: &BlobCache, wanted: &[&str], layer: &Digest, changes: &LayerChanges) {
    let mut entries = BTreeMap::new();
    for (path, change) in changes {
        let value = match change {
            Change::Removed => REMOVED.to_string(),
            Change::Written(bytes) => match cache.put_bytes(bytes) {
                Ok(digest) => digest.to_string(),
                Err(_) => return,
            },
        };
        entries.insert(path.clone(), value);
    }
    let path = record(cache, wanted, layer);
    let (Some(dir), Ok(text)) = (path.parent(), serde_json::to_vec(&entries)) else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // Written whole, then renamed: a reader never sees half a record.
    let partial = path.with_extension("json.partial");
    if std::fs::write(&partial, text).is_ok() {
        let _ = std::fs::rename(&partial, &path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_scan_comes_back_and_a_damaged_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let wanted = ["var/lib/dpkg/status"];
        let layer = Digest::of(b"layer");
        assert_eq!(load(&cache, &wanted, &layer), None);
        let changes = LayerChanges::from([
            (
                "var/lib/dpkg/status".to_string(),
                Change::Written(b"Package: a\n".to_vec()),
            ),
            ("etc/os-release".to_string(), Change::Removed),
        ]);
        keep(&cache, &wanted, &layer, &changes);
        assert_eq!(load(&cache, &wanted, &layer), Some(changes));
        // Another list of wanted paths is another scan.
        assert_eq!(load(&cache, &["etc/os-release"], &layer), None);
        // A damaged content blob: scanned again.
        let content = Digest::of(b"Package: a\n");
        std::fs::write(cache.file_of(&content), b"Package: b\n").unwrap();
        assert_eq!(load(&cache, &wanted, &layer), None);
    }
}
