//! Deliveries over time, for the overview's charts: a window cut into buckets of a size people
//! read easily, deliveries counted by status and attempts' latency per bucket and per target,
//! and the targets ordered by health (the worst first).

use std::collections::HashMap;

use super::delivery::{DeliveryCounts, DeliveryStatus};
use super::fanout::TargetRef;
use super::ids::TargetId;
use super::retention::DAY_MS;
use super::time::Millis;
use super::window::{Window, WindowError};

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
/// Bucket sizes a reader takes in at a glance, smallest first.
const BUCKET_SIZES: [Millis; 11] = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY_MS, 2 * DAY_MS];
/// At most this many buckets: a chart's bars stay wide enough to read.
pub const MAX_BUCKETS: i64 = 60;
/// The longest window: 45 two-day buckets.
pub const MAX_TIMELINE_WINDOW: Millis = 90 * DAY_MS;

/// The smallest bucket size that cuts `window` into at most `MAX_BUCKETS` buckets.
pub fn bucket_size(window: Window) -> Result<Millis, WindowError> {
    let length = window.until - window.since;
    if length > MAX_TIMELINE_WINDOW {
        return Err(WindowError::TooLong(MAX_TIMELINE_WINDOW));
    }
    Ok(BUCKET_SIZES.into_iter().find(|size| length <= size * MAX_BUCKETS).unwrap_or(BUCKET_SIZES[BUCKET_SIZES.len() - 1]))
}

/// Deliveries of one target and status created in one bucket (numbered from the window's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountRow {
    pub bucket: i64,
    pub target: TargetRef,
    pub status: DeliveryStatus,
    pub count: u64,
}

/// Attempts to one target started in one bucket, and how long they took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyRow {
    pub bucket: i64,
    pub target: TargetId,
    pub latency: Latency,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub attempts: u64,
    pub total_ms: i64,
    pub max_ms: i64,
}

impl Latency {
    fn add(&mut self, other: Latency) {
        self.attempts += other.attempts;
        self.total_ms += other.total_ms;
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    pub fn average_ms(&self) -> Option<i64> {
        (self.attempts > 0).then(|| self.total_ms / self.attempts as i64)
    }
}

fn count(counts: &mut DeliveryCounts, status: DeliveryStatus, n: u64) {
    match status {
        DeliveryStatus::Pending => counts.pending += n,
        DeliveryStatus::Delivered => counts.delivered += n,
        DeliveryStatus::Failed => counts.failed += n,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub start: Millis,
    pub counts: DeliveryCounts,
    pub latency: Latency,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetSummary {
    pub target: TargetRef,
    pub counts: DeliveryCounts,
    pub latency: Latency,
}

impl TargetSummary {
    /// Failed deliveries among the settled ones (0 when none settled).
    pub fn failure_ratio(&self) -> f64 {
        let settled = self.counts.delivered + self.counts.failed;
        if settled == 0 { 0.0 } else { self.counts.failed as f64 / settled as f64 }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub bucket_ms: Millis,
    /// Every bucket of the window, empty ones included, oldest first.
    pub buckets: Vec<Bucket>,
    /// Targets with deliveries or attempts in the window, the least healthy first.
    pub targets: Vec<TargetSummary>,
}

impl Timeline {
    /// The whole window: every bucket added up.
    pub fn totals(&self) -> (DeliveryCounts, Latency) {
        let mut totals = (DeliveryCounts::default(), Latency::default());
        for bucket in &self.buckets {
            count(&mut totals.0, DeliveryStatus::Delivered, bucket.counts.delivered);
            count(&mut totals.0, DeliveryStatus::Failed, bucket.counts.failed);
            count(&mut totals.0, DeliveryStatus::Pending, bucket.counts.pending);
            totals.1.add(bucket.latency);
        }
        totals
    }
}

/// The timeline of `window` in buckets of `bucket_ms` from what the store counted.
pub fn assemble(window: Window, bucket_ms: Millis, counts: &[CountRow], latencies: &[LatencyRow]) -> Timeline {
    let starts = (window.since..window.until).step_by(bucket_ms as usize);
    let mut buckets: Vec<Bucket> = starts.map(|start| Bucket { start, counts: DeliveryCounts::default(), latency: Latency::default() }).collect();
    let mut targets: HashMap<TargetId, TargetSummary> = HashMap::new();
    for row in counts {
        if let Some(bucket) = usize::try_from(row.bucket).ok().and_then(|i| buckets.get_mut(i)) {
            count(&mut bucket.counts, row.status, row.count);
        }
        let summary = targets.entry(row.target.id).or_insert(TargetSummary {
            target: row.target,
            counts: DeliveryCounts::default(),
            latency: Latency::default(),
        });
        count(&mut summary.counts, row.status, row.count);
    }
    for row in latencies {
        if let Some(bucket) = usize::try_from(row.bucket).ok().and_then(|i| buckets.get_mut(i)) {
            bucket.latency.add(row.latency);
        }
        // A target's attempts in the window belong to deliveries created in it or before.
        if let Some(summary) = targets.get_mut(&row.target) {
            summary.latency.add(row.latency);
        }
    }
    Timeline { bucket_ms, buckets, targets: by_health(targets.into_values().collect()) }
}

/// The least healthy first: the highest share of failures, then the most failures, then the most
/// waiting; the id keeps the order stable.
pub fn by_health(mut targets: Vec<TargetSummary>) -> Vec<TargetSummary> {
    targets.sort_by(|a, b| {
        b.failure_ratio()
            .total_cmp(&a.failure_ratio())
            .then(b.counts.failed.cmp(&a.counts.failed))
            .then(b.counts.pending.cmp(&a.counts.pending))
            .then(a.target.id.cmp(&b.target.id))
    });
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fanout::TargetKind;

    fn webhook() -> TargetRef {
        TargetRef { kind: TargetKind::Webhook, id: TargetId::now_v7() }
    }

    #[test]
    fn buckets_are_the_smallest_easy_size_that_fits() {
        let window = |length| Window { since: 0, until: length };
        assert_eq!(bucket_size(window(HOUR)), Ok(MINUTE));
        assert_eq!(bucket_size(window(HOUR + 1)), Ok(5 * MINUTE));
        assert_eq!(bucket_size(window(DAY_MS)), Ok(30 * MINUTE), "48 half hours");
        assert_eq!(bucket_size(window(7 * DAY_MS)), Ok(3 * HOUR), "56 buckets");
        assert_eq!(bucket_size(window(MAX_TIMELINE_WINDOW)), Ok(2 * DAY_MS));
        assert_eq!(bucket_size(window(MAX_TIMELINE_WINDOW + 1)), Err(WindowError::TooLong(MAX_TIMELINE_WINDOW)));
    }

    #[test]
    fn every_bucket_is_there_and_rows_land_in_theirs() {
        let (a, b) = (webhook(), webhook());
        let window = Window { since: 1_000, until: 1_000 + 4 * MINUTE - 1 };
        let row = |bucket, target, status, count| CountRow { bucket, target, status, count };
        let counts = [
            row(0, a, DeliveryStatus::Delivered, 3),
            row(2, a, DeliveryStatus::Failed, 1),
            row(2, b, DeliveryStatus::Delivered, 2),
            row(3, b, DeliveryStatus::Pending, 1),
        ];
        let latency = |bucket, target: TargetRef, attempts, total_ms, max_ms| LatencyRow {
            bucket,
            target: target.id,
            latency: Latency { attempts, total_ms, max_ms },
        };
        let timeline = assemble(window, MINUTE, &counts, &[latency(0, a, 3, 30, 20), latency(2, a, 1, 100, 100), latency(2, b, 2, 40, 25)]);
        let starts: Vec<Millis> = timeline.buckets.iter().map(|b| b.start).collect();
        assert_eq!(starts, [1_000, 61_000, 121_000, 181_000], "the empty second bucket too");
        let delivered: Vec<u64> = timeline.buckets.iter().map(|b| b.counts.delivered).collect();
        assert_eq!(delivered, [3, 0, 2, 0]);
        assert_eq!(timeline.buckets[2].latency, Latency { attempts: 3, total_ms: 140, max_ms: 100 });
        assert_eq!(timeline.buckets[2].latency.average_ms(), Some(46));
        assert_eq!(timeline.buckets[1].latency.average_ms(), None);
        assert_eq!(timeline.targets[0].target, a, "a failed once: it comes first");
        assert_eq!(timeline.targets[0].counts, DeliveryCounts { pending: 0, delivered: 3, failed: 1 });
        assert_eq!(timeline.targets[0].latency.average_ms(), Some(32));
        let (counts, latency) = timeline.totals();
        assert_eq!(counts, DeliveryCounts { pending: 1, delivered: 5, failed: 1 });
        assert_eq!(latency, Latency { attempts: 6, total_ms: 170, max_ms: 100 });
    }

    #[test]
    fn the_least_healthy_come_first() {
        let summary = |delivered, failed, pending| TargetSummary {
            target: webhook(),
            counts: DeliveryCounts { pending, delivered, failed },
            latency: Latency::default(),
        };
        let healthy = summary(10, 0, 0);
        let waiting = summary(10, 0, 5);
        let half = summary(5, 5, 0);
        let worst = summary(1, 9, 0);
        let few_but_all = summary(0, 2, 0);
        let order: Vec<TargetId> = by_health(vec![healthy, waiting, half, worst, few_but_all]).iter().map(|t| t.target.id).collect();
        assert_eq!(order, [few_but_all, worst, half, waiting, healthy].map(|t| t.target.id));
    }
}
