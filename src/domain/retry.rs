//! When to try a delivery again.

use std::time::Duration;

/// Waits before each attempt: entry `i` is the wait before attempt `i + 1`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

/// DESIGN.md's schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then failed.
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// The longest a `Retry-After` header may push the next attempt out.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Jitter spreads retries by ±10 % so a recovering receiver is not hit by a synchronized wave.
const JITTER: f64 = 0.2;

impl RetrySchedule {
    /// Parses a comma-separated list of durations (`0s,5s,5m` or `0ms,20ms,40ms`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| humantime::parse_duration(part.trim()).map_err(|e| format!("'{}': {e}", part.trim())))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 50 {
            return Err("a retry schedule has 1 to 50 entries".into());
        }
        Ok(Self(delays))
    }

    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32
    }

    /// The wait before the attempt after `attempts_made` attempts, or `None` when none is left.
    /// `unit_random` is a uniform number in [0, 1) from the caller (keeps this function pure).
    pub fn next_delay(&self, attempts_made: u32, retry_after: Option<Duration>, unit_random: f64) -> Option<Duration> {
        let base = *self.0.get(attempts_made as usize)?;
        let jittered = base.mul_f64(1.0 - JITTER / 2.0 + JITTER * unit_random.clamp(0.0, 1.0));
        Some(match retry_after {
            Some(wait) => jittered.max(wait.min(MAX_RETRY_AFTER)),
            None => jittered,
        })
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self::parse(DEFAULT_SCHEDULE).expect("the default schedule parses")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_has_eight_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        assert_eq!(s.next_delay(1, None, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(2, None, 0.5), Some(Duration::from_secs(300)));
        assert_eq!(s.next_delay(7, None, 0.5), Some(Duration::from_secs(36_000)));
        assert_eq!(s.next_delay(8, None, 0.5), None, "after the eighth attempt: failed");
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(1, None, 0.0), Some(Duration::from_millis(4500)));
        assert_eq!(s.next_delay(1, None, 1.0), Some(Duration::from_millis(5500)));
    }

    #[test]
    fn retry_after_waits_at_least_that_long_but_is_capped() {
        let s = RetrySchedule::default();
        assert_eq!(s.next_delay(1, Some(Duration::from_secs(60)), 0.5), Some(Duration::from_secs(60)));
        assert_eq!(s.next_delay(1, Some(Duration::from_secs(1)), 0.5), Some(Duration::from_secs(5)));
        assert_eq!(s.next_delay(1, Some(Duration::from_secs(10 * 86_400)), 0.5), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn parses_millisecond_schedules_and_refuses_garbage() {
        let s = RetrySchedule::parse("0ms, 10ms,20ms").unwrap();
        assert_eq!(s.max_attempts(), 3);
        assert!(RetrySchedule::parse("5 parsecs").is_err());
    }
}
