//! Tamper tests: hand-built archives, each broken in one way, must be refused with the error
//! that names what is wrong.

use crate::archive::frames::FrameCompressor;
use crate::archive::tar::{member_header, padding, END_OF_ARCHIVE};
use crate::archive::{ArchiveError, SeekTable};
use crate::open::Bundle;
use crate::pack::sign_toc;
use crate::sign::{KeyId, SecretKey};
use crate::toc::{
    countersignature_path, with_checksums, Entry, Kind, StoredRun, TableOfContents, CHECKSUMS_PATH,
    FIRST_SIGNATURE_PATH, FORMAT, FORMAT_V1, TOC_PATH,
};
use crate::trust::TrustPolicy;
use crate::verify::{verify, Depth, Report};
use crate::{BundleError, NoProgress, SignatureError};
use sha2::{Digest, Sha256};

/// One tar member as raw bytes (header, data, padding), one or more frames in the file.
#[derive(Clone)]
struct Part {
    path: String,
    bytes: Vec<u8>,
}

fn tar_member(path: &str, data: &[u8]) -> Part {
    let mut bytes = member_header(path, data.len() as u64, 0).unwrap();
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len() + padding(data.len() as u64) as usize, 0);
    Part {
        path: path.into(),
        bytes,
    }
}

/// Rewrites field bytes of the (last) ustar header block of a part and fixes its checksum.
fn patch_header(part: &mut Part, at: usize, value: &[u8]) {
    let start = header_block_start(part);
    let block = &mut part.bytes[start..start + 512];
    block[at..at + value.len()].copy_from_slice(value);
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|&x| u32::from(x)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

fn header_block_start(part: &Part) -> usize {
    if part.bytes[156] == b'x' {
        let size =
            usize::from_str_radix(std::str::from_utf8(&part.bytes[124..135]).unwrap(), 8).unwrap();
        512 + size + padding(size as u64) as usize
    } else {
        0
    }
}

/// The file: every part compressed as its own frame, then the end marker and the seek table.
fn assemble(parts: &[Part]) -> Vec<u8> {
    let chunks = parts
        .iter()
        .map(|p| p.bytes.as_slice())
        .chain(std::iter::once(&END_OF_ARCHIVE[..]));
    frame_chunks(chunks)
}

/// Each chunk compressed as one frame, then the seek table.
fn frame_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut c = FrameCompressor::new(3).unwrap();
    let mut table = SeekTable::default();
    let mut out = Vec::new();
    for chunk in chunks {
        let frame = c.compress(chunk).unwrap();
        table.push(frame.len() as u32, chunk.len() as u32);
        out.extend(frame);
    }
    out.extend(table.encode());
    out
}

/// A well-formed bundle: table of contents, checksums, three members, and the signatures of `signers`.
struct Fixture {
    toc: TableOfContents,
    toc_bytes: Vec<u8>,
    content: Vec<Part>,
    signatures: Vec<Part>,
}

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed(KeyId([n; 8]), &[n; 32])
}

/// The members' parts cut into frames by `cut` (a part's length to its frames' sizes).
fn cut_parts<'a>(parts: &'a [Part], cut: &dyn Fn(usize) -> Vec<usize>) -> Vec<&'a [u8]> {
    let mut chunks: Vec<&[u8]> = Vec::new();
    for part in parts {
        let mut rest = part.bytes.as_slice();
        for size in cut(rest.len()) {
            let (chunk, tail) = rest.split_at(size);
            chunks.push(chunk);
            rest = tail;
        }
    }
    chunks
}

/// One frame per part.
fn whole(len: usize) -> Vec<usize> {
    vec![len]
}

/// `bundle.json` (format v2, the content members in one stored run, framed by `cut` as
/// [`frame_chunks`] compresses them) and `SHA256SUMS` for `files`.
fn toc_for(
    name: &str,
    files: &[(&str, &[u8])],
    cut: &dyn Fn(usize) -> Vec<usize>,
) -> (TableOfContents, Vec<u8>) {
    let parts: Vec<Part> = files.iter().map(|(p, d)| tar_member(p, d)).collect();
    let mut c = FrameCompressor::new(3).unwrap();
    let mut stored = Sha256::new();
    for chunk in cut_parts(&parts, cut) {
        stored.update(c.compress(chunk).unwrap());
    }
    let runs = vec![StoredRun {
        members: files.len(),
        sha256: hex::encode(stored.finalize()),
    }];
    let (mut toc, sums) = toc_v1(name, files);
    toc.format = FORMAT.into();
    toc.stored = Some(runs);
    (toc, sums)
}

/// `bundle.json` of format v1 (no stored runs) and `SHA256SUMS` for `files`.
fn toc_v1(name: &str, files: &[(&str, &[u8])]) -> (TableOfContents, Vec<u8>) {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(path, data)| Entry {
            path: path.to_string(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
            kind: Kind::of_path(path),
        })
        .collect();
    let (members, sums) = with_checksums(entries);
    let toc = TableOfContents {
        format: FORMAT_V1.into(),
        name: name.into(),
        version: "1.0.0".into(),
        created: oci::time::format_rfc3339(1_700_000_000).unwrap(),
        tool: "test".into(),
        platforms: vec!["linux/amd64".into()],
        members,
        stored: None,
    };
    (toc, sums)
}

const FILES: &[(&str, &[u8])] = &[
    ("oci-layout", b"{\"imageLayoutVersion\":\"1.0.0\"}"),
    ("blobs/sha256/aa", b"layer bytes, layer bytes, layer bytes"),
    ("docs/readme.md", b"read me\n"),
];

fn fixture(signers: &[SecretKey]) -> Fixture {
    fixture_named("sample", signers)
}

fn fixture_named(name: &str, signers: &[SecretKey]) -> Fixture {
    fixture_of(toc_for(name, FILES, &whole), signers)
}

fn fixture_of((toc, sums): (TableOfContents, Vec<u8>), signers: &[SecretKey]) -> Fixture {
    let toc_bytes = toc.to_bytes();
    let mut content = vec![
        tar_member(TOC_PATH, &toc_bytes),
        tar_member(CHECKSUMS_PATH, &sums),
    ];
    content.extend(FILES.iter().map(|(p, d)| tar_member(p, d)));
    let signatures = signers
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let path = if i == 0 {
                FIRST_SIGNATURE_PATH.to_string()
            } else {
                countersignature_path(&k.id().to_string())
            };
            tar_member(&path, sign_toc(k, &toc, &toc_bytes).as_bytes())
        })
        .collect();
    Fixture {
        toc,
        toc_bytes,
        content,
        signatures,
    }
}

impl Fixture {
    fn parts(&self) -> Vec<Part> {
        self.content
            .iter()
            .chain(&self.signatures)
            .cloned()
            .collect()
    }
}

fn policy(keys: &[&SecretKey], threshold: usize) -> TrustPolicy {
    TrustPolicy::new(keys.iter().map(|k| k.public_key()).collect(), threshold).unwrap()
}

fn check(file: Vec<u8>, policy: &TrustPolicy) -> Result<Report, BundleError> {
    check_to(file, policy, Depth::Stored)
}

fn check_to(file: Vec<u8>, policy: &TrustPolicy, depth: Depth) -> Result<Report, BundleError> {
    let bundle = Bundle::open(file)?;
    verify(&bundle, policy, 2, depth, &NoProgress)
}

fn check_parts(parts: &[Part]) -> Result<Report, BundleError> {
    check(assemble(parts), &policy(&[&key(1)], 1))
}

fn index_of(parts: &[Part], path: &str) -> usize {
    parts.iter().position(|p| p.path == path).unwrap()
}

#[test]
fn an_intact_bundle_verifies_and_names_its_signer() {
    let report = check_parts(&fixture(&[key(1)]).parts()).unwrap();
    assert_eq!(report.signers.trusted, vec![key(1).id()]);
    assert_eq!(report.checked.members, 6);
    assert_eq!(report.checked.depth, Depth::Stored);
}

#[test]
fn a_changed_checksum_list_is_named() {
    // SHA256SUMS is not in a stored run: its content is checked on its own.
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, CHECKSUMS_PATH);
    parts[i].bytes[512] = if parts[i].bytes[512] == b'0' {
        b'1'
    } else {
        b'0'
    };
    match check_parts(&parts).unwrap_err() {
        BundleError::Changed { path, .. } => assert_eq!(path, CHECKSUMS_PATH),
        other => panic!("{other}"),
    }
}

#[test]
fn an_end_marker_that_is_not_all_zeros_is_refused() {
    // Open reads the end marker to find where the signatures end: the check by stored runs
    // is then not used, and the streaming pass names the fault.
    let parts = fixture(&[key(1)]).parts();
    let mut marker = END_OF_ARCHIVE;
    marker[700] = b'x';
    let chunks = parts
        .iter()
        .map(|p| p.bytes.as_slice())
        .chain([&marker[..]]);
    let err = check(frame_chunks(chunks), &policy(&[&key(1)], 1)).unwrap_err();
    assert!(err.to_string().contains("lone zero block"), "{err}");
}

#[test]
fn a_format_v1_bundle_is_checked_by_content() {
    let f = fixture_of(toc_v1("sample", FILES), &[key(1)]);
    let report = check_parts(&f.parts()).unwrap();
    assert_eq!(
        (report.checked.members, report.checked.depth),
        (6, Depth::Content)
    );
    let mut parts = f.parts();
    let i = index_of(&parts, "docs/readme.md");
    parts[i].bytes[512] ^= 0x01;
    match check_parts(&parts).unwrap_err() {
        BundleError::Changed { path, .. } => assert_eq!(path, "docs/readme.md"),
        other => panic!("{other}"),
    }
}

#[test]
fn an_unsigned_bundle_is_refused() {
    let err = check_parts(&fixture(&[]).parts()).unwrap_err();
    assert!(
        matches!(err, BundleError::Signature(SignatureError::Unsigned)),
        "{err}"
    );
}

#[test]
fn a_bundle_signed_by_an_unknown_key_is_refused() {
    let err = check_parts(&fixture(&[key(2)]).parts()).unwrap_err();
    match err {
        BundleError::Signature(SignatureError::UnknownKeys { found, trusted }) => {
            assert_eq!(found, vec![key(2).id()]);
            assert_eq!(trusted, vec![key(1).id()]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_bad_signature_is_refused() {
    let f = fixture(&[key(1)]);
    let mut parts = f.parts();
    let sig = parts.last_mut().unwrap();
    let text = String::from_utf8(sig.bytes[512..].to_vec()).unwrap();
    let line2 = text.lines().nth(1).unwrap();
    // Change one base64 character inside the signature bytes.
    let mut chars: Vec<char> = line2.chars().collect();
    chars[30] = if chars[30] == 'A' { 'B' } else { 'A' };
    let forged = text.replacen(line2, &chars.into_iter().collect::<String>(), 1);
    *sig = tar_member(
        FIRST_SIGNATURE_PATH,
        forged.trim_end_matches('\0').as_bytes(),
    );
    let err = check_parts(&parts).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::BadSignature { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_truncated_signature_is_refused() {
    let f = fixture(&[key(1)]);
    let mut parts = f.parts();
    let text = sign_toc(&key(1), &f.toc, &f.toc_bytes);
    *parts.last_mut().unwrap() = tar_member(FIRST_SIGNATURE_PATH, &text.as_bytes()[..100]);
    let err = check_parts(&parts).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::Malformed { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_signature_from_another_bundle_is_refused() {
    let other = fixture_named("other", &[key(1)]);
    let mut parts = fixture(&[]).parts();
    parts.push(other.signatures[0].clone());
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Signature(SignatureError::OtherBundle { signed, actual, .. }) => {
            assert_eq!(signed, hex::encode(Sha256::digest(&other.toc_bytes)));
            assert_ne!(signed, actual);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn fewer_signers_than_the_threshold_is_refused() {
    let parts = fixture(&[key(1), key(3)]).parts();
    let file = assemble(&parts);
    check(file.clone(), &policy(&[&key(1), &key(3)], 2)).unwrap();
    let err = check(file, &policy(&[&key(1), &key(2)], 2)).unwrap_err();
    match err {
        BundleError::Signature(SignatureError::BelowThreshold { threshold, signers }) => {
            assert_eq!(threshold, 2);
            assert_eq!(signers, vec![key(1).id()]);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn one_changed_byte_in_a_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "blobs/sha256/aa");
    parts[i].bytes[512 + 3] ^= 0x20;
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Changed { path, .. } => assert_eq!(path, "blobs/sha256/aa"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_truncated_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    parts[i] = tar_member("docs/readme.md", b"read");
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::SizeMismatch { path, header, toc } => {
            assert_eq!(path, "docs/readme.md");
            assert_eq!((header, toc), (4, 8));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_truncated_file_is_refused_for_its_missing_seek_table() {
    let mut file = assemble(&fixture(&[key(1)]).parts());
    file.truncate(file.len() - 100);
    let err = check(file, &policy(&[&key(1)], 1)).unwrap_err();
    assert!(
        matches!(err, BundleError::Archive(ArchiveError::SeekTable(_))),
        "{err}"
    );
}

#[test]
fn a_missing_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    parts.remove(index_of(&parts, "blobs/sha256/aa"));
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Missing { path } => assert_eq!(path, "blobs/sha256/aa"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_missing_last_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    parts.remove(index_of(&parts, "docs/readme.md"));
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Missing { path } => assert_eq!(path, "docs/readme.md"),
        other => panic!("{other}"),
    }
}

#[test]
fn an_added_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    parts.insert(i, tar_member("docs/extra.md", b"smuggled"));
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Unexpected { path } => assert_eq!(path, "docs/extra.md"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_member_added_after_the_signatures_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    parts.push(tar_member("docs/extra.md", b"smuggled"));
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Unexpected { path } => assert_eq!(path, "docs/extra.md"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_duplicated_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "blobs/sha256/aa");
    parts.insert(i + 1, parts[i].clone());
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Duplicate { path } => assert_eq!(path, "blobs/sha256/aa"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_renamed_member_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "blobs/sha256/aa");
    parts[i] = tar_member("blobs/sha256/ab", FILES[1].1);
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Unexpected { path } => assert_eq!(path, "blobs/sha256/ab"),
        other => panic!("{other}"),
    }
}

#[test]
fn reordered_members_are_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "blobs/sha256/aa");
    parts.swap(i, i + 1);
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::OutOfOrder { path, expected } => {
            assert_eq!(path, "docs/readme.md");
            assert_eq!(expected, "blobs/sha256/aa");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_corrupt_zstd_frame_is_named_with_its_member() {
    let parts = fixture(&[key(1)]).parts();
    let mut file = assemble(&parts);
    let bundle = Bundle::open(file.clone()).unwrap();
    let frame = bundle.member("blobs/sha256/aa").unwrap().frames.start;
    let f = bundle.archive().table().frames()[frame];
    file[(f.offset + u64::from(f.compressed) / 2) as usize] ^= 0xff;
    let err = check(file, &policy(&[&key(1)], 1)).unwrap_err();
    match err {
        BundleError::InMember {
            path,
            source: ArchiveError::Frame { index, .. },
        } => {
            assert_eq!(path, "blobs/sha256/aa");
            assert_eq!(index, frame);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_corrupt_seek_table_is_refused() {
    let mut file = assemble(&fixture(&[key(1)]).parts());
    let n = file.len();
    // The first entry's compressed size, just after the skippable frame header.
    let frames = fixture(&[key(1)]).parts().len() + 1;
    file[n - 9 - frames * 8] ^= 0x01;
    let err = check(file, &policy(&[&key(1)], 1)).unwrap_err();
    assert!(
        matches!(err, BundleError::Archive(ArchiveError::SeekTable(_))),
        "{err}"
    );
}

fn with_bad_path(bad: &str) -> BundleError {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    let mut name = [0u8; 100];
    name[..bad.len()].copy_from_slice(bad.as_bytes());
    patch_header(&mut parts[i], 0, &name);
    check_parts(&parts).unwrap_err()
}

#[test]
fn an_absolute_path_is_refused() {
    match with_bad_path("/etc/passwd") {
        BundleError::InMember {
            path,
            source: ArchiveError::UnsafePath { path: bad, reason },
        } => {
            assert_eq!(path, "docs/readme.md");
            assert_eq!(bad, "/etc/passwd");
            assert_eq!(reason, "absolute path");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_dot_dot_path_is_refused() {
    match with_bad_path("docs/../../x") {
        BundleError::InMember {
            source: ArchiveError::UnsafePath { reason, .. },
            ..
        } => assert_eq!(reason, "contains a '..' component"),
        other => panic!("{other}"),
    }
}

fn with_typeflag(flag: u8) -> BundleError {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    patch_header(&mut parts[i], 156, &[flag]);
    check_parts(&parts).unwrap_err()
}

fn assert_not_regular(err: BundleError, expected: &str) {
    match err {
        BundleError::InMember {
            path,
            source: ArchiveError::NotRegularFile { kind, .. },
        } => {
            assert_eq!(path, "docs/readme.md");
            assert_eq!(kind, expected);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_symlink_is_refused() {
    assert_not_regular(with_typeflag(b'2'), "symbolic link");
}

#[test]
fn a_hardlink_is_refused() {
    assert_not_regular(with_typeflag(b'1'), "hard link");
}

#[test]
fn a_device_is_refused() {
    assert_not_regular(with_typeflag(b'3'), "character device");
    assert_not_regular(with_typeflag(b'4'), "block device");
}

#[test]
fn a_header_lying_about_its_size_is_named() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    patch_header(&mut parts[i], 124, b"00000000100\0");
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::SizeMismatch { path, header, toc } => {
            assert_eq!(path, "docs/readme.md");
            assert_eq!((header, toc), (64, 8));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_changed_bundle_json_breaks_the_signature() {
    let mut f = fixture(&[key(1)]);
    let tampered = String::from_utf8(f.toc_bytes.clone())
        .unwrap()
        .replace("1.0.0", "9.9.9");
    f.content[0] = tar_member(TOC_PATH, tampered.as_bytes());
    let err = check_parts(&f.parts()).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Signature(SignatureError::OtherBundle { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_countersignature_under_another_name_is_refused() {
    let mut parts = fixture(&[key(1), key(4)]).parts();
    let last = parts.len() - 1;
    let text = parts[last].bytes[512..].to_vec();
    let text = String::from_utf8(text).unwrap();
    let misnamed = countersignature_path(&key(1).id().to_string());
    parts[last] = tar_member(&misnamed, text.trim_end_matches('\0').as_bytes());
    let err = check_parts(&parts).unwrap_err();
    match err {
        BundleError::Signature(SignatureError::Misnamed { member, expected }) => {
            assert_eq!(member, misnamed);
            assert_eq!(expected, countersignature_path(&key(4).id().to_string()));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn an_end_marker_sharing_a_frame_with_a_member_is_refused() {
    // The last signature and the end marker in one frame: countersigning such a file would
    // cut the signature off, so the reader refuses it.
    let mut parts = fixture(&[key(1)]).parts();
    let mut last = parts.pop().unwrap();
    last.bytes.extend_from_slice(&END_OF_ARCHIVE);
    let chunks = parts.iter().chain([&last]).map(|p| p.bytes.as_slice());
    let file = frame_chunks(chunks);
    let err = check(file, &policy(&[&key(1)], 1)).unwrap_err();
    assert!(matches!(err, BundleError::Layout(_)), "{err}");
}

#[test]
fn a_member_that_does_not_start_a_frame_is_refused() {
    let mut parts = fixture(&[key(1)]).parts();
    let i = index_of(&parts, "docs/readme.md");
    let readme = parts.remove(i);
    parts[i - 1].bytes.extend(readme.bytes);
    let err = check_parts(&parts).unwrap_err();
    assert!(
        err.to_string()
            .contains("docs/readme.md does not start a frame"),
        "{err}"
    );
}

#[test]
fn unknown_extra_signers_are_ignored_when_the_threshold_is_met() {
    let report = check_parts(&fixture(&[key(1), key(4)]).parts()).unwrap();
    assert_eq!(report.signers.trusted, vec![key(1).id()]);
    assert_eq!(report.signers.unknown, vec![key(4).id()]);
}

/// A signed bundle of `count` members of `len` pseudo-random bytes each (stored frames, so
/// cheap to build), its parts cut into frames by `cut` (a part's length to its frames'
/// sizes). `tamper` flips one data byte (member, offset) after `bundle.json` was made.
fn large_bundle(
    count: usize,
    len: usize,
    cut: impl Fn(usize) -> Vec<usize>,
    tamper: Option<(usize, usize)>,
) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut datas: Vec<(String, Vec<u8>)> = (0..count)
        .map(|i| {
            let data = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            (format!("blobs/sha256/{i:02}"), data)
        })
        .collect();
    let files: Vec<(&str, &[u8])> = datas
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let (toc, sums) = toc_for("large", &files, &cut);
    let toc_bytes = toc.to_bytes();
    if let Some((member, at)) = tamper {
        datas[member].1[at] ^= 0x01;
    }
    let mut parts = vec![
        tar_member(TOC_PATH, &toc_bytes),
        tar_member(CHECKSUMS_PATH, &sums),
    ];
    parts.extend(datas.iter().map(|(p, d)| tar_member(p, d)));
    let signature = sign_toc(&key(1), &toc, &toc_bytes);
    parts.push(tar_member(FIRST_SIGNATURE_PATH, signature.as_bytes()));
    let mut chunks = cut_parts(&parts, &cut);
    chunks.push(&END_OF_ARCHIVE);
    frame_chunks(chunks)
}

/// Frames as the writer cuts them: full frames, the last one shorter.
fn writer_cut(len: usize) -> Vec<usize> {
    let full = crate::archive::FRAME_SIZE;
    let mut sizes = vec![full; len / full];
    if !len.is_multiple_of(full) {
        sizes.push(len % full);
    }
    sizes
}

/// How many segments the parallel check cuts `file` into.
fn segment_count(file: &[u8]) -> usize {
    let bundle = Bundle::open(file.to_vec()).unwrap();
    crate::member_hashes::segments(bundle.archive().table()).len()
}

fn assert_changed(file: Vec<u8>, expected: &str) {
    match check(file, &policy(&[&key(1)], 1)).unwrap_err() {
        BundleError::Changed { path, .. } => assert_eq!(path, expected),
        other => panic!("{other}"),
    }
}

#[test]
fn members_hashed_on_several_cores_are_each_checked() {
    // 12 members of 1.5 MiB, one short frame each: three segments of at least 8 MiB.
    let len = 3 << 19;
    let file = large_bundle(12, len, writer_cut, None);
    assert_eq!(segment_count(&file), 3);
    let report = check_to(file.clone(), &policy(&[&key(1)], 1), Depth::Content).unwrap();
    assert_eq!(
        (report.checked.members, report.checked.depth),
        (12 + 3, Depth::Content)
    );
    assert!(report.checked.bytes > 12 * len as u64);
    let stored = check(file, &policy(&[&key(1)], 1)).unwrap();
    assert_eq!(
        (stored.checked.members, stored.checked.bytes),
        (report.checked.members, report.checked.bytes)
    );
    assert_changed(
        large_bundle(12, len, writer_cut, Some((10, 1000))),
        "blobs/sha256/10",
    );
}

#[test]
fn frames_cut_inside_members_are_checked_in_one_pass_instead() {
    // Each 3 MiB member in a 1 MiB frame and a 2 MiB one: a segment cut after the short frame
    // starts inside a member, so the check falls back to one sequential pass.
    let cut = |len: usize| {
        if len > 1 << 20 {
            vec![1 << 20, len - (1 << 20)]
        } else {
            vec![len]
        }
    };
    let len = 3 << 20;
    let file = large_bundle(6, len, cut, None);
    assert!(segment_count(&file) > 1);
    let report = check_to(file, &policy(&[&key(1)], 1), Depth::Content).unwrap();
    assert_eq!(
        (report.checked.members, report.checked.depth),
        (6 + 3, Depth::Content)
    );
    assert_changed(
        large_bundle(6, len, cut, Some((4, (2 << 20) + 5))),
        "blobs/sha256/04",
    );
}
