//! Starts the stack's real processes on loopback for tests: PostgreSQL, Redis with Sentinel,
//! HAProxy and Synapse (main and workers), each on free ports with its output in a log file,
//! each stopped when its handle is dropped.

#![allow(dead_code)]

pub mod chart;
pub mod haproxy;
pub mod net;
pub mod overlay;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod stack;
pub mod synapse;
pub mod tls;

use std::path::Path;

/// Fails the test with an install hint when a tool is missing (a name on PATH, or a path).
pub fn require(tool: &str, hint: &str) {
    let found = if tool.contains('/') {
        Path::new(tool).is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
            .unwrap_or(false)
    };
    assert!(found, "`{tool}` is missing: {hint} (scripts/setup.sh does)");
}

/// Fails the test with an install hint when a Python module is missing.
pub fn require_python(module: &str, hint: &str) {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python module `{module}` is missing: {hint} (scripts/setup.sh does)"
    );
}
