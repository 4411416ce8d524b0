//! A child process in its own process group, its output in a log file, stopped on drop.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server.
pub struct Service {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    /// Signal that asks for a clean stop (e.g. `INT` for PostgreSQL's fast shutdown).
    stop_signal: &'static str,
}

impl Service {
    /// Starts `command` as `name`, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Service {
        let out = File::options().create(true).append(true).open(log).unwrap();
        let err = out.try_clone().unwrap();
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Service {
            name: name.to_string(),
            log: log.to_path_buf(),
            child,
            stop_signal: "TERM",
        }
    }

    /// Uses `signal` instead of `TERM` to ask for a clean stop.
    pub fn with_stop_signal(mut self, signal: &'static str) -> Service {
        self.stop_signal = signal;
        self
    }

    /// Everything the process logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log's tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); log {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log_text(), 40)
            );
        }
    }

    /// The port the process printed after `prefix` in its log (it bound port 0), waiting up to
    /// `timeout`; panics with the log when it died first.
    pub fn printed_port(&mut self, prefix: &str, timeout: Duration) -> u16 {
        let child = &mut self.child;
        crate::ports::port_in_log(&self.log, prefix, timeout, || match child.try_wait() {
            Ok(Some(status)) => Err(status.to_string()),
            _ => Ok(()),
        })
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the process (not its group) and waits up to `timeout` for it to exit;
    /// panics with its log when it does not.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} ignored SIG{signal} for {timeout:?}:\n{}",
                self.name,
                tail(&self.log_text(), 40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the whole process group at once, as a crash would.
    pub fn kill(&mut self) {
        signal_group(self.child.id(), "KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        signal_group(self.child.id(), self.stop_signal);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // Children the leader left behind go with the group.
                signal_group(self.child.id(), "KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

/// Sends `signal` to the process group led by `pid`.
fn signal_group(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether the test runs as root (servers like PostgreSQL then run as another user).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}
