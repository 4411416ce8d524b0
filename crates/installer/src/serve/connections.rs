//! Every open connection, so that none can hold the server for good: a connection that sends
//! nothing, or stops in the middle of its request head, is closed after the header timeout; a
//! keep-alive connection with no request after the idle timeout; and when the table is full
//! (or the process runs out of file descriptors), the connection idle the longest is shed to
//! make room for a new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long a connection may be quiet.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the connection's start, or the previous response, to a complete request head.
    pub header: Duration,
    /// Between a response and the next request of a keep-alive connection.
    pub idle: Duration,
}

/// One connection's state, shared by its task, its requests and the table.
pub struct Connection {
    id: u64,
    base: Instant,
    /// Requests being answered (their bodies not yet sent in full).
    in_flight: AtomicUsize,
    /// Milliseconds after `base` of the last response sent in full; 0 before the first.
    last_response: AtomicU64,
    /// Milliseconds after `base` of the last byte read.
    last_read: AtomicU64,
    /// Woken when the table sheds this connection.
    shed: Notify,
}

impl Connection {
    fn millis(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request arrived; the guard ends it when dropped (once its body was sent).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Bytes were read from the client.
    pub fn read(&self) {
        self.last_read.store(self.millis(), Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Completes when the connection has been quiet too long: no request in flight, and no
    /// complete request head for `timeouts.header` (since it opened, since the previous
    /// response, or since it began sending a head), or nothing at all for `timeouts.idle`
    /// after a response.
    pub async fn expired(&self, timeouts: Timeouts) {
        let period = (timeouts.header.min(timeouts.idle) / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            if !self.idle() {
                continue;
            }
            let now = self.millis();
            let response = self.last_response.load(Ordering::Relaxed);
            let read = self.last_read.load(Ordering::Relaxed);
            let quiet = Duration::from_millis(now.saturating_sub(response));
            let limit = if response > 0 && read <= response {
                timeouts.idle
            } else {
                timeouts.header
            };
            if quiet >= limit {
                return;
            }
        }
    }

    /// Completes when the table sheds this connection.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

/// A request being answered; dropping it (when its response body is done) ends it.
pub struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .last_response
            .store(connection.millis().max(1), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The open connections, at most `capacity`.
pub struct Table {
    capacity: usize,
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
}

/// A connection's place in the table; dropping it removes the connection.
pub struct Entry {
    table: Arc<Table>,
    connection: Arc<Connection>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            open.remove(&self.connection.id);
        }
    }
}

impl Entry {
    /// The connection.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl Table {
    /// A table of at most `capacity` connections.
    pub fn new(capacity: usize) -> Table {
        Table {
            capacity: capacity.max(1),
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        }
    }

    /// How many connections the table holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a new connection, shedding the longest-idle one when the table is full; `None`
    /// when it is full of connections that are all answering requests (the new one is then
    /// refused).
    pub fn admit(self: &Arc<Self>) -> Option<Entry> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= self.capacity && !shed_oldest_idle(&mut open) {
            return None;
        }
        let connection = Arc::new(Connection {
            id: self.next.fetch_add(1, Ordering::Relaxed),
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_response: AtomicU64::new(0),
            last_read: AtomicU64::new(0),
            shed: Notify::new(),
        });
        open.insert(connection.id, Arc::clone(&connection));
        Some(Entry {
            table: Arc::clone(self),
            connection,
        })
    }

    /// Sheds the longest-idle connection, to free a file descriptor; whether there was one.
    pub fn shed_one(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        shed_oldest_idle(&mut open)
    }
}

/// Sheds (and forgets) the oldest connection with no request in flight.
fn shed_oldest_idle(open: &mut BTreeMap<u64, Arc<Connection>>) -> bool {
    let Some(id) = open.values().find(|c| c.idle()).map(|c| c.id) else {
        return false;
    };
    if let Some(connection) = open.remove(&id) {
        connection.shed.notify_one();
    }
    true
}

/// How many connections a process allowed `limit` open files can hold: the rest is kept for
/// the bundle file's volumes, the listener, the runtime and the standard streams.
pub fn capacity_for_open_files(limit: u64) -> usize {
    const RESERVED: u64 = 32;
    usize::try_from(limit.saturating_sub(RESERVED).max(1)).unwrap_or(usize::MAX)
}

/// The process's soft limit on open files, from `/proc/self/limits` (Linux); `None` elsewhere
/// or when unlimited.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_sheds_the_oldest_idle_connection_and_refuses_when_all_are_busy() {
        let table = Arc::new(Table::new(2));
        let first = table.admit().unwrap();
        let second = table.admit().unwrap();
        let busy = second.connection().request();
        let third = table.admit().expect("the idle first one is shed");
        assert_eq!(table.open.lock().unwrap().len(), 2);
        assert!(!table
            .open
            .lock()
            .unwrap()
            .contains_key(&first.connection().id));
        let _busy_too = third.connection().request();
        assert!(
            table.admit().is_none(),
            "every connection is answering a request"
        );
        drop(busy);
        assert!(table.shed_one(), "the second is idle again");
        assert!(!table.shed_one(), "the third is still busy");
    }

    #[tokio::test]
    async fn quiet_connections_expire_and_busy_ones_do_not() {
        let timeouts = Timeouts {
            header: Duration::from_millis(200),
            idle: Duration::from_millis(400),
        };
        let table = Arc::new(Table::new(4));
        let silent = table.admit().unwrap();
        tokio::time::timeout(
            Duration::from_secs(5),
            silent.connection().expired(timeouts),
        )
        .await
        .expect("a silent connection expires");
        let busy = table.admit().unwrap();
        let _request = busy.connection().request();
        let waited = tokio::time::timeout(
            Duration::from_millis(800),
            busy.connection().expired(timeouts),
        )
        .await;
        assert!(
            waited.is_err(),
            "a connection answering a request does not expire"
        );
    }

    #[test]
    fn capacity_keeps_room_for_the_process_own_files() {
        assert_eq!(capacity_for_open_files(200), 168);
        assert_eq!(capacity_for_open_files(10), 1);
    }
}
