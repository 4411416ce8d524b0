//! `installer node-config` with a real containerd (Debian's `containerd` + `ctr`): a bundle
//! built from a source registry that is then stopped, loaded by `installer load` under a
//! prefix into a TLS docker-registry; the files node-config writes are given to containerd
//! (its resolver reads `certs.d` the same way for `ctr --hosts-dir` as for the CRI plugin's
//! `config_path`), which then pulls by the upstream name, gets the bundle's digest, and
//! cannot reach anything else. containerd reads the drop-in as a node would import it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::images;
use test_support::process::{running_as_root, Service};
use test_support::registry::{RegistryOptions, TestRegistry};
use test_support::{p, require, Run};

const PREFIX: &str = "mirror/matrix";

/// A containerd of its own: root, state and socket in `dir`, the drop-in imported.
struct Containerd {
    service: Service,
    socket: String,
    config: String,
}

impl Containerd {
    fn start(dir: &Path, drop_in: &Path) -> Containerd {
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {:?}\nstate = {:?}\nimports = [{:?}]\n\
                 [grpc]\n  address = {:?}\n",
                p(&dir.join("root")),
                p(&dir.join("state")),
                p(drop_in),
                p(&socket),
            ),
        )
        .unwrap();
        let mut command = Command::new("containerd");
        command.args(["--config", p(&config)]);
        let service = Service::spawn("containerd", command, &dir.join("containerd.log"));
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "containerd did not open {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Containerd {
            service,
            socket: p(&socket).to_string(),
            config: p(&config).to_string(),
        }
    }

    fn ctr(&mut self, args: &[&str]) -> Run {
        self.service.assert_running();
        let out = Command::new("ctr")
            .args(["--address", &self.socket, "--namespace", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        Run::from(out)
    }
}

#[test]
fn containerd_pulls_by_upstream_name_from_the_loaded_site_registry_only() {
    require("containerd", "containerd");
    require("ctr", "containerd");
    require("docker-registry", "docker-registry");
    require("skopeo", "skopeo");
    assert!(
        running_as_root(),
        "containerd needs root: run this test as root (CI does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The bundle: two images of a source registry, one of them the sandbox (pause) image.
    let mut source = TestRegistry::plain();
    let src = source.host();
    let app = images::single(&d.join("layouts/app"), "v1", 61, 50_000);
    images::push(&app, &source, "team/app");
    let pause = images::single(&d.join("layouts/pause"), "3.10", 62, 10_000);
    images::push(&pause, &source, "pause");
    std::fs::write(
        d.join("images.toml"),
        format!(
            "platforms = [\"linux/amd64\"]\n\n[registries.\"{src}\"]\ninsecure = true\n\n\
             [[images]]\nref = \"{src}/team/app:v1\"\n\n[[images]]\nref = \"{src}/pause:3.10\"\n"
        ),
    )
    .unwrap();
    let (public, secret) = test_support::test_key("node-config");
    let lock = ["--images", "images.toml", "--lock", "manifests.lock"];
    test_support::bundle(&[&["lock"], &lock[..]].concat(), d).ok();
    test_support::bundle(
        &[
            &["build"],
            &lock[..],
            &[
                "--locked",
                "-q",
                "-o",
                "b.tar.zst",
                "--cache",
                "cache",
                "--sign-key",
                p(&secret),
            ],
        ]
        .concat(),
        d,
    )
    .ok();
    source.stop();

    // The site registry, over TLS with a CA of its own, filled by `installer load`.
    let site = TestRegistry::start(RegistryOptions {
        login: None,
        tls: true,
    });
    let ca = site.ca.as_ref().unwrap().ca_cert.clone();
    let trust = ["b.tar.zst", "--key", p(&public)];
    let registry = ["--registry", &site.host(), "--prefix", PREFIX];
    test_support::installer(
        &[
            &["load"],
            &trust[..],
            &registry[..],
            &["--ca-file", p(&ca), "-q"],
        ]
        .concat(),
        d,
    )
    .ok();

    // node-config, with certs.d where this test's containerd reads it.
    let out = d.join("node");
    let certs_dir = out.join("certs.d");
    let run = test_support::installer(
        &[
            &["--json", "node-config"],
            &trust[..],
            &registry[..],
            &[
                "--ca-file",
                p(&ca),
                "--certs-dir",
                p(&certs_dir),
                "--out",
                p(&out),
            ],
        ]
        .concat(),
        d,
    )
    .ok();
    let summary: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(summary["mirrors"], serde_json::json!([src]));
    let pinned_pause = format!("{}/{PREFIX}/pause@{}", site.host(), pause.top_digest());
    assert_eq!(summary["sandbox_image"], pinned_pause.as_str());

    let runtime = tempfile::Builder::new()
        .prefix("ctrd")
        .tempdir_in("/tmp")
        .unwrap();
    let mut containerd = Containerd::start(runtime.path(), &out.join("conf.d/messenger.toml"));

    // containerd reads the drop-in as the node would: sandbox image and certs.d.
    let dump = Run::from(
        Command::new("containerd")
            .args(["--config", &containerd.config, "config", "dump"])
            .output()
            .unwrap(),
    )
    .ok();
    let dumped: toml::Table = dump.stdout.parse().unwrap();
    let cri = &dumped["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(cri["sandbox_image"].as_str(), Some(pinned_pause.as_str()));
    assert_eq!(cri["registry"]["config_path"].as_str(), Some(p(&certs_dir)));

    // By the upstream name (whose registry is gone): served by the site registry, pinned.
    let hosts = ["--hosts-dir", p(&certs_dir), "--snapshotter", "native"];
    let upstream = format!("{src}/team/app:v1");
    containerd
        .ctr(&[&["images", "pull"], &hosts[..], &[&upstream]].concat())
        .ok();
    let listed = containerd.ctr(&["images", "ls"]).ok().stdout;
    let line = listed
        .lines()
        .find(|l| l.starts_with(&upstream))
        .unwrap_or_else(|| panic!("{upstream} not listed:\n{listed}"));
    assert!(
        line.contains(app.top_digest()),
        "{upstream} is not the bundle's {}: {line}",
        app.top_digest()
    );
    // The pinned sandbox image, by the site registry's name.
    containerd
        .ctr(&[&["images", "pull"], &hosts[..], &[&pinned_pause]].concat())
        .ok();

    // An image the bundle does not carry is not found anywhere (the source is never asked).
    let missing = format!("{src}/team/other:v1");
    let refused = containerd
        .ctr(&[&["images", "pull"], &hosts[..], &[&missing]].concat())
        .failed();
    assert!(
        refused.stderr.contains("not found"),
        "unexpected failure for {missing}: {}",
        refused.stderr
    );
    // Without the files the upstream name cannot resolve: its registry is gone, so the pull
    // above was served by the site registry.
    let direct = containerd
        .ctr(&[
            "images",
            "pull",
            "--snapshotter",
            "native",
            "--plain-http",
            &upstream,
        ])
        .failed();
    assert!(
        direct.stderr.contains("connection refused"),
        "{}",
        direct.stderr
    );
}
