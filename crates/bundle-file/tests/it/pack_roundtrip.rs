//! Property: any staged directory packs into a bundle that verifies and extracts back to the
//! same files, through the library API.

use bundle_file::extract::extract;
use bundle_file::pack::{pack, PackOptions};
use bundle_file::sign::{KeyId, SecretKey};
use bundle_file::verify::verify;
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
        let report = verify(&bundle, &policy, 2, &NoProgress).unwrap();
        prop_assert_eq!(report.members, files.len() + 3);
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
