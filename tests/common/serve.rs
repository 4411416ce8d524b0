//! `installer serve` as a test server: started on a free loopback port, killed on drop.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::p;
use super::registry::{free_port, TestCa};

/// A running `installer serve`, killed on drop.
pub struct Serve {
    pub child: Child,
    port: u16,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Serve {
    pub fn start(bundle_file: &Path, key: &Path, tls: Option<&TestCa>) -> Serve {
        Serve::start_with(bundle_file, key, tls, &[])
    }

    /// Like [`Serve::start`], with further options for `installer serve`.
    pub fn start_with(
        bundle_file: &Path,
        key: &Path,
        tls: Option<&TestCa>,
        options: &[&str],
    ) -> Serve {
        let port = free_port();
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("serve.log");
        let mut command = Command::new(super::installer_bin());
        command
            .args(["serve", p(bundle_file), "--key", p(key), "--listen"])
            .arg(format!("127.0.0.1:{port}"));
        command.args(options);
        if let Some(ca) = tls {
            command
                .arg("--tls-cert")
                .arg(&ca.server_cert)
                .arg("--tls-key")
                .arg(&ca.server_key);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start installer serve");
        let mut serve = Serve {
            child,
            port,
            log,
            _logdir: logdir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = serve.child.try_wait().unwrap() {
                panic!("installer serve exited with {status}:\n{}", serve.log());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "serve never listened:\n{}",
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        serve
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
