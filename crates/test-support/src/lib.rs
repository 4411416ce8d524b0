//! What the integration tests of every crate share: the workspace's binaries ([`bin`]), real
//! servers on loopback (docker-registry, `installer serve`, static files, fault-injecting
//! proxies), sample images, test keys, ports without races ([`ports`]), child processes
//! stopped on drop ([`process`]), and [`require`], which fails a test naming how to install
//! a missing tool.

pub mod fault_proxy;
pub mod images;
pub mod net;
pub mod ports;
pub mod process;
pub mod push_proxy;
pub mod registry;
pub mod serve;
pub mod static_files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Passphrase of the test keys.
pub const PASSPHRASE: &str = "correct horse battery staple";

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics with the full output unless the command succeeded.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panics unless the command failed; returns it for assertions on the message.
    pub fn failed(self) -> Run {
        assert_ne!(
            self.code, 0,
            "command succeeded:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `program` (on PATH) with `args` in `cwd`, the test passphrase in the environment.
pub fn run(program: &str, args: &[&str], cwd: &Path) -> Run {
    run_path(Path::new(program), args, cwd)
}

/// Runs the program at `program` with `args` in `cwd`, the test passphrase in the environment.
pub fn run_path(program: &Path, args: &[&str], cwd: &Path) -> Run {
    let output = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("BUNDLE_KEY_PASSPHRASE", PASSPHRASE)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Run::from(output)
}

/// The workspace binary `name` (`bundle` or `installer`), never older than the workspace's
/// sources: `cargo test --workspace` has built it already (the usual case, used as it is);
/// when it is missing or older than a source file (`cargo test -p` of another crate after an
/// edit), it is built first. The tests of every crate run the real binaries, whichever package
/// defines them.
pub fn bin(name: &str) -> PathBuf {
    static CHECKED: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    let checked = checked.get_or_insert_with(HashMap::new);
    if let Some(path) = checked.get(name) {
        return path.clone();
    }
    // target/<profile>/deps/<test binary>: the binaries live in target/<profile>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lies in target/<profile>/deps");
    let path = profile_dir.join(name);
    let built_at = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    if built_at.is_none_or(|at| at < newest_source()) {
        build(name, profile_dir);
    }
    assert!(path.is_file(), "no {name} binary at {}", path.display());
    checked.insert(name.to_string(), path.clone());
    path
}

/// Builds binary `name` into `profile_dir` with cargo.
fn build(name: &str, profile_dir: &Path) {
    let package = match name {
        "installer" => "installer-cli",
        other => other,
    };
    let target_dir = profile_dir.parent().expect("target/<profile>");
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(Into::into))
        .unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "-q", "--bin", name, "-p", package])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(workspace_root());
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "cargo build --bin {name} failed");
}

/// When a source of the binaries last changed: the newest `.rs` file below the workspace's
/// `src/`, `installer/src/` and `crates/*/src/`, or manifest.
fn newest_source() -> std::time::SystemTime {
    fn modified(path: &Path) -> std::time::SystemTime {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH)
    }
    fn walk(dir: &Path, newest: &mut std::time::SystemTime) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, newest);
            } else if path.extension().is_some_and(|e| e == "rs") {
                *newest = (*newest).max(modified(&path));
            }
        }
    }
    let root = workspace_root();
    let mut packages = vec![root.clone(), root.join("installer")];
    packages.extend(
        std::fs::read_dir(root.join("crates"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    let mut newest = modified(&root.join("Cargo.lock"));
    for package in packages {
        newest = newest.max(modified(&package.join("Cargo.toml")));
        walk(&package.join("src"), &mut newest);
    }
    newest
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

/// Runs the `bundle` binary.
pub fn bundle(args: &[&str], cwd: &Path) -> Run {
    run_path(&bin("bundle"), args, cwd)
}

/// Runs the `installer` binary.
pub fn installer(args: &[&str], cwd: &Path) -> Run {
    run_path(&bin("installer"), args, cwd)
}

/// Runs a shell command line.
pub fn sh(script: &str, cwd: &Path) -> Run {
    run("sh", &["-c", script], cwd)
}

/// Fails the test with an install hint when a tool CI installs is missing: `tool` is a name
/// on PATH or a path; `source` is a Debian package, or a script of this repository (a path
/// with a `/`).
pub fn require(tool: &str, source: &str) {
    let found = if tool.contains('/') {
        Path::new(tool).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
            .unwrap_or(false)
    };
    let how = if source.contains('/') {
        format!("run `{source}`")
    } else {
        format!("install it with `apt-get install -y {source}`")
    };
    assert!(
        found,
        "`{tool}` is not on PATH: {how} (scripts/setup.sh does)"
    );
}

/// Fails the test with an install hint when a Python module is missing.
pub fn require_python(module: &str, hint: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python module `{module}` is missing: {hint} (scripts/setup.sh does)"
    );
}

/// Writes a staged directory with an OCI layout, a compressible text file, an incompressible
/// blob and nested docs.
pub fn stage(dir: &Path) {
    let write = |rel: &str, data: &[u8]| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    write("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    write("index.json", br#"{"schemaVersion":2,"manifests":[]}"#);
    let mut noise = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    write("blobs/sha256/1111", &noise);
    write(
        "charts/messenger-1.0.0.tgz",
        "apiVersion: v2\nname: messenger\n"
            .repeat(20_000)
            .as_bytes(),
    );
    write("docs/quickstart.md", b"# Quickstart\n");
    write(
        &format!("docs/{}/deep.txt", "long-directory-name".repeat(6)),
        b"a path longer than 100 bytes",
    );
}

/// A key pair made by `bundle keygen` once per test process: (public key, secret key). The
/// secret key is encrypted with 16 MiB of scrypt memory (`--kdf-memory 16`), so that each
/// signature costs milliseconds rather than seconds.
pub fn test_key(name: &str) -> (PathBuf, PathBuf) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap()).path();
    let _guard = LOCK.lock().unwrap();
    let public = dir.join(format!("{name}.pub"));
    let secret = dir.join(format!("{name}.key"));
    if !public.exists() {
        bundle(&["keygen", "-o", name, "--kdf-memory", "16"], dir).ok();
    }
    (public, secret)
}

/// The 16-digit key id of a minisign public key file (the tool writes it unpadded).
pub fn key_id(public: &Path) -> String {
    let text = std::fs::read_to_string(public).unwrap();
    let id = text.lines().next().unwrap().rsplit(' ').next().unwrap();
    format!("{id:0>16}")
}

/// Where `member`'s frames start in the bundle file, from `bundle inspect --json`.
pub fn file_offset_of(dir: &Path, bundle_file: &str, member: &str) -> u64 {
    let run = bundle(&["--json", "inspect", bundle_file], dir).ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .take_while(|m| m["path"] != member)
        .map(|m| m["compressed"].as_u64().unwrap())
        .sum()
}

/// Packs `dir/stage` into `dir/out` signed with `key` (extra arguments appended); panics with
/// the output unless it succeeds.
pub fn pack_signed(dir: &Path, out: &str, key: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["pack", "stage", "-o", out, "--sign-key", p(key)];
    args.extend(extra);
    bundle(&args, dir).ok()
}

/// A docker `config.json` in `dir` (created if missing) holding the login `user`/`password`
/// for `host`, as `docker login` writes it: point `DOCKER_CONFIG` at `dir`.
pub fn docker_login(dir: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    std::fs::create_dir_all(dir).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    dir.to_path_buf()
}

/// Flips one byte of a file at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// `s` as a path string.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The shared ClamAV test databases (`test-1.cvd`, `test-2.cvd`, `bytecode.cvd`, `.sign`
/// files and the test root `clamav-test.crt`) beside the repository.
pub fn clamav_testdata() -> PathBuf {
    let root = workspace_root();
    let candidates = [
        root.join("../shared/testdata/clamav"),
        root.join("../../shared/testdata/clamav"),
        PathBuf::from("/work/shared/testdata/clamav"),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("test-1.cvd").exists())
        .expect("shared/testdata/clamav must lie beside the repository (as in CI)")
}
