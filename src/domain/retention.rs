//! How long payloads are kept: the server's default, or an account's own number of days.
//!
//! When it runs out, an event's `data`, its deliveries' `params` (activation records, direct
//! e-mail recipients) and its attempts' response excerpts are deleted; the event, delivery and
//! attempt rows stay, marked as expired.

use std::time::Duration;

use super::time::Millis;

pub const DAY_MS: Millis = 86_400_000;
/// The server's default when `--retention` is not given.
pub const DEFAULT_RETENTION: &str = "30days";
/// Bounds of an account's own retention, in days (ten years at most).
pub const MIN_RETENTION_DAYS: u32 = 1;
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// What an expired event's `data` is replaced with. A live event's data is always a JSON object,
/// so the two cannot be mistaken for each other, and readers still get valid JSON.
pub const EXPIRED_DATA: &str = "null";

/// How long an account's payloads are kept.
pub fn retention_ms(default: Duration, account_days: Option<u32>) -> Millis {
    match account_days {
        Some(days) => Millis::from(days) * DAY_MS,
        None => default.as_millis().min(i64::MAX as u128) as Millis,
    }
}

/// Payloads of events created before this instant are due for deletion.
pub fn cutoff(now: Millis, default: Duration, account_days: Option<u32>) -> Millis {
    now.saturating_sub(retention_ms(default, account_days))
}

pub fn check_retention_days(days: u32) -> Result<(), String> {
    if (MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
        Ok(())
    } else {
        Err(format!("retention_days is {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}, or null for the server's default"))
    }
}

/// True for the data of an event whose payload was deleted.
pub fn is_expired(data: &str) -> bool {
    data == EXPIRED_DATA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_override_wins_over_the_default() {
        let default = Duration::from_secs(30 * 86_400);
        assert_eq!(retention_ms(default, None), 30 * DAY_MS);
        assert_eq!(retention_ms(default, Some(7)), 7 * DAY_MS);
        assert_eq!(cutoff(100 * DAY_MS, default, Some(7)), 93 * DAY_MS);
        assert_eq!(cutoff(10_000, Duration::from_secs(2), None), 8_000, "small values work, for tests");
    }

    #[test]
    fn days_are_bounded() {
        assert!(check_retention_days(1).is_ok() && check_retention_days(3650).is_ok());
        assert!(check_retention_days(0).is_err() && check_retention_days(3651).is_err());
    }

    #[test]
    fn the_expired_marker_is_never_live_data() {
        assert!(is_expired(EXPIRED_DATA));
        let marker = serde_json::value::RawValue::from_string(EXPIRED_DATA.into()).unwrap();
        assert!(super::super::event::check_data(&marker).is_err(), "events-send refuses it as data");
    }
}
