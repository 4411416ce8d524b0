//! Sample OCI images built on disk without network, and pushed to a test registry with
//! `skopeo`: gzip layers of pseudo-random files (real tar streams), config JSON, manifests,
//! and a multi-arch index for linux/amd64 and linux/arm64 whose images share a base layer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest as _;

use super::registry::TestRegistry;
use super::require;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// One blob as written into the layout.
#[derive(Debug, Clone)]
pub struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&bytes),
            media_type: media_type.to_string(),
            bytes,
        }
    }

    /// The OCI descriptor of this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// `linux/amd64`.
    pub platform: String,
    /// The image manifest.
    pub manifest: Blob,
    /// Its config.
    pub config: Blob,
    /// Its layers, base first.
    pub layers: Vec<Blob>,
}

/// An OCI image layout holding one tagged image or index.
#[derive(Debug, Clone)]
pub struct SampleImage {
    /// The layout directory.
    pub layout: PathBuf,
    /// The tag in `index.json`.
    pub tag: String,
    /// The index, for a multi-arch image.
    pub index: Option<Blob>,
    /// The per-platform images.
    pub images: Vec<PlatformImage>,
}

impl SampleImage {
    /// The digest the tag points to (index, or the single manifest).
    pub fn top_digest(&self) -> &str {
        match &self.index {
            Some(index) => &index.digest,
            None => &self.images[0].manifest.digest,
        }
    }

    /// Every distinct blob (configs and layers), shared ones once.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut all: Vec<&Blob> = Vec::new();
        for image in &self.images {
            for blob in std::iter::once(&image.config).chain(&image.layers) {
                if !all.iter().any(|b| b.digest == blob.digest) {
                    all.push(blob);
                }
            }
        }
        all
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Deterministic pseudo-random bytes (xorshift) from `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A one-file ustar archive.
fn tar_one(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 1_700_000_000);
    header[148..156].copy_from_slice(b"        ");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A gzip layer holding one pseudo-random file; returns the layer and its diff ID.
fn layer(seed: u64, len: usize) -> (Blob, String) {
    let tar = tar_one(&format!("data/file-{seed}.bin"), &noise(seed, len));
    let diff_id = sha256(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (Blob::new(OCI_LAYER_GZIP, gz.finish().unwrap()), diff_id)
}

fn image(platform: &str, layers: Vec<(Blob, String)>) -> PlatformImage {
    let (os, arch) = platform.split_once('/').unwrap();
    let config = serde_json::json!({
        "created": "2026-01-01T00:00:00Z",
        "architecture": arch,
        "os": os,
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>(),
        },
    });
    let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config).unwrap());
    let layers: Vec<Blob> = layers.into_iter().map(|(b, _)| b).collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    PlatformImage {
        platform: platform.to_string(),
        manifest: Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
        config,
        layers,
    }
}

fn write_layout(dir: &Path, tag: &str, top: &Blob, blobs: &[&Blob]) {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).unwrap();
    for blob in blobs.iter().copied().chain(std::iter::once(top)) {
        let hex = blob.digest.trim_start_matches("sha256:");
        std::fs::write(blob_dir.join(hex), &blob.bytes).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let mut descriptor = top.descriptor();
    descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": tag});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [descriptor]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A linux/amd64 + linux/arm64 image under `dir`: both share a base layer (`seed`), each has
/// its own top layer, config and manifest, and an OCI index lists them.
pub fn multi_arch(dir: &Path, tag: &str, seed: u64) -> SampleImage {
    let base = layer(seed, 300_000);
    let images: Vec<PlatformImage> = ["linux/amd64", "linux/arm64"]
        .iter()
        .enumerate()
        .map(|(i, platform)| {
            let own = layer(seed + 1 + i as u64, 120_000 + 10_000 * i);
            image(platform, vec![base.clone(), own])
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|img| {
            let (os, arch) = img.platform.split_once('/').unwrap();
            let mut d = img.manifest.descriptor();
            d["platform"] = serde_json::json!({"os": os, "architecture": arch});
            d
        }).collect::<Vec<_>>(),
    });
    let index = Blob::new(OCI_INDEX, serde_json::to_vec(&index).unwrap());
    let mut blobs: Vec<&Blob> = Vec::new();
    for img in &images {
        blobs.push(&img.manifest);
        blobs.push(&img.config);
        blobs.extend(&img.layers);
    }
    write_layout(dir, tag, &index, &blobs);
    SampleImage {
        layout: dir.to_path_buf(),
        tag: tag.to_string(),
        index: Some(index.clone()),
        images,
    }
}

/// A layer size spanning two 2 MiB frames of a bundle and above the 1 MiB a push holds in
/// memory: such a blob is streamed, by `load` and by `serve`.
pub const BIG_LAYER: usize = 3_000_000;

/// A single-platform (linux/amd64) image of one layer of about `layer_len` bytes under `dir`.
pub fn single(dir: &Path, tag: &str, seed: u64, layer_len: usize) -> SampleImage {
    layered(dir, tag, &[(seed, layer_len)])
}

/// A single-platform (linux/amd64) image under `dir` whose layers, bottom first, are made from
/// `(seed, length)` pairs: the same pair gives the same layer, so two images share layers
/// (an image and its rebuild with a new top layer).
pub fn layered(dir: &Path, tag: &str, layers: &[(u64, usize)]) -> SampleImage {
    let img = image(
        "linux/amd64",
        layers
            .iter()
            .map(|(seed, len)| layer(*seed, *len))
            .collect(),
    );
    let mut blobs: Vec<&Blob> = vec![&img.config];
    blobs.extend(&img.layers);
    write_layout(dir, tag, &img.manifest, &blobs);
    SampleImage {
        layout: dir.to_path_buf(),
        tag: tag.to_string(),
        index: None,
        images: vec![img],
    }
}

/// TLS and login flags for skopeo talking to `registry` (`dest` for copy targets).
fn skopeo_access(registry: &TestRegistry, dest: bool) -> Vec<String> {
    let prefix = if dest { "--dest-" } else { "--" };
    let mut args = Vec::new();
    match &registry.ca {
        Some(ca) => args.push(format!("{prefix}cert-dir={}", ca.cert_dir.display())),
        None => args.push(format!("{prefix}tls-verify=false")),
    }
    match &registry.login {
        Some((user, password)) => args.push(format!("{prefix}creds={user}:{password}")),
        None => args.push(format!("{prefix}no-creds")),
    }
    args
}

/// Runs skopeo, failing the test with its output if it fails; returns standard output.
fn skopeo(args: &[String]) -> Vec<u8> {
    require("skopeo", "skopeo");
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Pushes `image` to `registry` as `repository:tag` with `skopeo copy --all`, keeping digests.
pub fn push(image: &SampleImage, registry: &TestRegistry, repository: &str) {
    let mut args = vec![
        "copy".to_string(),
        "--all".to_string(),
        "--preserve-digests".to_string(),
        "--quiet".to_string(),
    ];
    args.extend(skopeo_access(registry, true));
    args.push(format!("oci:{}:{}", image.layout.display(), image.tag));
    args.push(format!(
        "docker://{}/{repository}:{}",
        registry.host(),
        image.tag
    ));
    skopeo(&args);
}

/// What `skopeo inspect --raw` prints for `repository:tag` (or `repository@digest`): the
/// manifest bytes exactly as the registry serves them.
pub fn inspect_raw(registry: &TestRegistry, name: &str) -> Vec<u8> {
    let mut args = vec!["inspect".to_string(), "--raw".to_string()];
    args.extend(skopeo_access(registry, false));
    args.push(format!("docker://{}/{name}", registry.host()));
    skopeo(&args)
}
