//! HAProxy's memory: each pod's limit against what `haproxy.maxconn` connections may hold.
//!
//! HAProxy allocates its buffers per connection as data arrives, so what a pod needs at the
//! worst is the process itself plus `maxconn` connections with full buffers. HAProxy's
//! configuration manual (`maxconn`, proxy section) puts an established connection at two
//! buffers of `tune.bufsize` (16 KiB, which the chart sets explicitly) plus about 1 kB, 33 kB
//! in all; a response stalled on a client that does not read also fills the multiplexer's
//! buffer on the client side, a third one (measured: 4.8 kB per connection waiting on a
//! long-poll, 51 kB per connection whose response is stalled, HAProxy 2.6). The check counts
//! the third buffer. The chart applies the same rule (`templates/_validate.tpl`).

use super::quantity::parse_memory;
use super::report::{Check, Term, Unit};
use super::values::Values;
use super::CapacityError;

/// HAProxy's buffer size, KiB: `tune.bufsize 16384`, as the chart's haproxy.cfg sets it.
pub const HAPROXY_BUFFER_KIB: u64 = 16;
/// Buffers one connection may hold at the worst: request and response, and the client-side
/// multiplexer's while a response is stalled.
pub const HAPROXY_BUFFERS_PER_CONNECTION: u64 = 3;
/// Per-connection state besides the buffers, KiB (the manual's "some other data").
pub const HAPROXY_CONNECTION_STATE_KIB: u64 = 1;
/// Memory one connection may hold, KiB: 3 × 16 + 1 = 49.
pub const HAPROXY_CONNECTION_KIB: u64 =
    HAPROXY_BUFFERS_PER_CONNECTION * HAPROXY_BUFFER_KIB + HAPROXY_CONNECTION_STATE_KIB;
/// The process without connections, MiB: master and worker, the configuration, resolvers,
/// per-thread pools and the Prometheus exporter (about 20 MiB idle, measured).
pub const HAPROXY_BASE_MIB: u64 = 64;
/// Connections one HAProxy thread is planned for (`haproxy.nbthread` ≥ maxconn / this).
pub const HAPROXY_CONNECTIONS_PER_THREAD: u64 = 10_000;

const KI: u64 = 1024;

/// `haproxy memory`: one pod's limit (`haproxy.resources.limits.memory`) against the process
/// and `haproxy.maxconn` connections at [`HAPROXY_CONNECTION_KIB`] each.
pub(crate) fn check(values: &Values, profile: &str) -> Result<Check, CapacityError> {
    let field = "haproxy.resources.limits.memory";
    let text = values
        .haproxy
        .resources
        .limits
        .as_ref()
        .and_then(|l| l.memory.as_ref())
        .map(|m| m.0.clone())
        .unwrap_or_default();
    let limit = parse_memory(&text).ok_or_else(|| CapacityError::Quantity {
        profile: profile.to_string(),
        field: field.to_string(),
        value: text.clone(),
        kind: "memory",
    })?;
    let terms = vec![
        Term {
            label: "haproxy connections (haproxy.maxconn)".into(),
            count: values.haproxy.maxconn,
            what: "",
            each: HAPROXY_CONNECTION_KIB * KI,
        },
        Term {
            label: "haproxy process".into(),
            count: 1,
            what: "",
            each: HAPROXY_BASE_MIB * KI * KI,
        },
    ];
    let notes = vec![format!(
        "per connection: {HAPROXY_BUFFERS_PER_CONNECTION} buffers of tune.bufsize \
         {HAPROXY_BUFFER_KIB}Ki (request, response, and the client side's while a response is \
         stalled) + {HAPROXY_CONNECTION_STATE_KIB}Ki of state; HAProxy's manual counts two \
         buffers and about 33 kB"
    )];
    Ok(Check::new(
        "haproxy memory",
        Unit::Memory,
        terms,
        notes,
        format!("one pod's {field}"),
        limit,
    ))
}
