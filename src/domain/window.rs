//! The time windows of the stats and recovery calls: `[since, until)` over deliveries' creation.

use super::retention::DAY_MS;
use super::time::Millis;

/// Stats cover the last 24 hours unless told otherwise.
pub const DEFAULT_STATS_WINDOW: Millis = DAY_MS;
/// A recovery re-queues at most 14 days of failures at once.
pub const MAX_RECOVERY_WINDOW: Millis = 14 * DAY_MS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Created at or after.
    pub since: Millis,
    /// Created before.
    pub until: Millis,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("since must be before until")]
    Empty,
    #[error("the window is at most {} days", .0 / DAY_MS)]
    TooLong(Millis),
}

fn checked(since: Millis, until: Millis, max: Option<Millis>) -> Result<Window, WindowError> {
    if since >= until {
        return Err(WindowError::Empty);
    }
    match max {
        Some(max) if until - since > max => Err(WindowError::TooLong(max)),
        _ => Ok(Window { since, until }),
    }
}

/// Until `until` (default now), from `since` (default 24 hours before `until`).
pub fn stats_window(since: Option<Millis>, until: Option<Millis>, now: Millis) -> Result<Window, WindowError> {
    let until = until.unwrap_or(now);
    checked(since.unwrap_or(until - DEFAULT_STATS_WINDOW), until, None)
}

/// From `since` until `until` (default now), 14 days at most.
pub fn recovery_window(since: Millis, until: Option<Millis>, now: Millis) -> Result<Window, WindowError> {
    checked(since, until.unwrap_or(now), Some(MAX_RECOVERY_WINDOW))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_default_to_the_last_day() {
        let now = 100 * DAY_MS;
        assert_eq!(stats_window(None, None, now), Ok(Window { since: 99 * DAY_MS, until: now }));
        assert_eq!(stats_window(None, Some(50 * DAY_MS), now), Ok(Window { since: 49 * DAY_MS, until: 50 * DAY_MS }));
        assert_eq!(stats_window(Some(now), None, now), Err(WindowError::Empty));
        assert!(stats_window(Some(0), None, now).is_ok(), "stats may look back as far as wanted");
    }

    #[test]
    fn recovery_is_at_most_fourteen_days() {
        let now = 100 * DAY_MS;
        assert_eq!(recovery_window(86 * DAY_MS, None, now), Ok(Window { since: 86 * DAY_MS, until: now }));
        assert_eq!(recovery_window(86 * DAY_MS - 1, None, now), Err(WindowError::TooLong(MAX_RECOVERY_WINDOW)));
        assert_eq!(WindowError::TooLong(MAX_RECOVERY_WINDOW).to_string(), "the window is at most 14 days");
        assert_eq!(recovery_window(now, Some(now - 1), now), Err(WindowError::Empty));
    }
}
