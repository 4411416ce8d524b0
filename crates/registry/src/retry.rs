//! When to retry a request and how long to wait: exponential backoff with jitter, `Retry-After`
//! (seconds or an HTTP date) honoured up to the configured maximum, and which failures are
//! worth another attempt at all.

use std::time::{Duration, SystemTime};

use rand_core::{OsRng, RngCore};
use reqwest::StatusCode;

/// A retry the client is about to make: what failed, why, and how long it waits first.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Retry {
    /// The registry (or mirror) asked.
    pub registry: String,
    /// What was asked for (`manifest ...`, `blob ...`, `upload of blob ...`).
    pub what: String,
    /// Attempts that failed so far.
    pub failed: u32,
    /// Attempts the budget allows.
    pub max_attempts: u32,
    /// Why the last attempt failed.
    pub reason: String,
    /// Milliseconds the client waits before the next attempt.
    pub wait_ms: u64,
}

/// Receives every retry a client makes, as it is about to wait: how a front end reports a
/// struggling registry instead of going quiet.
pub trait RetryObserver: Send + Sync + std::fmt::Debug {
    /// The client waits `retry.wait_ms`, then tries again.
    fn retrying(&self, retry: &Retry);
}

/// The retry budget and delays of one client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Attempts per request, at least 1.
    pub max_attempts: u32,
    /// Attempts per request while the registry refuses connections, at least 1.
    pub max_connect_attempts: u32,
    /// Delay before the second attempt, before jitter.
    pub base: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
}

impl RetryPolicy {
    /// The delay after `failed` failed attempts (1 for the first failure): the server's
    /// `Retry-After` if it gave one, else `base * 2^(failed-1)` with equal jitter (between half
    /// and all of it); capped by `max` either way.
    pub fn delay(&self, failed: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max);
        }
        let exponent = failed.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1u32 << exponent).min(self.max);
        let half = full / 2;
        let spread = (full - half).as_millis() as u64;
        let jitter = if spread == 0 {
            0
        } else {
            OsRng.next_u64() % (spread + 1)
        };
        (half + Duration::from_millis(jitter)).min(self.max)
    }
}

/// Whether an HTTP status is worth retrying: 429 and server errors other than "not
/// implemented" and "version not supported".
pub(crate) fn retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error()
            && status != StatusCode::NOT_IMPLEMENTED
            && status != StatusCode::HTTP_VERSION_NOT_SUPPORTED)
}

/// Parses a `Retry-After` value: delay seconds, or an HTTP date (a date in the past means
/// no wait).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a transport error is certain to repeat: TLS certificate problems and requests
/// that could not even be built. Connection refusals, resets and time-outs may pass.
pub(crate) fn permanent_transport_error(error: &reqwest::Error) -> bool {
    if error.is_builder() {
        return true;
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if is_certificate_error(e) {
            return true;
        }
        current = e.source();
    }
    false
}

/// Whether `e` is a rustls certificate error, looking inside (nested) `std::io::Error`s,
/// whose `source()` skips the error they wrap.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        return io
            .get_ref()
            .is_some_and(|inner| is_certificate_error(inner));
    }
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            max_connect_attempts: 3,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let p = policy();
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(d1 >= Duration::from_millis(250) && d1 <= Duration::from_millis(500));
            let d3 = p.delay(3, None);
            assert!(d3 >= Duration::from_secs(1) && d3 <= Duration::from_secs(2));
            let big = p.delay(40, None);
            assert!(big >= Duration::from_secs(15) && big <= Duration::from_secs(30));
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let p = policy();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(600))),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 501, 505] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
