//! Splitting a bundle into volumes for removable media: `B.001`, `B.002`, ... of at most a
//! given size (FAT32 holds files under 4 GiB), and `B.sha256` listing each part's SHA-256 in
//! GNU format, so every medium can be checked on its own with `sha256sum -c`. Readers open the
//! parts as one file ([`crate::archive::source::FileSource::open`]); `cat B.0* > B` joins them.

use crate::archive::source::part_path;
use crate::pack::write_atomically;
use crate::{BundleError, Progress};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Default largest part: 4000 MiB, under FAT32's 4 GiB file limit.
pub const DEFAULT_PART_SIZE: u64 = 4000 << 20;

/// Writes the parts of `bundle` next to it and the checksum list; returns the part paths.
pub fn split(
    bundle: &Path,
    part_size: u64,
    progress: &dyn Progress,
) -> Result<Vec<PathBuf>, BundleError> {
    if part_size == 0 {
        return Err(BundleError::Input {
            path: bundle.display().to_string(),
            reason: "the part size must be at least one byte".into(),
        });
    }
    let mut source = std::fs::File::open(bundle).map_err(|e| BundleError::io(bundle, e))?;
    let total = source
        .metadata()
        .map_err(|e| BundleError::io(bundle, e))?
        .len();
    progress.start("split", total);
    let mut parts = Vec::new();
    let mut sums = String::new();
    let mut left = total;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let path = part_path(bundle, parts.len() + 1);
        let size = left.min(part_size);
        let mut hasher = Sha256::new();
        write_atomically(&path, |mut file| {
            let mut remaining = size;
            while remaining > 0 {
                let want = (remaining as usize).min(buf.len());
                source
                    .read_exact(&mut buf[..want])
                    .map_err(|e| BundleError::io(bundle, e))?;
                hasher.update(&buf[..want]);
                file.write_all(&buf[..want])
                    .map_err(|e| BundleError::io(&path, e))?;
                progress.advance(want as u64);
                remaining -= want as u64;
            }
            Ok(file)
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        sums.push_str(&format!("{}  {name}\n", hex::encode(hasher.finalize())));
        parts.push(path);
        left -= size;
    }
    // Parts left over from an earlier split into more pieces would be read as part of this one.
    let mut n = parts.len() + 1;
    while part_path(bundle, n).exists() {
        let stale = part_path(bundle, n);
        std::fs::remove_file(&stale).map_err(|e| BundleError::io(&stale, e))?;
        n += 1;
    }
    let mut list = bundle.as_os_str().to_owned();
    list.push(".sha256");
    let list = PathBuf::from(list);
    write_atomically(&list, |mut file| {
        file.write_all(sums.as_bytes())
            .map_err(|e| BundleError::io(&list, e))?;
        Ok(file)
    })?;
    progress.finish();
    Ok(parts)
}

/// Parses a size such as `4000M`, `2G`, `512K` or a plain number of bytes (binary units).
pub fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4000M"), Some(4000 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("3X"), None);
        assert_eq!(parse_size(""), None);
    }
}
