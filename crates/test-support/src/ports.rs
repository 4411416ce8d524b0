//! Loopback ports for servers the tests start, without the race of a port found free and
//! released for a child to bind later:
//!
//! - a server that can bind port 0 and say which port it got (docker-registry, `installer
//!   serve`, Python's `http.server`, servers inside the test process) does so, and the test
//!   reads the port it printed ([`port_in_log`]);
//! - a server that must be told its port (PostgreSQL, Redis, Sentinel, HAProxy, Synapse) gets
//!   a [`Reserved`] one: from a range the kernel never hands out for port 0 (below
//!   `ip_local_port_range`), held under an exclusive lock file for as long as the test keeps
//!   it, so no other test of any test process on the machine is given the same port.

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Ports handed out as [`Reserved`]: below Linux's default ephemeral range (32768-60999), so
/// no `bind(0)` or outgoing connection is ever given one.
const RESERVED: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port reserved for this test until dropped.
#[derive(Debug)]
pub struct Reserved {
    port: u16,
    _lock: File,
}

impl Reserved {
    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// Reserves a loopback port in the reserved range that no other test holds and nothing listens on.
pub fn reserve() -> Reserved {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let dir = std::env::temp_dir().join("messenger-test-ports");
    std::fs::create_dir_all(&dir).expect("create the port lock directory");
    let span = RESERVED.end - RESERVED.start;
    // Start at a place that differs between test processes, then walk the range.
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed) % span;
        let port = RESERVED.start + (offset + step) % span;
        let Some(lock) = lock(&dir.join(format!("{port}.lock"))) else {
            continue;
        };
        // Something outside the tests may listen there: skip it.
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Reserved { port, _lock: lock };
        }
    }
    panic!("no free port left in {RESERVED:?}");
}

/// A reserved port kept until the test process ends, for servers whose ports are spread
/// through configuration (the stack harness's overlays) rather than held by one owner.
pub fn reserved_port() -> u16 {
    static KEPT: std::sync::Mutex<Vec<Reserved>> = std::sync::Mutex::new(Vec::new());
    let reserved = reserve();
    let port = reserved.port();
    KEPT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(reserved);
    port
}

/// An exclusive lock on `path`, or `None` when another process holds it.
fn lock(path: &Path) -> Option<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Waits (up to `timeout`) for `log` to contain `prefix` followed by a port number, as a
/// server that bound port 0 prints it (`listening on 127.0.0.1:`), and returns the port.
/// `alive` is asked between looks; it returns the process's exit when it has died.
pub fn port_in_log(
    log: &Path,
    prefix: &str,
    timeout: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> u16 {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(port) = text.split(prefix).nth(1).and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        }) {
            return port;
        }
        if let Err(exit) = alive() {
            panic!("exited ({exit}) before printing its port:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "no {prefix:?}PORT in {} after {timeout:?}:\n{text}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
