//! Starts the stack's real processes on loopback for tests: PostgreSQL, Redis with Sentinel,
//! HAProxy and Synapse (main and workers), each on reserved ports with its output in a log
//! file, each stopped when its handle is dropped.

pub mod antivirus;
pub mod chart;
pub mod haproxy;
pub mod overlay;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod stack;
pub mod synapse;
pub mod tls;

/// Percent-encodes everything but RFC 3986's unreserved characters: a query parameter or one
/// path segment (a Matrix room or event ID).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
