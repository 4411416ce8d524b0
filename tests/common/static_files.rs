//! A static file server for tests: Python's `http.server` serving a directory on a free
//! loopback port, stopped when dropped.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running static file server.
pub struct StaticFiles {
    child: Child,
    port: u16,
}

impl StaticFiles {
    /// Serves `dir` over plain HTTP on 127.0.0.1.
    pub fn serve(dir: &Path) -> StaticFiles {
        super::require("python3", "python3");
        let port = super::registry::free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the static file server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        StaticFiles { child, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
