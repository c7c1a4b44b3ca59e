//! Timestamps are integer milliseconds since the Unix epoch everywhere below the HTTP layer:
//! portable across SQLite and PostgreSQL and cheap to compare.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// RFC 3339 in UTC with second precision, as in the seed's payloads (`2025-06-15T14:30:00Z`).
pub fn rfc3339(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    OffsetDateTime::from_unix_timestamp(secs).ok().and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an RFC 3339 timestamp into milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The current time; the one clock read the rest of the code funnels through.
pub fn now_ms() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_utc_seconds() {
        assert_eq!(rfc3339(1_749_997_800_000), "2025-06-15T14:30:00Z");
        assert_eq!(parse_rfc3339("2025-06-15T14:30:00Z"), Some(1_749_997_800_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
