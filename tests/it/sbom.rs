//! The bill of materials (`sbom.cdx.json`) and `bundle diff`, end to end: test images made
//! with umoci (a Debian-style one carrying this machine's real dpkg status database, changed
//! in a second layer; two whose database a later layer deletes, by a whiteout and by an opaque
//! directory; an Alpine-style one with a real-format apk database), pushed to docker-registry
//! with skopeo, built into a signed bundle. The bill is checked against the CycloneDX 1.6 JSON
//! schema with cyclonedx-python-lib, its package lists against `dpkg-query` (and an awk reading
//! of the apk database) run on the images' root filesystems as `umoci raw unpack` writes them,
//! a changed bill must fail `bundle verify` and the documented stock-tools audit, and `bundle
//! diff` must name each kind of change (images, packages, charts, tools, ClamAV, files).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use test_support::registry::TestRegistry;
use test_support::{require, require_python, Run};

use crate::build::{images_toml, tools, Work};

/// A real-format apk database (`lib/apk/db/installed`): per package the checksum, name,
/// version, architecture, sizes, description, URL, licence, origin, maintainer, build time,
/// commit, dependencies, provides, and the file lists (`F`, `R`, `a`, `Z`).
const APK_V1: &str = "\
C:Q1kq7p4Yl0Jx2Ce9I7BXHc1M3x0kY=
P:musl
V:1.2.5-r0
A:x86_64
S:411323
I:662528
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712233386
c:6cc1ba9e3a6f7e1e0f5e2a8f1b4d9d4c3a2b1c0d
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1u5kAAq0SDKC0Bq6rjt8dN7M1BLs=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1Wl6k3xV8A2oO0mC0L3Pq9xY7nE=
P:busybox
V:1.36.1-r28
A:x86_64
S:506361
I:959048
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1712233386
c:9f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r28
F:bin
R:busybox
a:0:0:755
Z:Q1kF4t0Vt1F2uJq5H1Xq7c2l4n0Y=

C:Q1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6=
P:zlib
V:1.3.1-r0
A:x86_64
S:53655
I:104960
T:A compression/decompression Library
U:https://zlib.net/
L:Zlib
o:zlib
m:Natanael Copa <ncopa@alpinelinux.org>
t:1706000000
c:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567
D:so:libc.musl-x86_64.so.1
p:so:libz.so.1=1.3.1
F:lib
R:libz.so.1.3.1
a:0:0:755
Z:Q1ZbJ3ZKBXq0m6cA5qvYh3Vtx5vDo=

";

/// Runs `bundle ARGS` in `dir` with its output as text.
fn bundle_in(dir: &Path, args: &[&str]) -> Run {
    Run::from(
        Command::new(test_support::bin("bundle"))
            .args(args)
            .current_dir(dir)
            .env("CI", "1")
            .output()
            .expect("run bundle"),
    )
}

/// Runs a shell script in `dir`, failing the test with its output unless it succeeds.
fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{script}\nfailed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An image made with umoci in layout `layouts` as tag `tag`: `layers` are shell scripts run
/// in turn in a freshly unpacked root filesystem (`rootfs`), each repacked as one layer; a
/// script starting with `RAW ` instead names a tar file added as a layer as it is.
fn umoci_image(work: &Work, tag: &str, layers: &[&str]) {
    let layout = work.path("layouts");
    let root = work.path("");
    if !layout.join("index.json").exists() {
        sh(&root, "umoci init --layout layouts");
    }
    sh(&root, &format!("umoci new --image layouts:{tag}"));
    for (i, script) in layers.iter().enumerate() {
        if let Some(tar) = script.strip_prefix("RAW ") {
            sh(
                &root,
                &format!("umoci raw add-layer --image layouts:{tag} {tar}"),
            );
            continue;
        }
        let bundle = format!("unpacked-{tag}-{i}");
        sh(
            &root,
            &format!("umoci unpack --rootless --image layouts:{tag} {bundle}"),
        );
        sh(&root.join(&bundle).join("rootfs"), script);
        sh(
            &root,
            &format!("umoci repack --image layouts:{tag} {bundle} && rm -rf {bundle}"),
        );
    }
}

/// Pushes tag `tag` of the umoci layout to `registry` as `repository:push_tag`.
fn push(work: &Work, registry: &TestRegistry, tag: &str, repository: &str, push_tag: &str) {
    sh(
        &work.path(""),
        &format!(
            "skopeo --insecure-policy copy --quiet --preserve-digests --dest-tls-verify=false \
             --dest-no-creds oci:layouts:{tag} docker://{}/{repository}:{push_tag}",
            registry.host()
        ),
    );
}

/// The root filesystem of `tag` as `umoci raw unpack` writes it.
fn rootfs(work: &Work, tag: &str) -> PathBuf {
    let dir = format!("rootfs-{tag}");
    sh(
        &work.path(""),
        &format!("umoci raw unpack --rootless --image layouts:{tag} {dir}"),
    );
    work.path(&dir)
}

/// What dpkg reports in `rootfs`: `name version arch` of every package whose files are
/// installed (every state but not-installed and config-files).
fn dpkg_query(rootfs: &Path) -> BTreeSet<String> {
    let admin = rootfs.join("var/lib/dpkg");
    let out = sh(
        rootfs,
        &format!(
            "dpkg-query --admindir={} -W -f '${{db:Status-Status}} ${{Package}} ${{Version}} ${{Architecture}}\\n'",
            admin.display()
        ),
    );
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(state, _)| !matches!(*state, "not-installed" | "config-files"))
        .map(|(_, rest)| rest.to_string())
        .collect()
}

/// An independent reading of `rootfs`'s apk database with awk: `name version arch`.
fn apk_awk(rootfs: &Path) -> BTreeSet<String> {
    let out = sh(
        rootfs,
        "awk -F: '/^P:/{p=substr($0,3)} /^V:/{v=substr($0,3)} /^A:/{a=substr($0,3)} \
         /^$/{if(p!=\"\")print p\" \"v\" \"a; p=\"\"} END{if(p!=\"\")print p\" \"v\" \"a}' \
         lib/apk/db/installed",
    );
    out.lines().map(str::to_string).collect()
}

/// The bill's platform component for `repository` (an image's only platform), found by the
/// image's name ending.
fn platform_of<'a>(bom: &'a Value, repository: &str) -> &'a Value {
    let image = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "container" && c["name"].as_str().unwrap().ends_with(repository))
        .unwrap_or_else(|| panic!("no image {repository} in the bill"));
    &image["components"][0]
}

fn property<'a>(component: &'a Value, name: &str) -> Vec<&'a str> {
    component["properties"]
        .as_array()
        .map(|props| {
            props
                .iter()
                .filter(|p| p["name"] == name)
                .map(|p| p["value"].as_str().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

/// `name version arch` of the packages the bill lists under `platform`, the arch taken from
/// each purl.
fn bill_packages(platform: &Value) -> BTreeSet<String> {
    platform["components"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    let purl = p["purl"].as_str().unwrap();
                    let arch = purl.split("arch=").nth(1).unwrap();
                    format!(
                        "{} {} {arch}",
                        p["name"].as_str().unwrap(),
                        p["version"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Validates `file` against the CycloneDX 1.6 JSON schema with cyclonedx-python-lib.
fn validate_cyclonedx(file: &Path) {
    require_python(
        "cyclonedx.validation.json, jsonschema",
        "pip install cyclonedx-python-lib[json-validation]",
    );
    let script = "import sys\n\
from cyclonedx.schema import SchemaVersion\n\
from cyclonedx.validation.json import JsonStrictValidator\n\
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
if errors:\n    print(errors)\n    sys.exit(1)\n";
    let out = Command::new("python3")
        .args(["-c", script, &file.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} is not valid CycloneDX 1.6:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Edits this machine's dpkg status in `rootfs` as a package upgrade and a removal would: the
/// first package's version gains `+sbomtest1`, the second package's stanza goes.
const DPKG_CHANGE: &str = "python3 - <<'PY'
path = 'var/lib/dpkg/status'
stanzas = open(path).read().strip('\\n').split('\\n\\n')
lines = stanzas[0].split('\\n')
stanzas[0] = '\\n'.join(l + '+sbomtest1' if l.startswith('Version: ') else l for l in lines)
del stanzas[1]
open(path, 'w').write('\\n\\n'.join(stanzas) + '\\n')
PY";

#[test]
fn the_bill_lists_each_images_packages_as_its_package_manager_does() {
    tools();
    require("umoci", "umoci");
    require("dpkg-query", "dpkg");
    require("jq", "jq");
    require("zstd", "zstd");
    let registry = TestRegistry::plain();
    let host = registry.host();
    let work = Work::new();
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    work.write("status", &status);
    work.write("apk-installed", APK_V1);
    let seed = format!(
        "mkdir -p var/lib/dpkg etc && cp {} var/lib/dpkg/status && \
         printf 'ID=debian\\nVERSION_ID=\"12\"\\n' > etc/os-release",
        work.path("status").display()
    );
    umoci_image(&work, "deb", &[&seed, DPKG_CHANGE]);
    umoci_image(&work, "deb-wh", &[&seed, "rm var/lib/dpkg/status"]);
    // An opaque whiteout of var/lib/ in the second layer: everything below it goes.
    sh(
        &work.path(""),
        "mkdir -p opq/var/lib && touch opq/var/lib/.wh..wh..opq && echo x > opq/var/lib/other && \
         tar -C opq -cf opq.tar var",
    );
    umoci_image(&work, "deb-opq", &[&seed, "RAW opq.tar"]);
    let apk_seed = format!(
        "mkdir -p lib/apk/db etc && cp {} lib/apk/db/installed && \
         printf 'ID=alpine\\nVERSION_ID=3.20.3\\n' > etc/os-release",
        work.path("apk-installed").display()
    );
    // The second layer upgrades zlib, removes busybox and adds a package.
    let apk_change = "sed -i -e 's/^V:1.3.1-r0$/V:1.3.1-r1/' lib/apk/db/installed && \
         awk 'BEGIN{RS=\"\"; ORS=\"\\n\\n\"} !/\\nP:busybox\\n/' lib/apk/db/installed > x && \
         printf 'C:Q1zz=\\nP:ca-certificates-bundle\\nV:20240705-r0\\nA:x86_64\\nL:MPL-2.0 AND MIT\\no:ca-certificates\\n\\n' >> x && \
         mv x lib/apk/db/installed";
    umoci_image(&work, "alp", &[&apk_seed, apk_change]);
    for tag in ["deb", "deb-wh", "deb-opq", "alp"] {
        push(&work, &registry, tag, &format!("test/{tag}"), "v1");
    }
    let amd64: &[&str] = &["linux/amd64"];
    let refs: Vec<String> = ["deb", "deb-wh", "deb-opq", "alp"]
        .iter()
        .map(|t| format!("{host}/test/{t}:v1"))
        .collect();
    let entries: Vec<(&str, Option<&[&str]>)> =
        refs.iter().map(|r| (r.as_str(), Some(amd64))).collect();
    work.write("images.toml", &images_toml(Some(&host), &entries));
    work.lock(&[]).ok();
    let (public, secret) = test_support::test_key("sbom");
    work.build(
        "b1.tar.zst",
        "cache",
        &["--sign-key", test_support::p(&secret)],
    )
    .ok();
    let dir = work.path("");

    // The bill, checked against the signed bundle.json, is valid CycloneDX 1.6.
    let shown = bundle_in(
        &dir,
        &[
            "inspect",
            "--sbom",
            "b1.tar.zst",
            "--key",
            test_support::p(&public),
        ],
    )
    .ok();
    work.write("sbom.json", &shown.stdout);
    validate_cyclonedx(&work.path("sbom.json"));
    let bom: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["metadata"]["timestamp"].as_str().unwrap().len(), 20);

    // Debian: what dpkg-query reports in the unpacked root filesystem, upgrade and removal
    // included (so the second layer's database won).
    let deb = platform_of(&bom, "test/deb");
    let expected = dpkg_query(&rootfs(&work, "deb"));
    assert!(expected.len() > 50, "{}", expected.len());
    assert!(expected.iter().any(|p| p.contains("+sbomtest1")));
    assert_eq!(bill_packages(deb), expected);
    assert_eq!(property(deb, "messenger:packages"), ["dpkg"]);
    assert_eq!(property(deb, "messenger:os"), ["debian 12"]);
    let purl = deb["components"][0]["purl"].as_str().unwrap();
    assert!(purl.starts_with("pkg:deb/debian/"), "{purl}");
    // Its layers are the manifest's, in order, and its purl names the registry digest.
    let lock = online::spec::Lock::load(&work.path("manifests.lock")).unwrap();
    let locked = lock
        .images
        .iter()
        .find(|i| i.reference.repository == "test/deb")
        .unwrap();
    let manifest: Value = serde_json::from_slice(&sh_bytes(
        &dir,
        &format!("cat cache/blobs/sha256/{}", locked.root_digest().hex()),
    ))
    .unwrap();
    let layers: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 2);
    assert_eq!(property(deb, "messenger:layer"), layers);
    let image_purl = format!(
        "pkg:oci/deb@sha256%3A{}?arch=amd64&repository_url={host}/test/deb&tag=v1",
        locked.root_digest().hex()
    );
    assert_eq!(deb["purl"], image_purl.as_str());

    // A whiteout and an opaque directory hide the lower layer's database, as umoci's unpack
    // does: no database, no packages.
    for tag in ["deb-wh", "deb-opq"] {
        assert!(!rootfs(&work, tag).join("var/lib/dpkg/status").exists());
        let platform = platform_of(&bom, &format!("test/{tag}"));
        assert_eq!(bill_packages(platform), BTreeSet::new(), "{tag}");
        assert!(property(platform, "messenger:packages")[0].starts_with("none"));
    }

    // Alpine: the awk reading of the unpacked database (apk itself cannot run here).
    let alp = platform_of(&bom, "test/alp");
    let expected = apk_awk(&rootfs(&work, "alp"));
    assert_eq!(expected.len(), 3, "{expected:?}");
    assert!(expected.contains("zlib 1.3.1-r1 x86_64"));
    assert_eq!(bill_packages(alp), expected);
    let zlib = alp["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "zlib")
        .unwrap();
    assert_eq!(zlib["purl"], "pkg:apk/alpine/zlib@1.3.1-r1?arch=x86_64");
    assert_eq!(zlib["licenses"][0]["license"]["name"], "Zlib");

    // An auditor's reading with stock tools (the jq block of docs/auditing.md) finds the same.
    let doc =
        std::fs::read_to_string(test_support::workspace_root().join("docs/auditing.md")).unwrap();
    let block = doc
        .split("<!-- sbom-jq -->")
        .nth(1)
        .and_then(|after| after.split("```sh\n").nth(1))
        .and_then(|code| code.split("```").next())
        .expect("the sbom-jq block in docs/auditing.md");
    let listed = sh(
        &dir,
        &format!("mkdir audit && zstd -qdc b1.tar.zst | tar -xf - -C audit\n{block}"),
    );
    let root = locked.root_digest().to_string();
    assert!(
        listed.contains(&format!("{host}/test/deb:v1 {root}\n")),
        "{listed}"
    );
    let packages = std::fs::read_to_string(work.path("packages.txt")).unwrap();
    let deb_lines = packages
        .lines()
        .filter(|l| l.starts_with(&format!("{host}/test/deb\tlinux/amd64\tpkg:deb/debian/")))
        .count();
    assert_eq!(deb_lines, bill_packages(deb).len());
    assert!(packages.contains(&format!(
        "{host}/test/alp\tlinux/amd64\tpkg:apk/alpine/zlib@1.3.1-r1?arch=x86_64\n"
    )));

    // The documented audit with stock tools passes on the bundle and fails once the bill in
    // the tar stream says something else (a package version changed, all else kept).
    require("minisign", "minisign");
    let script = doc
        .split("<!-- audit-script -->")
        .nth(1)
        .and_then(|after| after.split("```sh\n").nth(1))
        .and_then(|code| code.split("\n```").next())
        .expect("the audit-script block in docs/auditing.md");
    let audit = |bundle_file: &str, run_dir: &str| {
        std::fs::create_dir_all(work.path(run_dir)).unwrap();
        Command::new("sh")
            .args(["-c", script])
            .current_dir(work.path(run_dir))
            .env("BUNDLE", work.path(bundle_file))
            .env("KEY", &public)
            .output()
            .unwrap()
    };
    let passed = audit("b1.tar.zst", "audit-ok");
    assert!(
        passed.status.success(),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    sh(
        &dir,
        "mkdir x && zstd -qdc b1.tar.zst | tar -xf - -C x \
         && sed -i 's/\"version\": \"1.3.1-r1\"/\"version\": \"1.3.1-r2\"/' x/sbom.cdx.json \
         && ! cmp -s x/sbom.cdx.json audit/sbom.cdx.json \
         && tar -cf - -C x . | zstd -q > tampered.tar.zst",
    );
    let failed = audit("tampered.tar.zst", "audit-tampered");
    assert!(!failed.status.success());
    let said = String::from_utf8_lossy(&failed.stdout);
    assert!(said.contains("sbom.cdx.json: FAILED"), "{said}");

    // The same lock and cache give the same bill, byte for byte.
    work.build(
        "b2.tar.zst",
        "cache",
        &["--sign-key", test_support::p(&secret)],
    )
    .ok();
    let again = bundle_in(&dir, &["inspect", "--sbom", "b2.tar.zst"]).ok();
    assert_eq!(again.stdout, shown.stdout);
    let same = bundle_in(&dir, &["diff", "b1.tar.zst", "b2.tar.zst"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert_eq!(same.stdout, "no differences\n");

    // A bill changed inside the bundle fails `bundle verify` and is refused by inspect.
    let inspect = bundle_in(&dir, &["--json", "inspect", "b2.tar.zst"]).ok();
    let doc: Value = serde_json::from_str(&inspect.stdout).unwrap();
    let members = doc["members"].as_array().unwrap();
    let offset: u64 = members
        .iter()
        .take_while(|m| m["path"] != "sbom.cdx.json")
        .map(|m| m["compressed"].as_u64().unwrap())
        .sum();
    let sbom = members
        .iter()
        .find(|m| m["path"] == "sbom.cdx.json")
        .unwrap();
    test_support::flip_byte(
        &work.path("b2.tar.zst"),
        offset + sbom["compressed"].as_u64().unwrap() / 2,
    );
    let verify = bundle_in(
        &dir,
        &["verify", "b2.tar.zst", "--key", test_support::p(&public)],
    );
    assert_ne!(verify.code, 0, "{}", verify.stdout);
    assert!(verify.stderr.contains("sbom.cdx.json"), "{}", verify.stderr);
    let refused = bundle_in(&dir, &["inspect", "--sbom", "b2.tar.zst"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);

    // The next release: deb upgraded again under the same tag, alp retagged, deb-wh dropped,
    // a new image added.
    umoci_image(
        &work,
        "deb2",
        &[
            &seed,
            DPKG_CHANGE,
            "sed -i '0,/^Version: /s/^Version: .*/&.2/' var/lib/dpkg/status",
        ],
    );
    push(&work, &registry, "deb2", "test/deb", "v1");
    push(&work, &registry, "alp", "test/alp", "v2");
    push(&work, &registry, "deb-opq", "test/extra", "v1");
    let refs2 = [
        format!("{host}/test/deb:v1"),
        format!("{host}/test/deb-opq:v1"),
        format!("{host}/test/alp:v2"),
        format!("{host}/test/extra:v1"),
    ];
    let entries: Vec<(&str, Option<&[&str]>)> =
        refs2.iter().map(|r| (r.as_str(), Some(amd64))).collect();
    std::fs::copy(work.path("manifests.lock"), work.path("old.lock")).unwrap();
    work.write("images.toml", &images_toml(Some(&host), &entries));
    work.lock(&[]).ok();
    work.build("b3.tar.zst", "cache", &[]).ok();
    let changed = bundle_in(&dir, &["diff", "b1.tar.zst", "b3.tar.zst"]);
    assert_eq!(changed.code, 1, "{}", changed.stderr);
    let text = &changed.stdout;
    assert!(
        text.contains(&format!("  - {host}/test/deb-wh v1 sha256:")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  + {host}/test/extra v1 sha256:")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  ~ {host}/test/alp: tag v1 -> v2\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  ~ {host}/test/deb: digest sha256:")),
        "{text}"
    );
    let json = bundle_in(&dir, &["--json", "diff", "b1.tar.zst", "b3.tar.zst"]);
    assert_eq!(json.code, 1);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["changed"], true);
    let deb_change = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("{host}/test/deb"))
        .unwrap();
    let package_changes = deb_change["packages"][0]["changes"].as_array().unwrap();
    assert_eq!(package_changes.len(), 1, "{package_changes:?}");
    let upgraded = &package_changes[0];
    assert!(upgraded["old"].as_str().unwrap().ends_with("+sbomtest1"));
    assert!(upgraded["new"].as_str().unwrap().ends_with("+sbomtest1.2"));
    // The packages of the retagged image are the same, so none are listed for it.
    let alp_change = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == format!("{host}/test/alp"))
        .unwrap();
    assert!(alp_change.get("packages").is_none(), "{alp_change}");
    // Locks compare the same way, without packages; a lock against itself is no change.
    let locks = bundle_in(&dir, &["--json", "diff", "old.lock", "manifests.lock"]);
    assert_eq!(locks.code, 1, "{}", locks.stderr);
    let report: Value = serde_json::from_str(&locks.stdout).unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 4);
    let unchanged = bundle_in(&dir, &["diff", "manifests.lock", "b3.tar.zst"]);
    assert_eq!(
        unchanged.code, 0,
        "{}{}",
        unchanged.stdout, unchanged.stderr
    );
    let missing = bundle_in(&dir, &["diff", "old.lock", "nothing-here"]);
    assert_eq!(missing.code, 2);
}

fn sh_bytes(dir: &Path, script: &str) -> Vec<u8> {
    sh(dir, script).into_bytes()
}

/// A manifests.lock with one image (`tag`, manifest digest from `image`), and a chart, a tool,
/// a ClamAV database and a file whose versions and digests come from the arguments.
fn lock_text(
    images: &[(&str, char)],
    chart: (&str, char),
    tool: (&str, char),
    daily: u32,
    file: char,
) -> String {
    let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let mut text = String::from("version = 1\nresolved_at = \"2026-01-01T00:00:00Z\"\n");
    for (reference, digest) in images {
        text.push_str(&format!(
            "\n[[image]]\nref = \"{reference}\"\nmanifest_digest = \"{m}\"\n\
             manifest_media_type = \"application/vnd.oci.image.manifest.v1+json\"\n\
             manifest_size = 500\n\n[[image.platform]]\nplatform = \"linux/amd64\"\n\
             digest = \"{m}\"\nmedia_type = \"application/vnd.oci.image.manifest.v1+json\"\n\
             size = 500\nconfig_digest = \"{c}\"\nlayers = 1000\n",
            m = d(*digest),
            c = d('c'),
        ));
    }
    text.push_str(&format!(
        "\n[[chart]]\nname = \"cert-manager\"\nversion = \"{}\"\nrepo = \"https://charts.jetstack.io\"\n\
         url = \"https://charts.jetstack.io/charts/cert-manager-{0}.tgz\"\ndigest = \"{}\"\nsize = 91873\n",
        chart.0,
        d(chart.1)
    ));
    text.push_str(&format!(
        "\n[[clamav]]\nfile = \"daily.cvd\"\nurl = \"http://127.0.0.1:1/daily.cvd\"\nversion = {daily}\n\
         signatures = 100\nfunctionality_level = 90\nbuild_time = 1700000000\nsha256 = \"{}\"\nsize = 1000\n",
        d(if daily == 27500 { 'a' } else { 'b' })
    ));
    text.push_str(&format!(
        "\n[[tool]]\nname = \"helm\"\nversion = \"{}\"\nplatform = \"linux/amd64\"\n\
         url = \"https://get.helm.sh/helm-v{0}-linux-amd64.tar.gz\"\nmember = \"linux-amd64/helm\"\n\
         download_sha256 = \"{}\"\nsha256 = \"{}\"\nsize = 60000000\n",
        tool.0,
        d('d'),
        d(tool.1)
    ));
    text.push_str(&format!(
        "\n[[file]]\nname = \"element-x.apk\"\nsource = \"build/element-x.apk\"\nsha256 = \"{}\"\nsize = 4096\n",
        d(file)
    ));
    text
}

#[test]
fn diff_of_locks_names_each_kind_of_change_and_exits_like_diff() {
    let dir = tempfile::tempdir().unwrap();
    let old = lock_text(
        &[
            ("r.example/team/app:v1", '1'),
            ("r.example/team/web:v1", '2'),
            ("r.example/team/gone:v1", '3'),
        ],
        ("v1.19.1", 'e'),
        ("4.1.4", 'f'),
        27500,
        '4',
    );
    let new = lock_text(
        &[
            ("r.example/team/app:v1", '5'),
            ("r.example/team/web:v2", '2'),
            ("r.example/team/new:v1", '6'),
        ],
        ("v1.19.2", '7'),
        ("4.1.5", '8'),
        27501,
        '9',
    );
    std::fs::write(dir.path().join("old.lock"), &old).unwrap();
    std::fs::write(dir.path().join("new.lock"), &new).unwrap();
    std::fs::write(dir.path().join("same.lock"), &old).unwrap();

    let same = bundle_in(dir.path(), &["diff", "old.lock", "same.lock"]);
    assert_eq!(
        (same.code, same.stdout.as_str()),
        (0, "no differences\n"),
        "{}",
        same.stderr
    );

    let text = bundle_in(dir.path(), &["diff", "old.lock", "new.lock"]);
    assert_eq!(text.code, 1, "{}", text.stderr);
    let d = |c: char| c.to_string().repeat(64);
    let expected = format!(
        "images:\n\
         \x20 ~ r.example/team/app: digest sha256:{one} -> sha256:{five}\n\
         \x20 - r.example/team/gone v1 sha256:{three}\n\
         \x20 + r.example/team/new v1 sha256:{six}\n\
         \x20 ~ r.example/team/web: tag v1 -> v2\n\
         charts:\n\
         \x20 ~ cert-manager v1.19.1 (sha256:{e}) -> v1.19.2 (sha256:{seven})\n\
         tools:\n\
         \x20 ~ helm (linux/amd64) 4.1.4 (sha256:{f}) -> 4.1.5 (sha256:{eight})\n\
         clamav:\n\
         \x20 ~ daily.cvd 27500 (sha256:{a}) -> 27501 (sha256:{b})\n\
         files:\n\
         \x20 ~ element-x.apk sha256:{four} -> sha256:{nine}\n",
        one = d('1'),
        three = d('3'),
        four = d('4'),
        five = d('5'),
        six = d('6'),
        seven = d('7'),
        eight = d('8'),
        nine = d('9'),
        a = d('a'),
        b = d('b'),
        e = d('e'),
        f = d('f'),
    );
    assert_eq!(text.stdout, expected);

    let json = bundle_in(dir.path(), &["--json", "diff", "old.lock", "new.lock"]);
    assert_eq!(json.code, 1);
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(report["clamav"][0]["old"]["version"], "27500");
    assert_eq!(report["clamav"][0]["new"]["version"], "27501");
    assert_eq!(report["images"][1]["name"], "r.example/team/gone");
    assert!(report["images"][1]["new"].is_null());
    assert_eq!(report["images"][3]["old"]["tag"], "v1");
    assert_eq!(report["images"][3]["new"]["tag"], "v2");
    assert_eq!(report["files"][0]["new"]["sha256"], d('9'));

    // The bill the build writes for the same tools, ClamAV database and file is valid
    // CycloneDX, and `bundle diff` reads the same versions and digests from it as from the lock.
    let lock = online::spec::Lock::parse(&new, &dir.path().join("new.lock")).unwrap();
    let cache = online::store::BlobCache::open(dir.path().join("cache")).unwrap();
    let inputs = online::sbom::SbomInputs {
        name: "messenger",
        version: "1.0.0",
        timestamp: lock.build_time(),
        images: &[],
        lock: &lock,
        tools_and_files: true,
        clamav: true,
    };
    let bom = online::sbom::document(&inputs, &cache).unwrap();
    std::fs::write(dir.path().join("bom.json"), online::sbom::to_bytes(&bom)).unwrap();
    validate_cyclonedx(&dir.path().join("bom.json"));
    let from_bom = online::sbom::diff::Inventory::from_bom(&bom);
    let from_lock = online::sbom::diff::Inventory::from_lock(&lock);
    assert_eq!(from_bom.tools, from_lock.tools);
    assert_eq!(from_bom.clamav, from_lock.clamav);
    assert_eq!(from_bom.files, from_lock.files);
    assert_eq!(
        from_bom.tools.len() + from_bom.clamav.len() + from_bom.files.len(),
        3
    );

    // Something that is neither a bundle nor a lock is an error: exit 2, as diff(1).
    std::fs::write(dir.path().join("junk"), "not a lock").unwrap();
    let broken = bundle_in(dir.path(), &["diff", "old.lock", "junk"]);
    assert_eq!(broken.code, 2, "{}", broken.stderr);
    assert!(
        broken.stderr.contains("junk is neither a bundle"),
        "{}",
        broken.stderr
    );
}
