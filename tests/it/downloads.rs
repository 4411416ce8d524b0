//! The site's download page (issue 17, item 4): files.toml naming the web image makes the
//! build carry a files image, that image plus one layer with `app/downloads/` (every file,
//! files.json, the CA, index.html). Unpacked with umoci, the page lists each file with its
//! SHA-256 and the CA's fingerprint (read with Python's HTML parser); Debian's nginx, with the
//! chart's rendered server block, serves it with the chart's headers; the build is
//! reproducible, a delta leaves the web image's layers to the site, and an `image` that is not
//! in images.toml is refused naming its line.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use test_support::registry::TestRegistry;
use test_support::require;

use crate::build::{blob_path, images_toml, layout_entry, tools, Work};

fn sha256_hex(bytes: &[u8]) -> String {
    oci::Digest::of(bytes).hex().to_string()
}

/// The page's file rows (`[name, href, sha256]`) and the CA fingerprint, as Python's
/// html.parser reads them.
const PARSE_PAGE: &str = r#"
import json, sys
from html.parser import HTMLParser
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.href, self.ca, self.in_ca = [], None, None, None, None, False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr": self.row = []
        if tag == "td": self.cell = ""
        if tag == "a" and self.row is not None: self.href = a.get("href")
        if tag == "code" and a.get("id") == "ca-sha256": self.in_ca, self.ca = True, ""
    def handle_endtag(self, tag):
        if tag == "td": self.row.append(self.cell); self.cell = None
        if tag == "tr":
            if self.row: self.rows.append([self.row[0], self.href, self.row[3]])
            self.row, self.href = None, None
        if tag == "code": self.in_ca = False
    def handle_data(self, data):
        if self.cell is not None: self.cell += data
        if self.in_ca: self.ca += data
page = Page()
page.feed(open(sys.argv[1], encoding="utf-8").read())
print(json.dumps({"rows": page.rows, "ca": page.ca}))
"#;

/// The chart's rendered nginx server block for Element Web (the `default.conf.template` key of
/// its ConfigMap).
fn chart_nginx_conf() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = test_support::run(
        "helm",
        &[
            "template",
            "msg",
            "charts/messenger",
            "-n",
            "matrix",
            "-f",
            "tests/fixtures/site/site.yaml",
            "-f",
            "charts/messenger/profiles/100.yaml",
            "--show-only",
            "templates/element/element.yaml",
        ],
        root,
    )
    .ok()
    .stdout;
    let mut lines = out
        .lines()
        .skip_while(|l| *l != "  default.conf.template: |");
    assert!(
        lines.next().is_some(),
        "no default.conf.template in:\n{out}"
    );
    lines
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.get(4..).unwrap_or("")))
        .collect()
}

/// nginx serving `app` with the chart's server block, only the port and root rewritten.
struct Nginx {
    child: Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path, app: &Path) -> Nginx {
        let port = test_support::ports::reserved_port();
        let server = chart_nginx_conf();
        assert!(server.contains("listen 8080;") && server.contains("root /app;"));
        let server = server
            .replace("listen 8080;", &format!("listen 127.0.0.1:{port};"))
            .replace("    listen [::]:8080;\n", "")
            .replace("root /app;", &format!("root {};", app.display()));
        std::fs::create_dir_all(dir.join("temp")).unwrap();
        std::fs::write(dir.join("server.conf"), server).unwrap();
        let main = format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n\
             include /etc/nginx/mime.types;\ndefault_type application/octet-stream;\n\
             access_log off;\nclient_body_temp_path {d}/temp;\nproxy_temp_path {d}/temp;\n\
             fastcgi_temp_path {d}/temp;\nuwsgi_temp_path {d}/temp;\nscgi_temp_path {d}/temp;\n\
             include {d}/server.conf;\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let nginx = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(nginx)
            .args(["-e", "stderr", "-p"])
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        test_support::net::wait_for("nginx", std::time::Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Nginx { child, port }
    }

    /// Status line and headers (lowercased names), and the body of `path`.
    fn get(&self, dir: &Path, path: &str) -> (String, Vec<(String, String)>, Vec<u8>) {
        let body = dir.join("body");
        let out = Command::new("curl")
            .args(["-sS", "-D", "-", "-o"])
            .arg(&body)
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let status = lines.next().unwrap().trim().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        (status, headers, std::fs::read(body).unwrap())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The manifest of the single-platform image `entry` points to in layout `dir`.
fn manifest(dir: &Path, entry: &Value) -> Value {
    serde_json::from_slice(
        &std::fs::read(blob_path(dir, entry["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap()
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_files_image_serves_the_download_page_with_every_file_and_the_ca() {
    tools();
    require("umoci", "umoci");
    require("python3", "python3");
    require("curl", "curl");
    require("openssl", "openssl");
    require("helm", "scripts/install-helm.sh");
    require("nginx", "nginx");
    let registry = TestRegistry::plain();
    let work = Work::new();
    let host = registry.host();
    let base = work.push_single(&registry, "vectorim/element-web", 95);
    let reference = format!("{host}/vectorim/element-web:v1");
    let images = images_toml(Some(&host), &[(&reference, Some(&["linux/amd64"][..]))]);
    work.write("images.toml", &images);
    std::fs::create_dir_all(work.path("dist")).unwrap();
    let apk: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(work.path("dist/element-x.apk"), &apk).unwrap();
    let guide = b"%PDF-1.4 the site's guide\n".to_vec();
    std::fs::write(work.path("dist/guide.pdf"), &guide).unwrap();
    let files_toml = format!(
        "image = \"{reference}\"\n\n[[file]]\nname = \"element-x.apk\"\n\
         source = \"dist/element-x.apk\"\ndescription = \"Element X for Android <site build>\"\n\n\
         [[file]]\nname = \"guide.pdf\"\nsource = \"dist/guide.pdf\"\n\
         description = \"User guide & FAQ\"\n"
    );
    work.write("files.toml", &files_toml);
    work.bundle(&["ca", "init", "--out", "ca", "--name", "Test Site Root CA"])
        .ok();
    work.lock(&[]).ok();
    work.build("b.tar.zst", "cache", &["--ca", "ca"]).ok();
    let dir = work.extract_unchecked("b.tar.zst", "b");
    let files_json = work.read("b/files.json");
    let files_ref = format!("{reference}-files.{}", &sha256_hex(&files_json)[..12]);
    let index: Value = serde_json::from_slice(&work.read("b/index.json")).unwrap();
    let entry = layout_entry(&index, &files_ref);

    // The bill of materials names it as the files image.
    let bom: Value = serde_json::from_slice(&work.read("b/sbom.cdx.json")).unwrap();
    let kinds: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["properties"].as_array().into_iter().flatten())
        .filter(|p| p["name"] == "messenger:kind")
        .filter_map(|p| p["value"].as_str())
        .collect();
    assert!(kinds.contains(&"files-image"), "{kinds:?}");
    assert!(!kinds.contains(&"clamav-image"), "{kinds:?}");

    // The base's layers, then one more.
    let layers = layer_digests(&manifest(&dir, &entry));
    let base_layers: Vec<String> = base.images[0]
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    assert_eq!(layers.len(), base_layers.len() + 1);
    assert_eq!(layers[..base_layers.len()], base_layers[..]);

    // As a node unpacks it.
    test_support::run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{}:{files_ref}", dir.display()),
            &format!("oci:{}:page", work.path("page").display()),
        ],
        &work.path(""),
    )
    .ok();
    test_support::run(
        "umoci",
        &["unpack", "--rootless", "--image", "page:page", "unpacked"],
        &work.path(""),
    )
    .ok();
    let app = work.path("unpacked/rootfs/app");
    let downloads = app.join("downloads");
    assert!(
        work.path("unpacked/rootfs/data/file-95.bin").exists(),
        "the base layer is kept"
    );
    assert_eq!(std::fs::read(downloads.join("element-x.apk")).unwrap(), apk);
    assert_eq!(std::fs::read(downloads.join("guide.pdf")).unwrap(), guide);
    assert_eq!(
        std::fs::read(downloads.join("files.json")).unwrap(),
        files_json
    );
    let ca = work.read("ca/ca.crt");
    assert_eq!(std::fs::read(downloads.join("ca.crt")).unwrap(), ca);

    let parsed = test_support::run(
        "python3",
        &[
            "-c",
            PARSE_PAGE,
            test_support::p(&downloads.join("index.html")),
        ],
        &work.path(""),
    )
    .ok();
    let page: Value = serde_json::from_str(parsed.stdout.trim()).unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_value(page["rows"].clone()).unwrap();
    assert_eq!(
        rows,
        vec![
            vec![
                "element-x.apk".to_string(),
                "element-x.apk".to_string(),
                sha256_hex(&apk)
            ],
            vec![
                "guide.pdf".to_string(),
                "guide.pdf".to_string(),
                sha256_hex(&guide)
            ],
        ]
    );
    let fingerprint = test_support::run(
        "openssl",
        &[
            "x509",
            "-in",
            "ca/ca.crt",
            "-noout",
            "-fingerprint",
            "-sha256",
        ],
        &work.path(""),
    )
    .ok()
    .stdout;
    let fingerprint = fingerprint.trim().split_once('=').unwrap().1;
    assert_eq!(page["ca"], fingerprint);
    let html = String::from_utf8(std::fs::read(downloads.join("index.html")).unwrap()).unwrap();
    assert!(html.contains("Element X for Android &lt;site build&gt;"));
    assert!(
        !html.contains("<script") && !html.contains("http"),
        "{html}"
    );

    // Served by nginx with the chart's server block.
    // (nginx's workers run as nobody when the test runs as root: let them through the
    // test's private directory and umoci's 0700 bundle directory; the page's own modes are
    // the image's.)
    use std::os::unix::fs::PermissionsExt;
    for dir in ["", "unpacked"] {
        std::fs::set_permissions(work.path(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let nginx = Nginx::start(&work.path("nginx"), &app);
    let (status, headers, body) = nginx.get(&work.path("nginx"), "/downloads/");
    assert!(
        status.ends_with("200 OK"),
        "{status}: {} {}",
        String::from_utf8_lossy(&std::fs::read(work.path("nginx/error.log")).unwrap_or_default()),
        test_support::run(
            "namei",
            &["-l", test_support::p(&downloads.join("index.html"))],
            &work.path("")
        )
        .stdout
    );
    assert_eq!(body, html.as_bytes());
    assert!(header(&headers, "content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(header(&headers, "content-disposition"), None);
    assert!(header(&headers, "content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    let (status, headers, _) = nginx.get(&work.path("nginx"), "/downloads");
    assert!(status.contains(" 301 "), "{status}");
    assert_eq!(header(&headers, "location"), Some("/downloads/"));
    let (status, headers, body) = nginx.get(&work.path("nginx"), "/downloads/element-x.apk");
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(body, apk);
    assert_eq!(header(&headers, "content-disposition"), Some("attachment"));
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
    let (_, headers, body) = nginx.get(&work.path("nginx"), "/downloads/ca.crt");
    assert_eq!(body, ca);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/x-x509-ca-cert")
    );
    drop(nginx);

    // The same inputs, a cold cache: the same image.
    work.build("again.tar.zst", "cache2", &["--ca", "ca"]).ok();
    work.extract_unchecked("again.tar.zst", "again");
    let again: Value = serde_json::from_slice(&work.read("again/index.json")).unwrap();
    assert_eq!(layout_entry(&again, &files_ref)["digest"], entry["digest"]);

    // A new guide: the delta carries the new layer, not the web image's.
    std::fs::write(work.path("dist/guide.pdf"), b"%PDF-1.4 second edition\n").unwrap();
    work.lock(&["--update", "guide.pdf"]).ok();
    // (A cold cache: the web image's config, left to the site, is fetched to build on.)
    work.build(
        "delta.tar.zst",
        "cache-delta",
        &["--ca", "ca", "--since", "b.tar.zst"],
    )
    .ok();
    let delta = work.extract_unchecked("delta.tar.zst", "delta");
    let delta_json = work.read("delta/files.json");
    let delta_ref = format!("{reference}-files.{}", &sha256_hex(&delta_json)[..12]);
    let delta_index: Value = serde_json::from_slice(&work.read("delta/index.json")).unwrap();
    let delta_layers = layer_digests(&manifest(&delta, &layout_entry(&delta_index, &delta_ref)));
    assert_eq!(delta_layers[..base_layers.len()], base_layers[..]);
    for layer in &base_layers {
        assert!(!blob_path(&delta, layer).exists(), "{layer} carried");
    }
    assert!(blob_path(&delta, delta_layers.last().unwrap()).exists());
    let external: Value = serde_json::from_slice(&work.read("delta/external-blobs.json")).unwrap();
    for layer in &base_layers {
        assert!(
            external
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["digest"] == layer.as_str()),
            "{layer} not left to the site: {external}"
        );
    }

    // An image files.toml names that images.toml does not: refused, naming the line.
    work.write(
        "files.toml",
        &files_toml.replace(&reference, &format!("{host}/other/web:v1")),
    );
    let refused = work.build("c.tar.zst", "cache", &[]).failed();
    assert!(
        refused.stderr.contains("files.toml:1:")
            && refused.stderr.contains("other/web:v1")
            && refused.stderr.contains("not an image of images.toml"),
        "{}",
        refused.stderr
    );
}
