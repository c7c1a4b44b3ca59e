//! Target health: streaks of failed attempts, and when a failing target is switched off.
//!
//! A target's streak is the number of failed attempts since its last success, with the time of
//! the first of them. The engine folds each cycle's results into one change per target (the store
//! applies it), then asks `disable_reason` about the result.

use std::collections::HashMap;
use std::time::Duration;

use super::ids::{AccountId, TargetId};

use super::time::Millis;

/// One attempt as health sees it.
#[derive(Clone, Copy, Debug)]
pub struct AttemptSummary {
    pub target_id: TargetId,
    pub succeeded: bool,
    pub finished_at: Millis,
}

/// How one cycle's attempts change a target's streak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreakChange {
    pub target_id: TargetId,
    /// A success came in: the streak restarts from `failures`.
    pub reset: bool,
    /// Failed attempts to add (after the last success, if any).
    pub failures: u32,
    /// When the first of those failures happened.
    pub first_failure_at: Option<Millis>,
}

/// A target's streak as stored after applying a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetHealth {
    pub target_id: TargetId,
    pub account_id: AccountId,
    pub is_active: bool,
    pub failure_streak: u32,
    pub failing_since: Option<Millis>,
}

/// Folds attempts (in the order they finished) into one change per target.
pub fn fold_streaks(attempts: impl IntoIterator<Item = AttemptSummary>) -> Vec<StreakChange> {
    let mut changes: HashMap<TargetId, StreakChange> = HashMap::new();
    let mut attempts: Vec<_> = attempts.into_iter().collect();
    attempts.sort_by_key(|a| a.finished_at);
    for a in attempts {
        let change = changes.entry(a.target_id).or_insert(StreakChange { target_id: a.target_id, reset: false, failures: 0, first_failure_at: None });
        if a.succeeded {
            *change = StreakChange { reset: true, failures: 0, first_failure_at: None, ..*change };
        } else {
            change.failures += 1;
            change.first_failure_at.get_or_insert(a.finished_at);
        }
    }
    let mut changes: Vec<_> = changes.into_values().collect();
    changes.sort_by_key(|c| c.target_id);
    changes
}

/// Whether an answer says the target is gone for good (HTTP 410): it is switched off at once, and
/// its owner sends it nothing more meanwhile.
pub fn answered_gone(status: Option<u16>) -> bool {
    status == Some(410)
}

/// Why an active target should be switched off now, if it should: it answered 410 Gone, or it
/// has failed for longer than `window` without a single success.
pub fn disable_reason(health: &TargetHealth, answered_gone: bool, window: Duration, now: Millis) -> Option<String> {
    if !health.is_active {
        return None;
    }
    if answered_gone {
        return Some("the endpoint answered HTTP 410 Gone".into());
    }
    let since = health.failing_since?;
    (now - since >= window.as_millis() as Millis).then(|| {
        format!(
            "every attempt failed for {} ({} attempts) without a success",
            humantime::format_duration(Duration::from_secs(((now - since) / 1000) as u64)),
            health.failure_streak
        )
    })
}

/// A target's health as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthView {
    pub is_active: bool,
    pub failure_streak: u32,
    pub failing_since: Option<Millis>,
    pub disabled_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(target: TargetId, succeeded: bool, finished_at: Millis) -> AttemptSummary {
        AttemptSummary { target_id: target, succeeded, finished_at }
    }

    #[test]
    fn a_success_restarts_the_streak_and_later_failures_start_a_new_one() {
        let (a, b) = (TargetId::from(uuid::Uuid::from_u128(1)), TargetId::from(uuid::Uuid::from_u128(2)));
        let changes =
            fold_streaks([attempt(a, false, 10), attempt(b, false, 11), attempt(a, true, 12), attempt(a, false, 14), attempt(b, false, 13)]);
        assert_eq!(
            changes,
            [
                StreakChange { target_id: a, reset: true, failures: 1, first_failure_at: Some(14) },
                StreakChange { target_id: b, reset: false, failures: 2, first_failure_at: Some(11) },
            ]
        );
        assert_eq!(fold_streaks([attempt(a, true, 1)]), [StreakChange { target_id: a, reset: true, failures: 0, first_failure_at: None }]);
    }

    #[test]
    fn targets_are_disabled_on_gone_or_after_the_window_only() {
        let health = |is_active, failing_since| TargetHealth {
            target_id: TargetId::default(),
            account_id: AccountId::default(),
            is_active,
            failure_streak: 7,
            failing_since,
        };
        let window = Duration::from_secs(5 * 86_400);
        let day = 86_400_000;
        assert!(disable_reason(&health(true, None), true, window, 0).unwrap().contains("410"));
        assert_eq!(disable_reason(&health(true, None), false, window, 10 * day), None, "no streak");
        assert_eq!(disable_reason(&health(true, Some(day)), false, window, 5 * day), None, "4 days");
        assert!(disable_reason(&health(true, Some(day)), false, window, 6 * day).unwrap().contains("5days"));
        assert_eq!(disable_reason(&health(false, Some(0)), true, window, 6 * day), None, "already off");
    }
}
