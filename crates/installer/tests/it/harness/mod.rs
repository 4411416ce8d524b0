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
