//! RFC 3339 times as OCI annotations, image configs, chart indexes and bundle.json write them:
//! UTC, whole seconds (`2026-01-31T12:00:00Z`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A number of seconds that no RFC 3339 time can express (beyond the year 9999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{seconds} seconds since the epoch is not a time RFC 3339 can write")]
pub struct TimestampError {
    /// The seconds given.
    pub seconds: u64,
}

/// `seconds` since the epoch as RFC 3339 in UTC.
pub fn format_rfc3339(seconds: u64) -> Result<String, TimestampError> {
    let invalid = TimestampError { seconds };
    let time = i64::try_from(seconds)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or(invalid)?;
    time.format(&Rfc3339).map_err(|_| invalid)
}

/// An RFC 3339 time as seconds since the epoch; `None` if it does not parse or is before
/// 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp()).ok()
}

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_in_utc() {
        assert_eq!(format_rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(1_800_000_000).unwrap(),
            "2027-01-15T08:00:00Z"
        );
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert!(format_rfc3339(u64::MAX).is_err());
    }
}
