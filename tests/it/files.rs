//! The site's files (files.toml) end to end: a local build output and a file served over
//! HTTP are pinned by `bundle lock`, carried as `files/<name>` with `files.json`, written out
//! of the verified bundle by `installer files`; a local file changed after locking stops the
//! build naming it, and `bundle lock --update NAME` takes the new content.

use serde_json::Value;
use test_support::static_files::StaticFiles;

use crate::build::{images_toml, Work};

fn sha256_hex(bytes: &[u8]) -> String {
    oci::Digest::of(bytes).hex().to_string()
}

#[test]
fn site_files_are_pinned_carried_and_refused_when_changed_after_locking() {
    let work = Work::new();
    let served_dir = work.path("served");
    std::fs::create_dir_all(&served_dir).unwrap();
    std::fs::create_dir_all(work.path("dist")).unwrap();
    let apk: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(work.path("dist/element-x.apk"), &apk).unwrap();
    let guide = b"%PDF-1.4 the site's user guide\n".to_vec();
    std::fs::write(served_dir.join("guide.pdf"), &guide).unwrap();
    let server = StaticFiles::serve(&served_dir);
    work.write("images.toml", &images_toml(None, &[]));
    work.write(
        "files.toml",
        &format!(
            "[[file]]\nname = \"element-x.apk\"\nsource = \"dist/element-x.apk\"\n\
             description = \"Element X for Android\"\n\n\
             [[file]]\nname = \"guide.pdf\"\nsource = \"{}/guide.pdf\"\n",
            server.url()
        ),
    );
    work.lock(&[]).ok();
    let lock = String::from_utf8(work.read("manifests.lock")).unwrap();
    assert!(
        lock.contains(&format!("sha256 = \"sha256:{}\"", sha256_hex(&apk))),
        "{lock}"
    );

    work.build("b.tar.zst", "cache", &[]).ok();
    let dir = work.extract_unchecked("b.tar.zst", "b");
    assert_eq!(std::fs::read(dir.join("files/element-x.apk")).unwrap(), apk);
    assert_eq!(std::fs::read(dir.join("files/guide.pdf")).unwrap(), guide);
    let index: Value = serde_json::from_slice(&work.read("b/files.json")).unwrap();
    assert_eq!(index[0]["name"], "element-x.apk");
    assert_eq!(index[0]["sha256"], sha256_hex(&apk));
    assert_eq!(index[0]["size"], apk.len());
    assert_eq!(index[0]["description"], "Element X for Android");
    assert_eq!(index[1]["sha256"], sha256_hex(&guide));

    let out = work.path("written");
    test_support::installer(
        &[
            "files",
            test_support::p(&work.path("b.tar.zst")),
            "--insecure-skip-verify",
            "--out",
            test_support::p(&out),
        ],
        &work.path(""),
    )
    .ok();
    assert_eq!(std::fs::read(out.join("element-x.apk")).unwrap(), apk);
    assert_eq!(std::fs::read(out.join("guide.pdf")).unwrap(), guide);

    // The site rebuilds its app in place: the locked build refuses, naming the file.
    std::fs::write(work.path("dist/element-x.apk"), b"a different build").unwrap();
    let refused = work.build("c.tar.zst", "cache", &[]).failed();
    assert!(
        refused
            .stderr
            .contains("file element-x.apk (files.toml line 2)")
            && refused.stderr.contains(&sha256_hex(b"a different build")),
        "{}",
        refused.stderr
    );
    assert!(!work.path("c.tar.zst").exists());

    // Locking that file again takes the new content; the other entry stays.
    work.lock(&["--update", "element-x.apk"]).ok();
    work.build("c.tar.zst", "cache", &[]).ok();
    let dir = work.extract_unchecked("c.tar.zst", "c");
    assert_eq!(
        std::fs::read(dir.join("files/element-x.apk")).unwrap(),
        b"a different build"
    );
}
