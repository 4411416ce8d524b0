//! Reading a few files out of an image's layers without unpacking them: each layer streamed
//! once (gzip, zstd or plain tar, told apart by their magic bytes), bottom layer first, with
//! the whiteouts of the OCI image spec applied so a later layer's file, or its deletion, wins.
//!
//! Whiteouts (image-spec `layer.md`, "Whiteouts"): an entry `DIR/.wh.NAME` hides `DIR/NAME`
//! (and everything under it) in the layers below; `DIR/.wh..wh..opq` hides everything under
//! `DIR` in the layers below. A whiteout never hides what its own layer adds.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use oci::Digest;
use sha2::{Digest as _, Sha256};

use super::SbomError;

/// The most bytes one wanted file may have (a large dpkg status database is a few MiB).
pub const MAX_FILE: u64 = 64 << 20;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What one layer does to one wanted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The layer holds the file: these bytes.
    Written(Vec<u8>),
    /// The layer deletes it from the layers below (a whiteout, an opaque directory, or a
    /// parent directory replaced by something else), and does not add it back.
    Removed,
}

/// What one layer does to the wanted paths it touches; untouched paths are absent.
pub type LayerChanges = BTreeMap<String, Change>;

/// Streams the layer in `file`, which must hash to `digest`, and reports what it does to each
/// of `wanted` (paths relative to the root, without a leading `/`). Only the wanted files'
/// bytes are kept in memory. The file is hashed as it is read, so a scan of a blob that does
/// not hash to its name is an error rather than a result someone could keep.
pub fn scan_layer(
    file: &Path,
    digest: &Digest,
    wanted: &[&str],
) -> Result<LayerChanges, SbomError> {
    let open = File::open(file).map_err(|e| SbomError::io(file, e))?;
    let mut hasher = Sha256::new();
    let scanned = {
        let mut reader = BufReader::new(Hashing {
            file: &open,
            hasher: &mut hasher,
        });
        let magic = reader.fill_buf().map_err(|e| SbomError::io(file, e))?;
        let stream: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(reader))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(reader)
                    .map_err(|e| SbomError::io(file, e))?,
            )
        } else {
            Box::new(reader)
        };
        scan_tar(stream, wanted)
    };
    // What the scan left unread (padding after the tar's end) still counts for the hash.
    let mut rest = Hashing {
        file: &open,
        hasher: &mut hasher,
    };
    io::copy(&mut rest, &mut io::sink()).map_err(|e| SbomError::io(file, e))?;
    let layer = || file.display().to_string();
    let actual = Digest::from_sha256(&hasher.finalize());
    if actual != *digest {
        return Err(SbomError::Layer {
            layer: layer(),
            message: format!("hashes to {actual}, not to its name {digest}"),
        });
    }
    scanned.map_err(|e| SbomError::Layer {
        layer: layer(),
        message: e.to_string(),
    })
}

/// A reader of `file` that hashes what it reads.
struct Hashing<'a> {
    file: &'a File,
    hasher: &'a mut Sha256,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// [`scan_layer`] on an uncompressed tar stream.
pub fn scan_tar(stream: impl Read, wanted: &[&str]) -> io::Result<LayerChanges> {
    let mut archive = tar::Archive::new(stream);
    let mut written: LayerChanges = BTreeMap::new();
    let mut removed: Vec<String> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let path = normalise(&raw);
        if path.is_empty() {
            continue;
        }
        let (dir, name) = match path.rsplit_once('/') {
            Some((dir, name)) => (dir, name),
            None => ("", path.as_str()),
        };
        if name == OPAQUE {
            for want in wanted {
                if under(want, dir) {
                    removed.push((*want).to_string());
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            let hidden = join(dir, hidden);
            for want in wanted {
                if *want == hidden || under(want, &hidden) {
                    removed.push((*want).to_string());
                }
            }
            continue;
        }
        let kind = entry.header().entry_type();
        for want in wanted {
            if *want == path {
                if kind.is_file() {
                    let size = entry.size();
                    if size > MAX_FILE {
                        return Err(io::Error::other(format!(
                            "{path} is {size} bytes, more than the {MAX_FILE} this reads"
                        )));
                    }
                    let mut bytes = Vec::with_capacity(size as usize);
                    (&mut entry).take(MAX_FILE).read_to_end(&mut bytes)?;
                    written.insert(path.clone(), Change::Written(bytes));
                } else if !kind.is_dir() {
                    // A link or device where the file was: nothing this can read.
                    written.remove(&path);
                    removed.push(path.clone());
                }
            } else if under(want, &path) && !kind.is_dir() {
                // A parent directory replaced by a file or link hides the file below.
                removed.push((*want).to_string());
            }
        }
    }
    let mut changes = LayerChanges::new();
    for path in removed {
        changes.insert(path, Change::Removed);
    }
    // What the layer writes wins over its own whiteouts, which hide only lower layers.
    changes.extend(written);
    Ok(changes)
}

/// The files `wanted` as the whole image shows them, from each layer's changes bottom first.
pub fn merge<'a>(layers: impl IntoIterator<Item = &'a LayerChanges>) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for layer in layers {
        for (path, change) in layer {
            match change {
                Change::Written(bytes) => {
                    files.insert(path.clone(), bytes.clone());
                }
                Change::Removed => {
                    files.remove(path);
                }
            }
        }
    }
    files
}

/// A tar member path without `./` or `/` in front and without a trailing `/`.
fn normalise(path: &str) -> String {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            break;
        }
    }
    p.trim_end_matches('/').to_string()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` lies strictly below directory `dir` (every path is below the root, `""`).
fn under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "var/lib/dpkg/status";

    /// A tar of `(path, Some(content))` files and `(path, None)` directories.
    fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            match content {
                Some(text) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(text.len() as u64);
                    header.set_mode(0o644);
                    builder
                        .append_data(&mut header, path, text.as_bytes())
                        .unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn scan(entries: &[(&str, Option<&str>)]) -> LayerChanges {
        scan_tar(&tar_of(entries)[..], &[STATUS]).unwrap()
    }

    fn image(layers: &[LayerChanges]) -> Option<String> {
        merge(layers)
            .get(STATUS)
            .map(|b| String::from_utf8(b.clone()).unwrap())
    }

    #[test]
    fn a_later_layer_wins_and_a_whiteout_hides_the_lower_file() {
        let base = scan(&[("./var/", None), ("./var/lib/dpkg/status", Some("one"))]);
        let changed = scan(&[("var/lib/dpkg/status", Some("two"))]);
        let unrelated = scan(&[("etc/hostname", Some("x"))]);
        assert_eq!(
            image(&[base.clone(), changed.clone(), unrelated]),
            Some("two".into())
        );
        let deleted = scan(&[("var/lib/dpkg/.wh.status", Some(""))]);
        assert_eq!(image(&[base.clone(), deleted.clone()]), None);
        let dir_deleted = scan(&[("var/lib/.wh.dpkg", Some(""))]);
        assert_eq!(image(&[base.clone(), changed.clone(), dir_deleted]), None);
        let opaque = scan(&[("var/lib/.wh..wh..opq", Some(""))]);
        assert_eq!(image(&[base.clone(), opaque]), None);
        // An opaque directory that brings its own file keeps that file.
        let opaque_new = scan(&[
            ("var/lib/dpkg/", None),
            ("var/lib/dpkg/.wh..wh..opq", Some("")),
            ("var/lib/dpkg/status", Some("three")),
        ]);
        assert_eq!(image(&[base.clone(), opaque_new]), Some("three".into()));
        // An opaque marker beside the file's directory, not above it, hides nothing.
        let sibling = scan(&[("var/lib/apt/.wh..wh..opq", Some(""))]);
        assert_eq!(image(&[base.clone(), sibling]), Some("one".into()));
        // A whiteout of a name that merely starts like the directory hides nothing.
        let prefix = scan(&[("var/lib/.wh.dpk", Some(""))]);
        assert_eq!(image(&[base, prefix]), Some("one".into()));
    }

    #[test]
    fn gzip_zstd_and_plain_layers_are_read_alike() {
        let tar = tar_of(&[("var/lib/dpkg/status", Some("Package: a\n"))]);
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar).unwrap();
        let files = [
            ("plain", tar.clone()),
            ("gzip", gz.finish().unwrap()),
            ("zstd", zstd::encode_all(&tar[..], 3).unwrap()),
        ];
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, &bytes).unwrap();
            let changes = scan_layer(&path, &Digest::of(&bytes), &[STATUS]).unwrap();
            assert_eq!(
                changes.get(STATUS),
                Some(&Change::Written(b"Package: a\n".to_vec())),
                "{name}"
            );
        }
    }

    #[test]
    fn a_layer_that_is_not_a_tar_stream_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wasm");
        let bytes = vec![0x42u8; 2048];
        std::fs::write(&path, &bytes).unwrap();
        let error = scan_layer(&path, &Digest::of(&bytes), &[STATUS])
            .unwrap_err()
            .to_string();
        assert!(error.contains("wasm"), "{error}");
    }

    #[test]
    fn a_layer_that_does_not_hash_to_its_name_gives_no_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("layer");
        let tar = tar_of(&[("var/lib/dpkg/status", Some("Package: a\n"))]);
        std::fs::write(&path, &tar).unwrap();
        let named = Digest::of(b"the layer the registry served");
        let error = scan_layer(&path, &named, &[STATUS])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&Digest::of(&tar).to_string()) && error.contains(named.as_str()),
            "{error}"
        );
    }
}
