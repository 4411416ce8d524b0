//! Waiting, through `/sync` long-polls, until a user has seen a list of events.

use super::client::MatrixClient;
use super::error::MatrixError;
use std::time::{Duration, Instant};

/// Longest single long-poll.
const POLL: Duration = Duration::from_secs(5);

/// Syncs from `since` until every event of `expected` in `room_id` has arrived, in that order,
/// within `within`; returns the token to sync from next. A transport error or a 5xx answer is
/// retried until the deadline (a homeserver may be failing over).
pub async fn await_messages(
    client: &MatrixClient,
    room_id: &str,
    since: &str,
    expected: &[String],
    within: Duration,
) -> Result<String, MatrixError> {
    let deadline = Instant::now() + within;
    let mut since = since.to_string();
    let mut seen: Vec<String> = Vec::new();
    while seen.len() < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(MatrixError::Check(format!(
                "{} of {} messages arrived within {within:?}; first missing: {}",
                seen.len(),
                expected.len(),
                expected[seen.len()]
            )));
        }
        let batch = match client.sync(Some(&since), left.min(POLL)).await {
            Ok(batch) => batch,
            Err(e) if retryable(&e) => {
                tokio::time::sleep(Duration::from_millis(250).min(left)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        since = batch.next_batch;
        for message in batch.messages.iter().filter(|m| m.room_id == room_id) {
            if expected.contains(&message.event_id) && !seen.contains(&message.event_id) {
                seen.push(message.event_id.clone());
            }
        }
        if expected[..seen.len()] != seen[..] {
            return Err(MatrixError::Check(format!(
                "messages arrived out of order: expected {:?}, got {seen:?}",
                &expected[..seen.len()]
            )));
        }
    }
    Ok(since)
}

/// Whether a failure may pass by itself: no answer, or a gateway/server error.
pub(crate) fn retryable(error: &MatrixError) -> bool {
    match error {
        MatrixError::Transport { .. } => true,
        MatrixError::Http { status, .. } => *status >= 500,
        _ => false,
    }
}
