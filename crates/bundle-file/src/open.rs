//! Opening a bundle: seek table, `bundle.json`, where every member lies, and the signature
//! members after them, all by random access without reading the content.

use crate::archive::source::FileSource;
use crate::archive::tar::{header_len, padding, END_OF_ARCHIVE};
use crate::archive::{Archive, ArchiveError, RangeReader, ReadAt};
use crate::toc::{is_signature_path, TableOfContents, MAX_TOC_LEN, TOC_PATH};
use crate::BundleError;
use oci::error_chain;
use sha2::{Digest, Sha256};
use std::ops::Range;
use std::path::Path;

/// Largest signature member accepted.
pub const MAX_SIGNATURE_LEN: u64 = 4096;

/// Where one member lies in the decompressed stream and which frames hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Path inside the bundle.
    pub path: String,
    /// Offset of the member's first header byte.
    pub offset: u64,
    /// Offset of the first data byte.
    pub data_offset: u64,
    /// Data size.
    pub size: u64,
    /// Frames holding the member (header, data and padding).
    pub frames: Range<usize>,
}

impl Located {
    /// Offset just past the member's padding, where the next member starts.
    pub fn end(&self) -> u64 {
        self.data_offset + self.size + padding(self.size)
    }
}

/// A signature member as found in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSignature {
    /// Member path, e.g. `bundle.json.minisig`.
    pub path: String,
    /// The `.minisig` file's bytes.
    pub bytes: Vec<u8>,
}

/// An open bundle: checked seek table, parsed `bundle.json`, member locations and signatures.
/// Nothing here is trusted until [`crate::verify`] says so.
pub struct Bundle<S> {
    archive: Archive<S>,
    toc_bytes: Vec<u8>,
    toc: TableOfContents,
    members: Vec<Located>,
    signatures: Result<Vec<(Located, FoundSignature)>, String>,
}

impl Bundle<FileSource> {
    /// Opens the bundle file at `path`, or its split volumes (`path` naming the first part,
    /// `B.001`, or a bundle that exists only as parts).
    pub fn open_path(path: &Path) -> Result<Self, BundleError> {
        let src = FileSource::open(path).map_err(|e| BundleError::io(path, e))?;
        Bundle::open(src)
    }
}

impl<S: ReadAt> Bundle<S> {
    /// Opens a bundle: reads the seek table and `bundle.json`, lays out the members and reads
    /// the signature members that follow them.
    pub fn open(src: S) -> Result<Self, BundleError> {
        let archive = Archive::open(src)?;
        let in_manifest = |source| BundleError::InMember {
            path: TOC_PATH.into(),
            source,
        };
        let first = archive.header_at(0).map_err(in_manifest)?;
        let first = match first {
            Some(h) if h.path == TOC_PATH => h,
            Some(h) => return Err(BundleError::NoToc { found: h.path }),
            None => {
                return Err(BundleError::NoToc {
                    found: "(no member)".into(),
                })
            }
        };
        if first.size > MAX_TOC_LEN {
            return Err(BundleError::Layout(format!(
                "bundle.json claims {} bytes, more than the {MAX_TOC_LEN} allowed",
                first.size
            )));
        }
        let mut toc_bytes = vec![0u8; first.size as usize];
        archive
            .read_at(first.data_offset, &mut toc_bytes)
            .map_err(in_manifest)?;
        let toc = TableOfContents::parse(&toc_bytes)?;
        let mut members = Vec::with_capacity(toc.members.len() + 1);
        let mut offset = 0;
        let entries = std::iter::once((TOC_PATH, first.size))
            .chain(toc.members.iter().map(|e| (e.path.as_str(), e.size)));
        for (path, size) in entries {
            let data_offset = offset + header_len(path, size);
            let end = data_offset + size + padding(size);
            members.push(Located {
                path: path.to_string(),
                offset,
                data_offset,
                size,
                frames: frame_range(&archive, offset, end),
            });
            offset = end;
        }
        let signatures = check_last_member(&archive, members.last())
            .and_then(|()| locate_signatures(&archive, offset));
        Ok(Bundle {
            archive,
            toc_bytes,
            toc,
            members,
            signatures,
        })
    }

    /// The parsed `bundle.json`.
    pub fn toc(&self) -> &TableOfContents {
        &self.toc
    }

    /// The exact bytes of `bundle.json`, which signatures cover.
    pub fn toc_bytes(&self) -> &[u8] {
        &self.toc_bytes
    }

    /// Lower-case hex SHA-256 of `bundle.json`.
    pub fn toc_sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.toc_bytes))
    }

    /// Every member with its location: `bundle.json` first, then the listed members.
    pub fn members(&self) -> &[Located] {
        &self.members
    }

    /// Looks up a listed member by path.
    pub fn member(&self, path: &str) -> Option<&Located> {
        self.members.iter().find(|m| m.path == path)
    }

    /// The signature members after the listed members, or why they could not be located (the
    /// members are not where `bundle.json` puts them).
    pub fn signatures(&self) -> Result<&[(Located, FoundSignature)], &str> {
        self.signatures.as_deref().map_err(String::as_str)
    }

    /// The archive underneath.
    pub fn archive(&self) -> &Archive<S> {
        &self.archive
    }

    /// Number of frames before the signature members and the end marker: the frames that
    /// `bundle.json` covers.
    pub fn content_frames(&self) -> usize {
        self.members.last().map_or(0, |m| m.frames.end)
    }

    /// A reader of `member`'s data from `offset` within it for `len` bytes (clamped to the
    /// member), decompressing a frame at a time.
    pub fn member_reader(&self, member: &Located, offset: u64, len: u64) -> RangeReader<'_, S> {
        let offset = offset.min(member.size);
        let len = len.min(member.size - offset);
        self.archive.range_reader(member.data_offset + offset, len)
    }

    /// Reads a whole manifest-sized member (`index.json`, an OCI manifest or index) into
    /// memory; refuses one larger than [`oci::MAX_MANIFEST_SIZE`].
    pub fn read_small(&self, path: &str) -> Result<Vec<u8>, BundleError> {
        let member = self.member(path).ok_or_else(|| BundleError::Missing {
            path: path.to_string(),
        })?;
        if member.size > oci::MAX_MANIFEST_SIZE {
            return Err(BundleError::TooLarge {
                path: path.to_string(),
                size: member.size,
                limit: oci::MAX_MANIFEST_SIZE,
            });
        }
        let mut bytes = Vec::with_capacity(member.size as usize);
        std::io::Read::read_to_end(&mut self.member_reader(member, 0, member.size), &mut bytes)
            .map_err(|source| BundleError::InMember {
                path: path.to_string(),
                source: ArchiveError::io("reading the member", source),
            })?;
        Ok(bytes)
    }

    /// [`Bundle::read_small`], then checks the bytes against the sha256 `bundle.json` lists for
    /// `path`: what a signed `bundle.json` vouches for, without checking the other members.
    pub fn read_small_checked(&self, path: &str) -> Result<Vec<u8>, BundleError> {
        let bytes = self.read_small(path)?;
        let expected = self
            .toc
            .entry(path)
            .map(|e| e.sha256.clone())
            .unwrap_or_default();
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != expected {
            return Err(BundleError::Changed {
                path: path.to_string(),
                expected,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Reads `buf.len()` bytes of `member`'s data from `offset` within the member.
    pub fn read_member(
        &self,
        member: &Located,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), BundleError> {
        if offset + buf.len() as u64 > member.size {
            return Err(BundleError::Layout(format!(
                "read past the end of member {}",
                member.path
            )));
        }
        self.archive
            .read_at(member.data_offset + offset, buf)
            .map_err(|source| BundleError::InMember {
                path: member.path.clone(),
                source,
            })
    }
}

/// Frames covering decompressed `[start, end)`; empty when the range is not frame-aligned.
fn frame_range<S: ReadAt>(archive: &Archive<S>, start: u64, end: u64) -> Range<usize> {
    let table = archive.table();
    let first = table.frame_at(start);
    let last = table.frame_at(end.saturating_sub(1));
    match (first, last) {
        (Some(a), Some(b)) if table.frames()[a].data_offset == start => a..b + 1,
        _ => 0..0,
    }
}

/// Checks that the last listed member is where `bundle.json` puts it, so that the place
/// computed for the signatures can be trusted to be the end of the listed members.
fn check_last_member<S: ReadAt>(
    archive: &Archive<S>,
    last: Option<&Located>,
) -> Result<(), String> {
    let Some(last) = last else { return Ok(()) };
    let found = archive
        .header_at(last.offset)
        .map_err(|e| format!("member {}: {}", last.path, error_chain(&e)))?;
    match found {
        Some(h) if h.path == last.path && h.size == last.size => Ok(()),
        _ => Err(format!(
            "member {} is not at offset {} where bundle.json puts it",
            last.path, last.offset
        )),
    }
}

fn locate_signatures<S: ReadAt>(
    archive: &Archive<S>,
    mut offset: u64,
) -> Result<Vec<(Located, FoundSignature)>, String> {
    let mut found = Vec::new();
    let describe = |e: ArchiveError| error_chain(&e);
    while let Some(h) = archive.header_at(offset).map_err(describe)? {
        if !is_signature_path(&h.path) {
            return Err(format!(
                "member {} follows the listed members; only signatures may",
                h.path
            ));
        }
        if h.size > MAX_SIGNATURE_LEN {
            return Err(format!("signature {} is {} bytes long", h.path, h.size));
        }
        let mut bytes = vec![0u8; h.size as usize];
        archive
            .read_at(h.data_offset, &mut bytes)
            .map_err(describe)?;
        let end = h.data_offset + h.size + padding(h.size);
        let located = Located {
            path: h.path.clone(),
            offset,
            data_offset: h.data_offset,
            size: h.size,
            frames: frame_range(archive, offset, end),
        };
        found.push((
            located,
            FoundSignature {
                path: h.path,
                bytes,
            },
        ));
        offset = end;
    }
    let marker_alone = archive.table().frames().last().is_some_and(|f| {
        f.data_offset == offset && f.decompressed as usize == END_OF_ARCHIVE.len()
    });
    if !marker_alone {
        return Err(format!(
            "the end-of-archive marker at offset {offset} is not the last frame on its own"
        ));
    }
    Ok(found)
}
