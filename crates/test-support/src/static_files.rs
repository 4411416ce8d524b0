//! A static file server for tests: Python's `http.server` serving a directory on a loopback
//! port it chose and printed, stopped when dropped.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::process::Service;

/// A running static file server.
pub struct StaticFiles {
    _service: Service,
    _dir: tempfile::TempDir,
    port: u16,
}

impl StaticFiles {
    /// Serves `dir` over plain HTTP on 127.0.0.1.
    pub fn serve(dir: &Path) -> StaticFiles {
        crate::require("python3", "python3");
        let logs = tempfile::tempdir().unwrap();
        let mut command = Command::new("python3");
        command
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .arg("--directory")
            .arg(dir);
        let mut service = Service::spawn("http.server", command, &logs.path().join("log"));
        let port = service.printed_port("(http://127.0.0.1:", Duration::from_secs(20));
        StaticFiles {
            _service: service,
            _dir: logs,
            port,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
