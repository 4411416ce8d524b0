//! A real OCI registry for integration tests: Debian's `docker-registry` (distribution 2.8)
//! on a loopback port it chose and printed, with filesystem storage in a temporary directory, optional
//! htpasswd authentication (bcrypt) and optional TLS from a test CA made with `openssl`.
//! Killed on drop; `restart()` stops and starts it on the same port with the same storage.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Service;
use crate::require;

/// How to start a [`TestRegistry`].
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Require this username and password (htpasswd, bcrypt).
    pub login: Option<(String, String)>,
    /// Serve HTTPS with a certificate from a fresh test CA.
    pub tls: bool,
}

/// A CA made for one test, and a server certificate it issued for 127.0.0.1 and localhost.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// A directory holding only `ca.crt`, for skopeo's `--cert-dir`.
    pub cert_dir: PathBuf,
    /// The server certificate (PEM).
    pub server_cert: PathBuf,
    /// The server's private key (PEM).
    pub server_key: PathBuf,
}

impl TestCa {
    /// Makes a CA and a server certificate with `openssl` in `dir`.
    pub fn create(dir: &Path) -> TestCa {
        require("openssl", "openssl");
        std::fs::create_dir_all(dir).unwrap();
        let cert_dir = dir.join("certs.d");
        std::fs::create_dir_all(&cert_dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=bundle test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        std::fs::copy(dir.join("ca.crt"), cert_dir.join("ca.crt")).unwrap();
        TestCa {
            ca_cert: dir.join("ca.crt"),
            cert_dir,
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

/// A running `docker-registry`, stopped on drop.
pub struct TestRegistry {
    dir: tempfile::TempDir,
    /// The port it bound (0 until it first started).
    port: u16,
    service: Option<Service>,
    /// The login it requires, if any.
    pub login: Option<(String, String)>,
    /// Its CA, if it serves TLS.
    pub ca: Option<TestCa>,
}

impl TestRegistry {
    /// A plain-HTTP registry without authentication.
    pub fn plain() -> TestRegistry {
        TestRegistry::start(RegistryOptions::default())
    }

    /// Starts a registry on a port of its choosing and waits until `/v2/` answers. Fails the
    /// test with an install hint when `docker-registry` is missing.
    pub fn start(options: RegistryOptions) -> TestRegistry {
        require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let ca = options.tls.then(|| TestCa::create(&dir.path().join("ca")));
        if let Some((user, password)) = &options.login {
            let hash = bcrypt::hash_with_result(password, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        }
        let mut registry = TestRegistry {
            dir,
            port: 0,
            service: None,
            login: options.login,
            ca,
        };
        registry.spawn();
        registry
    }

    /// Its configuration, listening on `port` (0: any).
    fn config(&self, port: u16) -> String {
        let dir = self.dir.path();
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: bundle-test-secret\n",
            root = dir.join("storage").display(),
        );
        if let Some(ca) = &self.ca {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert.display(),
                ca.server_key.display()
            ));
        }
        if self.login.is_some() {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bundle-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        config
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The directory holding its storage, config and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Stops it (its storage is kept).
    pub fn stop(&mut self) {
        self.service = None;
    }

    /// Stops it and starts it again on the same port with the same storage (a port it held
    /// a moment ago: a restart is the one place a port is given back and taken again).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts the process: on any port the first time (the port it printed is read from its
    /// log), on the same port after a restart.
    fn spawn(&mut self) {
        let config = self.dir.path().join("config.yml");
        std::fs::write(&config, self.config(self.port)).unwrap();
        let log = self.dir.path().join("registry.log");
        let mut command = Command::new("docker-registry");
        command.arg("serve").arg(&config);
        let mut service = Service::spawn("docker-registry", command, &log);
        if self.port == 0 {
            self.port = service.printed_port("listening on 127.0.0.1:", Duration::from_secs(20));
        }
        self.service = Some(service);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let addr: SocketAddr = self.host().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(service) = self.service.as_mut() {
                if !service.running() {
                    panic!("docker-registry exited:\n{}", self.log());
                }
            }
            if self.answers(&addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on {addr} within 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `/v2/` answers: an HTTP status line for plain HTTP; an accepted connection
    /// for TLS (Go's server only listens once its certificate is loaded).
    fn answers(&self, addr: &SocketAddr) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
            return false;
        };
        if self.ca.is_some() {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }
}
