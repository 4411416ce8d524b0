//! Files read whole into memory (input files, site files, keys, certificates, registry
//! logins) have a cap, so a wrong path such as `/dev/zero` fails at once, naming the file,
//! instead of growing without bound.

use std::io::{self, Read};
use std::path::Path;

/// The most an input file may hold: images.toml, charts.toml, tools.toml, releases.toml,
/// manifests.lock, a site's values file, a registry login file, a PEM bundle. The largest of
/// them for the whole stack is well under 1 MiB.
pub const INPUT_FILE_LIMIT: u64 = 16 << 20;

/// The most a key, passphrase or identity file may hold.
pub const KEY_FILE_LIMIT: u64 = 64 << 10;

/// The whole content of `path`, which may hold at most `limit` bytes; a larger file (or an
/// endless one) is an `InvalidData` error saying so, read no further than `limit + 1` bytes.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, the most such a file may hold"),
        ));
    }
    Ok(bytes)
}

/// [`read_capped`] as UTF-8 text.
pub fn read_capped_to_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_capped(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_stops_at_the_cap() {
        let error = read_capped(Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("1024 bytes"), "{error}");
        let dir = std::env::temp_dir().join(format!("oci-files-{}", std::process::id()));
        std::fs::write(&dir, "twelve bytes").unwrap();
        assert_eq!(read_capped_to_string(&dir, 12).unwrap(), "twelve bytes");
        assert!(read_capped(&dir, 11).is_err());
        std::fs::remove_file(&dir).unwrap();
    }
}
