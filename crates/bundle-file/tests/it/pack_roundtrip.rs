//! Property: any staged directory packs into a bundle that verifies and extracts back to the
//! same files, through the library API.

use bundle_file::archive::SeekTable;
use bundle_file::extract::extract;
use bundle_file::pack::{pack, PackOptions};
use bundle_file::sign::{KeyId, SecretKey};
use bundle_file::verify::{verify, Depth};
use bundle_file::BundleError;
use bundle_file::{Bundle, NoProgress, TrustPolicy};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn files_strategy() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let path = prop::collection::vec("[a-z][a-z0-9_-]{0,30}", 1..4).prop_map(|p| p.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2000),
        (0usize..5_000_000).prop_map(|n| (0..n).map(|i| (i / 7 % 256) as u8).collect()),
    ];
    prop::collection::btree_map(path, content, 1..8).prop_filter(
        "no file may also be a directory",
        |files| {
            files
                .keys()
                .all(|a| !files.keys().any(|b| b.starts_with(&format!("{a}/"))))
        },
    )
}

fn read_tree(root: &Path, rel: &str, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(root.join(rel)).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().unwrap().is_dir() {
            read_tree(root, &child, out);
        } else {
            out.insert(child, std::fs::read(entry.path()).unwrap());
        }
    }
}

/// Fixed pack options for bundle `name` (version 1, a fixed time, 2 threads, level 3).
fn options(name: &str) -> PackOptions {
    PackOptions {
        name: name.into(),
        version: "1".into(),
        platforms: vec![],
        timestamp: Some(1_700_000_000),
        threads: 2,
        level: 3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn staged_files_survive_pack_verify_extract(files in files_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("stage");
        for (rel, data) in &files {
            let path = stage.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, data).unwrap();
        }
        let key = SecretKey::from_seed(KeyId([7; 8]), &[7; 32]);
        let options = options("prop");
        let out = dir.path().join("b.tar.zst");
        pack(&stage, &out, &options, Some(&key), &NoProgress).unwrap();
        let bundle = Bundle::open_path(&out).unwrap();
        let policy = TrustPolicy::new(vec![key.public_key()], 1).unwrap();
        let report = verify(&bundle, &policy, 2, Depth::Stored, &NoProgress).unwrap();
        prop_assert_eq!(report.checked.members, files.len() + 3);
        prop_assert_eq!(report.checked.depth, Depth::Stored);
        let by_content = verify(&bundle, &policy, 2, Depth::Content, &NoProgress).unwrap();
        prop_assert_eq!(by_content.checked.depth, Depth::Content);
        prop_assert_eq!((by_content.checked.members, by_content.checked.bytes), (report.checked.members, report.checked.bytes));
        let target = dir.path().join("out");
        extract(&bundle, &target, 2, &NoProgress).unwrap();
        let mut back = BTreeMap::new();
        read_tree(&target, "", &mut back);
        for generated in ["bundle.json", "SHA256SUMS", "bundle.json.minisig"] {
            prop_assert!(back.remove(generated).is_some());
        }
        prop_assert_eq!(back, files);
    }
}

/// A blob whose content does not hash to its name (a corrupted cache entry) is refused while
/// it is packed, naming the file; no bundle is left at the output. A blob that does hash to
/// its name packs.
#[test]
fn a_blob_that_does_not_hash_to_its_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage");
    let blobs = stage.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let good = b"layer bytes";
    let good_hex = oci::Digest::of(good).hex().to_string();
    std::fs::write(blobs.join(&good_hex), good).unwrap();
    let options = options("blobs");
    let out = dir.path().join("b.tar.zst");
    pack(&stage, &out, &options, None, &NoProgress).unwrap();
    std::fs::remove_file(&out).unwrap();

    let named = oci::Digest::of(b"what the registry sent").hex().to_string();
    let corrupted = blobs.join(&named);
    std::fs::write(&corrupted, b"what the disk returned").unwrap();
    let e = pack(&stage, &out, &options, None, &NoProgress).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&corrupted.display().to_string())
            && message.contains(&oci::Digest::of(b"what the disk returned").hex().to_string()),
        "{message}"
    );
    assert!(!out.exists(), "a bundle was left at the output");
}

/// The file of `bundle` with frame `index` compressed again at another level (same content,
/// other bytes) and the seek table rewritten to match: a bundle whose members all still hash
/// right, but whose stored bytes are not those signed.
fn recompressed(file: &[u8], index: usize) -> Vec<u8> {
    let table = Bundle::open(file.to_vec())
        .unwrap()
        .archive()
        .table()
        .clone();
    let mut out = Vec::new();
    let mut rewritten = SeekTable::default();
    for (i, frame) in table.frames().iter().enumerate() {
        let start = frame.offset as usize;
        let stored = &file[start..start + frame.compressed as usize];
        let bytes = if i == index {
            let content = zstd::bulk::decompress(stored, frame.decompressed as usize).unwrap();
            let mut c = zstd::bulk::Compressor::new(19).unwrap();
            c.include_checksum(true).unwrap();
            c.include_contentsize(true).unwrap();
            let again = c.compress(&content).unwrap();
            assert_ne!(again, stored, "level 19 gave the same bytes");
            again
        } else {
            stored.to_vec()
        };
        rewritten.push(bytes.len() as u32, frame.decompressed);
        out.extend(bytes);
    }
    out.extend(rewritten.encode());
    out
}

/// A bundle whose content members' frames were compressed again after signing: every member
/// still hashes right (the check by content passes), but the check by stored bytes fails,
/// naming the run of members, as the signed bundle.json pins other bytes. An intact bundle
/// passes both.
#[test]
fn frames_rewritten_with_the_same_content_fail_the_check_by_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let stage = dir.path().join("stage/docs");
    std::fs::create_dir_all(&stage).unwrap();
    for name in ["a.txt", "b.txt", "c.txt"] {
        let text = format!("{name}: a line of text that compresses well\n").repeat(500);
        std::fs::write(stage.join(name), text).unwrap();
    }
    let key = SecretKey::from_seed(KeyId([7; 8]), &[7; 32]);
    let out = dir.path().join("b.tar.zst");
    pack(
        &dir.path().join("stage"),
        &out,
        &options("runs"),
        Some(&key),
        &NoProgress,
    )
    .unwrap();
    let policy = TrustPolicy::new(vec![key.public_key()], 1).unwrap();
    let file = std::fs::read(&out).unwrap();
    let intact = Bundle::open(file.clone()).unwrap();
    assert_eq!(intact.toc().format, "messenger-bundle/v2");
    assert_eq!(intact.toc().stored.as_ref().map(Vec::len), Some(1));
    for depth in [Depth::Stored, Depth::Content] {
        verify(&intact, &policy, 2, depth, &NoProgress).unwrap();
    }

    // Frames 0 and 1 are bundle.json and SHA256SUMS; frame 3 holds docs/b.txt.
    let b_frame = intact.member("docs/b.txt").unwrap().frames.start;
    let bundle = Bundle::open(recompressed(&file, b_frame)).unwrap();
    let by_content = verify(&bundle, &policy, 2, Depth::Content, &NoProgress).unwrap();
    assert_eq!(by_content.checked.depth, Depth::Content);
    match verify(&bundle, &policy, 2, Depth::Stored, &NoProgress) {
        Err(BundleError::StoredChanged { first, last, .. }) => {
            assert_eq!(
                (first.as_str(), last.as_str()),
                ("docs/a.txt", "docs/c.txt")
            );
        }
        other => panic!("expected StoredChanged, got {other:?}"),
    }
}
