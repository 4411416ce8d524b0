//! Validation of ClamAV signature databases (`.cvd`, `.cud`) as Cisco's `cvdupdate` keeps
//! them, before they go into a bundle.
//!
//! [`Cvd::read`] parses the 512-byte header; [`Cvd::verify`] checks the body MD5, the header's
//! ClamAV digital signature, the `.info` manifest inside the body (listed files, sizes, hashes
//! and its `DSIG:` line) and, where `<file>.sign` lies beside the database, the PKCS#7
//! detached signature of the whole file against trusted certificates.

pub mod collect;
mod dsig;
mod sign;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};

/// Size of the ASCII header in front of the compressed body.
pub const HEADER_LEN: usize = 512;

/// Every way validating a database can fail; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ClamavError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a ClamAV database container (.cvd or .cud)")]
    UnsupportedKind { file: PathBuf },
    #[error("{file}: bad header field {field}: {reason}")]
    Header {
        file: PathBuf,
        field: &'static str,
        reason: String,
    },
    #[error("{file}: header field {field} differs from the signed copy in .info")]
    HeaderMismatch { file: PathBuf, field: &'static str },
    #[error("{file}: MD5 of the body is {actual}, header says {expected}")]
    BodyMd5Mismatch {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("{file}: the header's digital signature does not sign the body MD5")]
    HeaderSignature { file: PathBuf },
    #[error("{file}: body is not a readable gzip tar archive: {reason}")]
    BodyArchive { file: PathBuf, reason: String },
    #[error("{file}: the body has no .info file")]
    InfoMissing { file: PathBuf },
    #[error("{file}: .info line {line} is malformed: {reason}")]
    InfoMalformed {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{file}: {entry} is listed in .info but not in the body")]
    InfoFileMissing { file: PathBuf, entry: String },
    #[error("{file}: {entry} is in the body but not listed in .info")]
    InfoUnlisted { file: PathBuf, entry: String },
    #[error("{file}: {entry} does not match .info: {what}")]
    InfoMismatch {
        file: PathBuf,
        entry: String,
        what: String,
    },
    #[error("{file}: the .info has no DSIG line")]
    InfoSignatureMissing { file: PathBuf },
    #[error("{file}: the .info DSIG signature is not valid")]
    InfoSignature { file: PathBuf },
    #[error("{file}: unsigned database (.cud) refused; allow_unsigned is not set")]
    Unsigned { file: PathBuf },
    #[error("{file}: has a .sign file but no trusted certificates were found in {cert_dir:?}")]
    SignNoCertificates {
        file: PathBuf,
        cert_dir: Option<PathBuf>,
    },
    #[error("{file}.sign: malformed: {reason}")]
    SignMalformed { file: PathBuf, reason: String },
    #[error("{file}.sign: signer does not chain to a trusted certificate: {reason}")]
    SignUntrusted { file: PathBuf, reason: String },
    #[error("{file}.sign: certificate not valid at the verification time: {reason}")]
    SignCertificateTime { file: PathBuf, reason: String },
    #[error("{file}.sign: bad signature: {reason}")]
    SignBadSignature { file: PathBuf, reason: String },
}

/// What [`Cvd::verify`] accepts.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Directory of trusted PEM/DER certificates (`*.crt`, `*.pem`, `*.der`) for `.sign` files.
    pub cert_dir: Option<PathBuf>,
    /// Accept `.cud` (unsigned) databases.
    pub allow_unsigned: bool,
    /// Time at which `.sign` certificates must be valid; `None` means now.
    pub at: Option<std::time::SystemTime>,
}

/// Whether the container is signed (`.cvd`) or not (`.cud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cvd,
    Cud,
}

/// A database file read from disk, with its parsed header.
#[derive(Debug, Clone)]
pub struct Cvd {
    pub path: PathBuf,
    /// Database name: the file name without extension (`main`, `daily`, `bytecode`...).
    pub name: String,
    pub kind: Kind,
    /// Human-readable build time (`22 Jun 2021 14-58 -0400`).
    pub build_time: String,
    pub version: u32,
    pub signatures: u32,
    pub functionality_level: u32,
    /// MD5 of the body, lowercase hex (`X` in unsigned databases).
    pub md5: String,
    /// ClamAV digital signature text (`X` in unsigned databases).
    pub dsig: String,
    pub builder: String,
    /// Build time in seconds since the epoch.
    pub build_time_secs: u64,
}

/// The result of a successful [`Cvd::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub name: String,
    pub version: u32,
    /// Whether the database is unsigned (`.cud`, accepted because `allow_unsigned` was set).
    pub unsigned: bool,
    /// Files listed in, and checked against, the `.info` manifest.
    pub info_files: Vec<String>,
    /// Whether a `.sign` file was present and verified.
    pub sign_verified: bool,
}

fn header_err(file: &Path, field: &'static str, reason: impl Into<String>) -> ClamavError {
    ClamavError::Header {
        file: file.to_path_buf(),
        field,
        reason: reason.into(),
    }
}

fn parse_num<T: std::str::FromStr>(
    file: &Path,
    field: &'static str,
    s: &str,
) -> Result<T, ClamavError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(header_err(file, field, format!("{s:?} is not a number")));
    }
    s.parse()
        .map_err(|_| header_err(file, field, format!("{s:?} is out of range")))
}

impl Cvd {
    /// Reads a `.cvd` or `.cud` file and parses its header.
    pub fn read(path: impl AsRef<Path>) -> Result<Cvd, ClamavError> {
        let path = path.as_ref();
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("cvd") => Kind::Cvd,
            Some("cud") => Kind::Cud,
            _ => {
                return Err(ClamavError::UnsupportedKind {
                    file: path.to_path_buf(),
                })
            }
        };
        let io = |source| ClamavError::Io {
            file: path.to_path_buf(),
            source,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        std::fs::File::open(path)
            .map_err(io)?
            .take(HEADER_LEN as u64)
            .read_to_end(&mut header)
            .map_err(io)?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let mut cvd = Self::parse_header(path, &header, kind)?;
        cvd.name = name;
        Ok(cvd)
    }

    fn parse_header(path: &Path, data: &[u8], kind: Kind) -> Result<Cvd, ClamavError> {
        if data.len() < HEADER_LEN {
            return Err(header_err(path, "header", "file shorter than 512 bytes"));
        }
        let header = std::str::from_utf8(&data[..HEADER_LEN])
            .map_err(|_| header_err(path, "header", "not ASCII"))?;
        if !header.is_ascii() {
            return Err(header_err(path, "header", "not ASCII"));
        }
        let header = header.trim_end_matches([' ', '\0', '\n', '\r']);
        let fields: Vec<&str> = header.split(':').collect();
        if fields.len() != 9 {
            return Err(header_err(
                path,
                "header",
                format!("{} fields instead of 9", fields.len()),
            ));
        }
        if fields[0] != "ClamAV-VDB" {
            return Err(header_err(path, "magic", format!("{:?}", fields[0])));
        }
        if fields[1].is_empty() {
            return Err(header_err(path, "build time", "empty"));
        }
        let version = parse_num(path, "version", fields[2])?;
        let signatures = parse_num(path, "signatures", fields[3])?;
        let functionality_level = parse_num(path, "functionality level", fields[4])?;
        let md5 = fields[5].to_string();
        let dsig = fields[6].to_string();
        if kind == Kind::Cvd {
            if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(header_err(
                    path,
                    "md5",
                    format!("{md5:?} is not 32 hex digits"),
                ));
            }
            if dsig.is_empty() {
                return Err(header_err(path, "dsig", "empty"));
            }
        }
        if fields[7].is_empty() {
            return Err(header_err(path, "builder", "empty"));
        }
        let build_time_secs = parse_num(path, "build time seconds", fields[8])?;
        Ok(Cvd {
            path: path.to_path_buf(),
            name: String::new(),
            kind,
            build_time: fields[1].to_string(),
            version,
            signatures,
            functionality_level,
            md5,
            dsig,
            builder: fields[7].to_string(),
            build_time_secs,
        })
    }

    /// Checks everything that can be checked about this database; see the module docs.
    pub fn verify(&self, opts: &VerifyOptions) -> Result<Verified, ClamavError> {
        let file = &self.path;
        let unsigned = self.kind == Kind::Cud;
        if unsigned && !opts.allow_unsigned {
            return Err(ClamavError::Unsigned { file: file.clone() });
        }
        // Order: body MD5, then the signed `.info` (which also authenticates the header
        // fields), then the header signature over the MD5, then the `.sign` file. Every check
        // must pass; the order only decides which failure is reported first.
        // One streaming pass over the file: its SHA-256 (for `.sign`), the body's MD5, and the
        // body unpacked entry by entry into sizes and hashes, the small `.info` kept whole.
        let scan = scan_file(file)?;
        let actual_md5 = scan.body_md5.clone();
        // sigtool --unsigned still records the body MD5 (the dsig is `X`): check it if there.
        let has_md5 = !unsigned || self.md5.len() == 32;
        if has_md5 && actual_md5 != self.md5.to_ascii_lowercase() {
            return Err(ClamavError::BodyMd5Mismatch {
                file: file.clone(),
                expected: self.md5.clone(),
                actual: actual_md5,
            });
        }
        let body = scan.body?;
        let info_files = check_info(self, &body, !unsigned)?;
        if !unsigned && !dsig::verify_md5_sig(&actual_md5, &self.dsig) {
            return Err(ClamavError::HeaderSignature { file: file.clone() });
        }
        let sign_path = sign_path(file);
        let sign_verified = if sign_path.exists() {
            let at = opts.at.unwrap_or_else(std::time::SystemTime::now);
            sign::verify_sign_file(
                file,
                &scan.file_sha256,
                &sign_path,
                opts.cert_dir.as_deref(),
                at,
            )?;
            true
        } else {
            false
        };
        Ok(Verified {
            name: self.name.clone(),
            version: self.version,
            unsigned,
            info_files,
            sign_verified,
        })
    }
}

/// Verifies every `.cvd` and `.cud` in `dir` (a `cvdupdate` database directory), in name
/// order, stopping at the first failure. Other files (`.cdiff`, `.sign`, `dns.txt`...) are not
/// databases and are skipped; `.sign` files are checked with the database they sign.
pub fn verify_dir(dir: &Path, opts: &VerifyOptions) -> Result<Vec<Verified>, ClamavError> {
    let io = |source| ClamavError::Io {
        file: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file()
            && matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("cvd" | "cud")
            )
        {
            paths.push(path);
        }
    }
    paths.sort();
    paths.iter().map(|p| Cvd::read(p)?.verify(opts)).collect()
}

fn sign_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(".sign");
    PathBuf::from(s)
}

/// Largest uncompressed body accepted (bounds memory on hostile input).
const MAX_BODY: u64 = 4 << 30;

/// Size and hashes of one file in a database body.
struct EntryDigest {
    size: u64,
    sha256: String,
    md5: String,
}

/// What one pass over a database file found.
struct Scan {
    /// SHA-256 of the whole file (header and body), what a `.sign` file signs.
    file_sha256: [u8; 32],
    /// MD5 of the body, lower-case hex.
    body_md5: String,
    /// The body's entries, or why it is not a readable gzip tar.
    body: Result<Body, ClamavError>,
}

/// A database body: every regular file's digests, and the `.info` manifests whole.
struct Body {
    entries: HashMap<String, EntryDigest>,
    infos: Vec<(String, Vec<u8>)>,
}

/// Largest `.info` manifest accepted in memory.
const MAX_INFO: u64 = 16 << 20;

/// A reader that hashes what passes through it: every byte into the file's SHA-256, bytes
/// after the header into the body's MD5.
struct Hashing<R> {
    inner: R,
    offset: u64,
    file: Sha256,
    body: Md5,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.file.update(&buf[..n]);
        let header_left = (HEADER_LEN as u64).saturating_sub(self.offset) as usize;
        if n > header_left {
            self.body.update(&buf[header_left..n]);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Reads `file` once, hashing it and unpacking its body without holding the databases in
/// memory.
fn scan_file(file: &Path) -> Result<Scan, ClamavError> {
    let io = |source| ClamavError::Io {
        file: file.to_path_buf(),
        source,
    };
    let mut reader = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(file).map_err(io)?),
        offset: 0,
        file: Sha256::new(),
        body: Md5::new(),
    };
    std::io::copy(
        &mut (&mut reader).take(HEADER_LEN as u64),
        &mut std::io::sink(),
    )
    .map_err(io)?;
    let body = read_body(file, &mut reader);
    // The archive may end before the file does (gzip trailer, padding): hash the rest too.
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(io)?;
    Ok(Scan {
        file_sha256: reader.file.finalize().into(),
        body_md5: hex::encode(reader.body.finalize()),
        body,
    })
}

/// Unpacks the gzip tar body from `reader`: each regular file's size and hashes, the `.info`
/// files kept whole.
fn read_body(file: &Path, reader: &mut impl Read) -> Result<Body, ClamavError> {
    let bad = |e: std::io::Error| ClamavError::BodyArchive {
        file: file.to_path_buf(),
        reason: e.to_string(),
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader).take(MAX_BODY));
    let mut body = Body {
        entries: HashMap::new(),
        infos: Vec::new(),
    };
    let mut buf = vec![0u8; 1 << 16];
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let (mut sha256, mut md5, mut size) = (Sha256::new(), Md5::new(), 0u64);
        let mut hash = |data: &[u8]| {
            sha256.update(data);
            md5.update(data);
            size += data.len() as u64;
        };
        if name.ends_with(".info") {
            let mut content = Vec::new();
            (&mut entry)
                .take(MAX_INFO)
                .read_to_end(&mut content)
                .map_err(bad)?;
            hash(&content);
            body.infos.push((name.clone(), content));
        }
        loop {
            let n = entry.read(&mut buf).map_err(bad)?;
            if n == 0 {
                break;
            }
            hash(&buf[..n]);
        }
        body.entries.insert(
            name,
            EntryDigest {
                size,
                sha256: hex::encode(sha256.finalize()),
                md5: hex::encode(md5.finalize()),
            },
        );
    }
    Ok(body)
}

/// Checks the `.info` manifest: its `DSIG:` line first (when `signed`), then that every file
/// it lists is in the body with the listed size and hash, and that the header copy it carries
/// agrees with the container header. Returns the names of the files it lists.
fn check_info(cvd: &Cvd, body: &Body, signed: bool) -> Result<Vec<String>, ClamavError> {
    let file = &cvd.path;
    let entries = &body.entries;
    let [(info_name, info)] = &body.infos[..] else {
        return Err(ClamavError::InfoMissing {
            file: file.to_path_buf(),
        });
    };
    let malformed = |line: usize, reason: &str| ClamavError::InfoMalformed {
        file: file.to_path_buf(),
        line,
        reason: reason.to_string(),
    };

    // The signature covers every byte before the DSIG line.
    let mut signed_len = None;
    let mut dsig = None;
    let mut pos = 0;
    for raw in info.split_inclusive(|&b| b == b'\n') {
        if let Some(rest) = raw.strip_prefix(b"DSIG:") {
            signed_len = Some(pos);
            dsig = Some(String::from_utf8_lossy(rest).trim().to_string());
            break;
        }
        pos += raw.len();
    }
    let signed_part = &info[..signed_len.unwrap_or(info.len())];
    if signed {
        let Some(sig) = dsig else {
            return Err(ClamavError::InfoSignatureMissing {
                file: file.to_path_buf(),
            });
        };
        let digest: [u8; 32] = Sha256::digest(signed_part).into();
        if !dsig::verify_info_sig(&digest, &sig) {
            return Err(ClamavError::InfoSignature {
                file: file.to_path_buf(),
            });
        }
    }

    let mut listed = Vec::new();
    for (i, raw) in signed_part.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let text = std::str::from_utf8(raw).map_err(|_| malformed(line_no, "not UTF-8"))?;
        let text = text.trim_end_matches('\r');
        if text.is_empty() {
            continue;
        }
        if text.starts_with("ClamAV-VDB:") {
            let mut padded = text.as_bytes().to_vec();
            padded.resize(HEADER_LEN.max(padded.len()), b' ');
            let copy = Cvd::parse_header(file, &padded, Kind::Cud)
                .map_err(|_| malformed(line_no, "unparsable header copy"))?;
            let mismatch = |field: &'static str| ClamavError::HeaderMismatch {
                file: file.to_path_buf(),
                field,
            };
            if copy.build_time != cvd.build_time {
                return Err(mismatch("build time"));
            }
            if copy.version != cvd.version {
                return Err(mismatch("version"));
            }
            if copy.signatures != cvd.signatures {
                return Err(mismatch("signatures"));
            }
            if copy.functionality_level != cvd.functionality_level {
                return Err(mismatch("functionality level"));
            }
            if copy.builder != cvd.builder {
                return Err(mismatch("builder"));
            }
            if copy.build_time_secs != cvd.build_time_secs {
                return Err(mismatch("build time seconds"));
            }
            continue;
        }
        let parts: Vec<&str> = text.split(':').collect();
        let [name, size, hash] = parts[..] else {
            return Err(malformed(line_no, "expected name:size:hash"));
        };
        let size: u64 = size
            .parse()
            .map_err(|_| malformed(line_no, "size is not a number"))?;
        if !(hash.len() == 64 || hash.len() == 32) || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(line_no, "hash is not SHA-256 or MD5 hex"));
        }
        let Some(content) = entries.get(name) else {
            return Err(ClamavError::InfoFileMissing {
                file: file.to_path_buf(),
                entry: name.to_string(),
            });
        };
        let mismatch = |what: String| ClamavError::InfoMismatch {
            file: file.to_path_buf(),
            entry: name.to_string(),
            what,
        };
        if content.size != size {
            return Err(mismatch(format!(
                "size is {}, .info says {size}",
                content.size
            )));
        }
        let actual = if hash.len() == 64 {
            &content.sha256
        } else {
            &content.md5
        };
        if *actual != hash.to_ascii_lowercase() {
            return Err(mismatch(format!("hash is {actual}, .info says {hash}")));
        }
        listed.push(name.to_string());
    }
    // Everything else in the body must be listed too (ClamAV only exempts COPYING).
    let mut unlisted: Vec<&String> = entries
        .keys()
        .filter(|k| *k != info_name && *k != "COPYING" && !listed.contains(*k))
        .collect();
    unlisted.sort();
    if let Some(entry) = unlisted.first() {
        return Err(ClamavError::InfoUnlisted {
            file: file.to_path_buf(),
            entry: entry.to_string(),
        });
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(fields: &str) -> Vec<u8> {
        let mut h = fields.as_bytes().to_vec();
        h.resize(HEADER_LEN, b' ');
        h
    }

    #[test]
    fn parses_header_fields() {
        let h = header("ClamAV-VDB:22 Jun 2021 14-58 -0400:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:sig:micasnyd:1624388302");
        let c = Cvd::parse_header(Path::new("t.cvd"), &h, Kind::Cvd).unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.signatures, 0);
        assert_eq!(c.functionality_level, 81);
        assert_eq!(c.builder, "micasnyd");
        assert_eq!(c.build_time, "22 Jun 2021 14-58 -0400");
        assert_eq!(c.build_time_secs, 1624388302);
    }

    #[test]
    fn rejects_bad_header_fields() {
        for (bad, field) in [
            (
                "ClamAV-VDX:t:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:s:b:1",
                "magic",
            ),
            (
                "ClamAV-VDB:t:x:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:s:b:1",
                "version",
            ),
            (
                "ClamAV-VDB:t:1:0:8a:a4ab60ae1c1c4e8f787459102dcfd90b:s:b:1",
                "functionality level",
            ),
            (
                "ClamAV-VDB:t:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90:s:b:1",
                "md5",
            ),
            (
                "ClamAV-VDB:t:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:s:b:1x",
                "build time seconds",
            ),
            (
                "ClamAV-VDB:t:1:0:81:a4ab60ae1c1c4e8f787459102dcfd90b:s:b",
                "header",
            ),
        ] {
            match Cvd::parse_header(Path::new("t.cvd"), &header(bad), Kind::Cvd) {
                Err(ClamavError::Header { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn unsigned_header_allows_x() {
        let h = header("ClamAV-VDB:t:1:0:81:X:X:b:1");
        assert!(Cvd::parse_header(Path::new("t.cud"), &h, Kind::Cud).is_ok());
        assert!(Cvd::parse_header(Path::new("t.cvd"), &h, Kind::Cvd).is_err());
    }
}
