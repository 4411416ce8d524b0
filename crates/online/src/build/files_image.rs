//! The files image: the web image files.toml names (`image = ...`, Element Web's) plus one
//! appended layer holding the site's download page under `/app/downloads`: every file,
//! `files.json`, the site CA as `ca.crt` when the bundle carries one, and `index.html`
//! listing them with their SHA-256. The chart serves it at `https://<element host>/downloads/`.
//!
//! The tag is the base's tag, `-files.` and the first 12 hex digits of `files.json`'s SHA-256,
//! so the installer finds the image from the `files.json` the bundle carries.

use std::fmt::Write as _;
use std::path::Path;

use oci::Digest;

use super::signature_image::{append_layer, AppendedImage, LayerFile};
use super::BuildError;
use crate::files::FileEntry;
use crate::spec::{FilesFile, ImagesFile, Lock, LockedImage};
use crate::store::BlobCache;

/// Where the page goes in the image (Element Web serves `/app`).
pub const DOWNLOADS_DIR: &str = "app/downloads";

/// The tag of the files image for `base` and the bytes of `files.json`
/// (`v1.12.36-files.0123456789ab`).
pub fn files_tag(base_tag: Option<&str>, files_json: &[u8]) -> String {
    let hex = Digest::of(files_json).hex().to_string();
    match base_tag {
        Some(tag) => format!("{tag}-files.{}", &hex[..12]),
        None => format!("files.{}", &hex[..12]),
    }
}

/// Whether `tag` is a files image's (`…files.` and 12 hex digits).
pub fn is_files_tag(tag: Option<&str>) -> bool {
    tag.and_then(|t| t.rsplit_once("files."))
        .is_some_and(|(head, hex)| {
            (head.is_empty() || head.ends_with('-'))
                && hex.len() == 12
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// `files.json`: the bundle's listing of its files.
pub fn files_index(entries: &[FileEntry]) -> Vec<u8> {
    bundle_file::pack::json_bytes(entries)
}

/// The locked image files.toml's `image` names, if it names one; refused, naming the line,
/// when it is not an image of images.toml.
pub fn base_image<'a>(
    files: &FilesFile,
    images: &ImagesFile,
    lock: &'a Lock,
) -> Result<Option<&'a LockedImage>, BuildError> {
    let Some((written, line)) = &files.image else {
        return Ok(None);
    };
    let refused = || BuildError::FilesImage {
        path: files.path.display().to_string(),
        line: *line,
        image: written.clone(),
    };
    let reference = oci::Reference::parse(written).map_err(|_| refused())?;
    let spec = images
        .images
        .iter()
        .find(|i| i.reference == reference || i.written == *written)
        .ok_or_else(refused)?;
    lock.images
        .iter()
        .find(|i| i.reference == spec.reference)
        .map(Some)
        .ok_or_else(|| {
            BuildError::LockMismatch(format!("the image {} is not in the lock", spec.reference))
        })
}

/// Builds the files image on `base` (cached) for `entries` (their contents in `cache`), with
/// the CA certificate of `ca_dir` when given; new blobs go into `cache`.
pub fn files_image(
    base: &LockedImage,
    entries: &[FileEntry],
    ca_dir: Option<&Path>,
    cache: &BlobCache,
    timestamp: u64,
) -> Result<AppendedImage, BuildError> {
    let mut layer = Vec::new();
    for entry in entries {
        layer.push(LayerFile {
            path: format!("{DOWNLOADS_DIR}/{}", entry.name),
            file: cache.file_of(&entry.digest),
            size: entry.size,
        });
    }
    let index = files_index(entries);
    let mut cached = |name: &str, bytes: &[u8]| -> Result<(), BuildError> {
        let digest = cache.put_bytes(bytes)?;
        layer.push(LayerFile {
            path: format!("{DOWNLOADS_DIR}/{name}"),
            file: cache.file_of(&digest),
            size: bytes.len() as u64,
        });
        Ok(())
    };
    cached("files.json", &index)?;
    let ca = match ca_dir {
        Some(dir) => {
            let ca = crate::ca::CaFiles::read_dir(dir)?;
            let fingerprint = ca.info()?.sha256;
            cached("ca.crt", ca.cert_pem().as_bytes())?;
            Some(fingerprint)
        }
        None => None,
    };
    cached("index.html", page(entries, ca.as_deref()).as_bytes())?;
    let tag = files_tag(base.reference.tag.as_deref(), &index);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let history = format!("bundle: the site's download page ({})", names.join(" "));
    append_layer(
        base,
        &[DOWNLOADS_DIR],
        &layer,
        &history,
        tag,
        cache,
        timestamp,
    )
}

/// Escapes `text` for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `bytes` for people: `12 345 678 bytes (11.8 MiB)`.
fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "";
    for next in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    if unit.is_empty() {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({value:.1} {unit})")
    }
}

/// The download page: plain HTML, no script and no outside address; each file with its
/// description, size and SHA-256, the CA certificate with its fingerprint, and how to install
/// on a phone.
pub fn page(entries: &[FileEntry], ca_fingerprint: Option<&str>) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Downloads</title>\n<style>\n\
         body { font-family: sans-serif; line-height: 1.5; max-width: 52rem; margin: 1rem auto; \
         padding: 0 1rem; }\n\
         table { border-collapse: collapse; width: 100%; }\n\
         th, td { border: 1px solid #888; padding: 0.3rem 0.5rem; text-align: left; \
         vertical-align: top; }\n\
         code { overflow-wrap: anywhere; }\n</style>\n</head>\n<body>\n<main>\n\
         <h1>Downloads</h1>\n\
         <p>Files for this site: the apps and documents it offers, and its certificate. \
         Compare a file's SHA-256 with the one shown here before you open or install it.</p>\n",
    );
    if let Some(fingerprint) = ca_fingerprint {
        let _ = write!(
            html,
            "<h2 id=\"certificate\">The site's certificate</h2>\n\
             <p><a href=\"ca.crt\" type=\"application/x-x509-ca-cert\">ca.crt</a>: the \
             certificate authority that signs this site's addresses. Your device trusts the \
             site once it has this certificate. Its SHA-256 fingerprint is \
             <code id=\"ca-sha256\">{}</code>; check that your device shows the same before \
             you trust it.</p>\n",
            escape(fingerprint)
        );
    }
    html.push_str("<h2 id=\"files\">Files</h2>\n");
    if entries.is_empty() {
        html.push_str("<p>No files.</p>\n");
    } else {
        html.push_str(
            "<table>\n<thead>\n<tr><th scope=\"col\">File</th><th scope=\"col\">Description\
             </th><th scope=\"col\">Size</th><th scope=\"col\">SHA-256</th></tr>\n</thead>\n\
             <tbody>\n",
        );
        for entry in entries {
            let name = escape(&entry.name);
            let _ = writeln!(
                html,
                "<tr><td><a href=\"{name}\" download>{name}</a></td><td>{}</td><td>{}</td>\
                 <td><code>{}</code></td></tr>",
                escape(&entry.description),
                size_text(entry.size),
                escape(entry.digest.hex())
            );
        }
        html.push_str("</tbody>\n</table>\n");
    }
    html.push_str(
        "<h2 id=\"phone\">Installing on a phone</h2>\n<ol>\n\
         <li>Open this page on the phone: type its address, or send yourself the link.</li>\n",
    );
    if ca_fingerprint.is_some() {
        html.push_str(
            "<li>Download <a href=\"ca.crt\">ca.crt</a> and install it as a CA certificate \
             (Android: Settings, Security, Encryption &amp; credentials, Install a certificate, \
             CA certificate; iPhone: Settings, Profile Downloaded, Install, then General, About, \
             Certificate Trust Settings, turn it on). Check its SHA-256 fingerprint above.</li>\n",
        );
    }
    html.push_str(
        "<li>Download the app for your phone from the table above and open it; Android asks \
         once to allow installing apps from the browser.</li>\n\
         <li>Sign in with the address and account your administrator gave you.</li>\n</ol>\n\
         </main>\n</body>\n</html>\n",
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_everything_and_shows_each_sha256() {
        let entries = vec![FileEntry {
            name: "a&b.apk".into(),
            path: "files/a&b.apk".into(),
            digest: Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap(),
            size: 3 * 1024 * 1024,
            description: "<script>alert(1)</script> \"x\"".into(),
        }];
        let html = page(&entries, Some("AA:BB"));
        assert!(html.contains("href=\"a&amp;b.apk\""));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &quot;x&quot;"));
        assert!(!html.contains("<script"));
        assert!(html.contains(&"ab".repeat(32)));
        assert!(html.contains("3145728 bytes (3.0 MiB)"));
        assert!(html.contains("<code id=\"ca-sha256\">AA:BB</code>"));
        assert!(!html.contains("http"));
        assert!(!page(&entries, None).contains("ca.crt"));
    }

    #[test]
    fn the_tag_follows_files_json() {
        let tag = files_tag(Some("v1.12.36"), b"[]\n");
        assert!(is_files_tag(Some(&tag)) && is_files_tag(Some(&files_tag(None, b""))));
        assert!(!is_files_tag(Some("1.4_base-db.main-62")) && !is_files_tag(None));
        assert_eq!(
            files_tag(Some("v1.12.36"), b"[]\n"),
            format!("v1.12.36-files.{}", &Digest::of(b"[]\n").hex()[..12])
        );
    }
}
