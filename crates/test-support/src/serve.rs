//! `installer serve` as a test server: started on a port it chose and printed, stopped on
//! drop.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::p;
use crate::process::Service;
use crate::registry::TestCa;

/// A running `installer serve`, stopped on drop.
pub struct Serve {
    service: Service,
    port: u16,
    _logdir: tempfile::TempDir,
}

impl Serve {
    /// Serves `bundle_file`, trusting `key`, over TLS with `tls`'s server certificate if given.
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
        Serve::start_limited(bundle_file, key, tls, options, None)
    }

    /// Like [`Serve::start_with`], the process allowed at most `open_files` file descriptors
    /// (`ulimit -n`) when given.
    pub fn start_limited(
        bundle_file: &Path,
        key: &Path,
        tls: Option<&TestCa>,
        options: &[&str],
        open_files: Option<u32>,
    ) -> Serve {
        let logdir = tempfile::tempdir().unwrap();
        let installer = crate::bin("installer");
        let mut command = match open_files {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(&installer);
                shell
            }
            None => Command::new(&installer),
        };
        command
            .args(["serve", p(bundle_file), "--key", p(key)])
            .args(["--listen", "127.0.0.1:0"])
            .args(options);
        if let Some(ca) = tls {
            command
                .arg("--tls-cert")
                .arg(&ca.server_cert)
                .arg("--tls-key")
                .arg(&ca.server_key);
        }
        let mut service = Service::spawn("installer serve", command, &logdir.path().join("log"));
        let port = service.printed_port("://127.0.0.1:", Duration::from_secs(30));
        Serve {
            service,
            port,
            _logdir: logdir,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.service.log_text()
    }

    /// The process.
    pub fn service(&mut self) -> &mut Service {
        &mut self.service
    }
}
