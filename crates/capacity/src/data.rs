//! Valkey's and PostgreSQL's memory within their limits, as the chart checks them
//! (`templates/_validate.tpl`; docs/capacity.md#valkey, #postgresql).
//!
//! Valkey: `maxmemory` bounds the dataset only; the limit also holds allocator fragmentation
//! (20%), the primary's output buffers to its replicas (10%, as the chart's
//! `client-output-buffer-limit replica` sets them) and the process with its clients and the
//! replication backlog ([`VALKEY_BASE_MIB`]). PostgreSQL: every connection sorting or hashing
//! at once (`max_connections × work_mem`) within a quarter of the limit, `shared_buffers`
//! taking another quarter.

use super::quantity::parse_memory;
use super::report::{Check, Term, Unit};
use super::values::{Resources, Values};
use super::CapacityError;

/// Valkey's memory beyond `maxmemory`, percent of it: fragmentation 20, replica buffers 10.
pub const VALKEY_OVERHEAD_PERCENT: u64 = 30;
/// The Valkey process without its dataset, MiB.
pub const VALKEY_BASE_MIB: u64 = 64;
/// The share of PostgreSQL's memory limit `max_connections × work_mem` may take, percent.
pub const POSTGRES_WORK_MEM_PERCENT: u64 = 25;

const KI: u64 = 1024;
const MI: u64 = KI * KI;

fn limit(resources: &Resources, field: &str, profile: &str) -> Result<u64, CapacityError> {
    let text = resources
        .limits
        .as_ref()
        .and_then(|l| l.memory.as_ref())
        .map(|m| m.0.clone())
        .unwrap_or_default();
    parse_memory(&text).ok_or_else(|| CapacityError::Quantity {
        profile: profile.to_string(),
        field: field.to_string(),
        value: text,
        kind: "memory",
    })
}

/// `valkey.maxmemory` (`200mb`, `4gb`: Valkey's mb and gb are MiB and GiB) in bytes.
fn valkey_bytes(text: &str, profile: &str) -> Result<u64, CapacityError> {
    let parsed = if let Some(n) = text.strip_suffix("gb") {
        n.parse::<u64>().ok().map(|n| n * KI * MI)
    } else {
        text.strip_suffix("mb")
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| n * MI)
    };
    parsed.ok_or_else(|| CapacityError::Quantity {
        profile: profile.to_string(),
        field: "valkey.maxmemory".into(),
        value: text.to_string(),
        kind: "memory",
    })
}

/// PostgreSQL's `work_mem` (`kB`, `MB`, `GB`: KiB, MiB, GiB) in bytes.
fn postgres_bytes(text: &str, profile: &str) -> Result<u64, CapacityError> {
    let unit = |suffix: &str, scale: u64| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<u64>().ok())
            .map(|n| n * scale)
    };
    unit("GB", KI * MI)
        .or_else(|| unit("MB", MI))
        .or_else(|| unit("kB", KI))
        .ok_or_else(|| CapacityError::Quantity {
            profile: profile.to_string(),
            field: "postgres.workMem".into(),
            value: text.to_string(),
            kind: "memory",
        })
}

/// `valkey memory`: one instance's limit against `maxmemory` plus
/// [`VALKEY_OVERHEAD_PERCENT`] and [`VALKEY_BASE_MIB`].
pub(crate) fn valkey(values: &Values, profile: &str) -> Result<Check, CapacityError> {
    let field = "valkey.resources.limits.memory";
    let limit = limit(&values.valkey.resources, field, profile)?;
    let max = valkey_bytes(&values.valkey.maxmemory, profile)?;
    let terms = vec![
        Term {
            label: "valkey data (valkey.maxmemory)".into(),
            count: 1,
            what: "",
            each: max,
        },
        Term {
            label: format!(
                "fragmentation and replica buffers ({VALKEY_OVERHEAD_PERCENT}% of maxmemory)"
            ),
            count: 1,
            what: "",
            each: (max * VALKEY_OVERHEAD_PERCENT).div_ceil(100),
        },
        Term {
            label: "valkey process".into(),
            count: 1,
            what: "",
            each: VALKEY_BASE_MIB * MI,
        },
    ];
    let notes = vec![
        "no AOF or RDB persistence: no fork copying pages (Synapse keeps nothing durable)".into(),
    ];
    Ok(Check::new(
        "valkey memory",
        Unit::Memory,
        terms,
        notes,
        format!("one instance's {field}"),
        limit,
    ))
}

/// `postgres work_mem`: `max_connections × work_mem` against
/// [`POSTGRES_WORK_MEM_PERCENT`] of an instance's memory limit.
pub(crate) fn postgres(values: &Values, profile: &str) -> Result<Check, CapacityError> {
    let field = "postgres.resources.limits.memory";
    let limit = limit(&values.postgres.resources, field, profile)?;
    let work = postgres_bytes(&values.postgres.work_mem, profile)?;
    let terms = vec![Term {
        label: "connections sorting at once (postgres.maxConnections)".into(),
        count: values.postgres.max_connections,
        what: "",
        each: work,
    }];
    let notes = vec![format!(
        "shared_buffers takes another {POSTGRES_WORK_MEM_PERCENT}% of the limit; the rest is \
         each backend's own memory, maintenance_work_mem and the page cache"
    )];
    Ok(Check::new(
        "postgres work_mem",
        Unit::Memory,
        terms,
        notes,
        format!("{POSTGRES_WORK_MEM_PERCENT}% of one instance's {field}"),
        limit * POSTGRES_WORK_MEM_PERCENT / 100,
    ))
}
