//! A lane: one owned target's queue in its owner's memory, and the rules that say when its next
//! attempt may start. No I/O and no clock: the dispatcher passes `now` in.
//!
//! Everything that limits a target is enforced here, exactly, because only the owner sends to it:
//! the concurrency cap, the rate limit (an attempt counts from its start until `RATE_WINDOW_MS`
//! after its answer, `domain::throttle`), the wait after a takeover (`settle_until`), the end of
//! the lease, and, for an ordered target, one attempt at a time: the next starts as soon as the
//! last one succeeded or finally failed (if the node dies before those results are on record, they
//! are sent again, in the same order), but a retried head waits until its retry is on record, so
//! that one delivery's results are never recorded out of order.
//!
//! An unordered lane of a kind that batches (HubSpot) starts requests of up to its batch limit of
//! ready deliveries, each request counting once against the cap and the rate limit; a batch the
//! receiver refused comes back in halves, which go first.

use std::collections::VecDeque;

use uuid::Uuid;

use crate::domain::fanout::TargetRef;
use crate::domain::ownership::Ordering;
use crate::domain::ownership::OwnedTarget;
use crate::domain::queue::{ClaimOrder, ClaimedDelivery};
use crate::domain::throttle::RATE_WINDOW_MS;
use crate::domain::time::Millis;

/// Deliveries a lane keeps in memory before new ones are left in the database for later claims.
pub(super) const HIGH_WATER: usize = 512;
/// Below this, a lane with rows waiting in the database claims more.
pub(super) const LOW_WATER: usize = HIGH_WATER / 2;
/// A lane stops starting attempts this long before its lease runs out (unless renewed), so that a
/// node taking over can count on its being quiet.
pub(super) const LEASE_MARGIN_MS: Millis = 1_000;

/// Why a lane cannot start an attempt now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Blocked {
    /// Until something happens: an attempt ends, a result is recorded, work or settings arrive.
    Waiting,
    /// Until this time (a takeover's wait, a retry, a rate window sliding on).
    Until(Millis),
}

pub(super) struct Lane {
    pub target: TargetRef,
    pub token: Uuid,
    pub is_active: bool,
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    /// The target had a failure streak, as far as this node knows.
    pub failing: bool,
    pub lease_until: Millis,
    pub settle_until: Millis,
    /// Held by this node, not yet started, in the order they are to go.
    ready: VecDeque<ClaimedDelivery>,
    /// The sizes of the groups at the front of `ready` that go as such: halves of batches the
    /// receiver refused for the sake of some deliveries in them.
    splits: VecDeque<usize>,
    /// Requests in flight (a batch is one).
    in_flight: usize,
    /// When each attempt answered in the last rate window stops counting (rate-limited only).
    counting_until: VecDeque<Millis>,
    /// Attempts that ended and whose results are not yet on record.
    unrecorded: usize,
    /// Ordered: the head is to be retried and that is not yet on record.
    awaiting_record: bool,
    /// When the earliest row nobody holds falls due in the database (`None`: none known).
    pub db_due: Option<Millis>,
    /// A claim for this lane is on its way.
    pub claiming: bool,
    /// The lane is being handed over: it starts nothing more.
    pub releasing: bool,
}

impl Lane {
    /// A lane for a target just taken: what the database holds for it is not known yet.
    pub fn new(owned: &OwnedTarget) -> Self {
        let mut lane = Self {
            target: owned.target,
            token: owned.token,
            is_active: false,
            rate_limit: None,
            ordering: Ordering::Unordered,
            failing: false,
            lease_until: 0,
            settle_until: owned.settle_until,
            ready: VecDeque::new(),
            splits: VecDeque::new(),
            in_flight: 0,
            unrecorded: 0,
            counting_until: VecDeque::new(),
            awaiting_record: false,
            db_due: Some(0),
            claiming: false,
            releasing: false,
        };
        lane.update(owned);
        lane
    }

    /// Applies settings and the lease's new end, as renewed.
    pub fn update(&mut self, owned: &OwnedTarget) {
        self.is_active = owned.is_active;
        self.rate_limit = owned.rate_limit;
        self.ordering = owned.ordering;
        self.failing = owned.failing;
        self.lease_until = owned.expires_at;
    }

    fn cap(&self, per_target_cap: usize) -> usize {
        match self.ordering {
            Ordering::Fifo => 1,
            Ordering::Unordered => per_target_cap,
        }
    }

    pub fn push(&mut self, delivery: ClaimedDelivery) {
        self.ready.push_back(delivery);
    }

    pub fn extend(&mut self, deliveries: Vec<ClaimedDelivery>) {
        self.ready.extend(deliveries);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether new deliveries of this target may be written straight into this lane: it is
    /// unordered (ordered ones always go through the database, whose commit order is their
    /// order), has room, and no older row waits in the database.
    pub fn takes_new_work(&self, now: Millis) -> bool {
        self.is_active
            && !self.releasing
            && self.ordering == Ordering::Unordered
            && self.ready.len() < HIGH_WATER
            && self.db_due.is_none_or(|due| due > now)
            && self.lease_until > now + LEASE_MARGIN_MS
    }

    /// The claim this lane needs now, if any.
    pub fn claim(&self, now: Millis) -> Option<ClaimOrder> {
        let due = match (self.db_due, self.ordering) {
            (Some(_), Ordering::Fifo) => true,
            (Some(due), Ordering::Unordered) => due <= now,
            (None, _) => false,
        };
        (due && !self.claiming && !self.releasing && self.ready.len() < LOW_WATER).then(|| ClaimOrder {
            target: self.target.id,
            token: self.token,
            limit: (HIGH_WATER - self.ready.len()) as u32,
            ordering: self.ordering,
            now,
        })
    }

    /// Whether the next attempt may start now, and if not, until when (or what) it waits.
    pub fn next_start(&mut self, now: Millis, per_target_cap: usize) -> Result<(), Blocked> {
        if !self.is_active || self.releasing || self.ready.is_empty() || self.awaiting_record {
            return Err(Blocked::Waiting);
        }
        if now + LEASE_MARGIN_MS >= self.lease_until {
            return Err(Blocked::Waiting);
        }
        if now < self.settle_until {
            return Err(Blocked::Until(self.settle_until));
        }
        if self.in_flight >= self.cap(per_target_cap) {
            return Err(Blocked::Waiting);
        }
        if self.ordering == Ordering::Fifo {
            let due = self.ready.front().map_or(now, |head| head.due_at);
            if due > now {
                return Err(Blocked::Until(due));
            }
        }
        if let Some(limit) = self.rate_limit {
            while self.counting_until.front().is_some_and(|until| *until <= now) {
                self.counting_until.pop_front();
            }
            if self.in_flight + self.counting_until.len() >= limit as usize {
                return Err(self.counting_until.front().map_or(Blocked::Waiting, |until| Blocked::Until(*until)));
            }
        }
        Ok(())
    }

    /// Takes the deliveries of the next request, at most `room`: several for an unordered target
    /// of a kind that batches (a refused batch's half as it is), else one. Call only after
    /// `next_start` said yes. A batch is one request against the cap and the rate limit.
    pub fn start(&mut self, room: usize) -> Vec<ClaimedDelivery> {
        let most = match self.ordering {
            Ordering::Fifo => 1,
            Ordering::Unordered => self.target.kind.batch_limit().min(room),
        };
        let size = match self.splits.pop_front() {
            Some(group) if group > most => {
                self.splits.push_front(group - most);
                most
            }
            Some(group) => group,
            None => most,
        };
        self.in_flight += 1;
        self.ready.drain(..size.min(self.ready.len())).collect()
    }

    /// A request ended with its answer at `answered_at`, with `results` results to record. An
    /// ordered target's retried head goes back to the front, due at `retry`, and waits for that
    /// to be on record.
    pub fn finish(&mut self, answered_at: Millis, results: usize, retry: Option<ClaimedDelivery>) {
        self.in_flight -= 1;
        self.unrecorded += results;
        if self.rate_limit.is_some() {
            self.counting_until.push_back(answered_at + RATE_WINDOW_MS);
        }
        if let (Ordering::Fifo, Some(head)) = (self.ordering, retry) {
            self.awaiting_record = true;
            self.ready.push_front(head);
        }
    }

    /// `count` of this lane's results are on record (the recorder keeps their order, so once none
    /// is left, a retried head's is among them).
    pub fn recorded(&mut self, count: usize) {
        self.unrecorded = self.unrecorded.saturating_sub(count);
        if self.unrecorded == 0 {
            self.awaiting_record = false;
        }
    }

    /// The receiver refused a batch for the sake of some deliveries in it: its halves go first,
    /// each as one request, until every bad delivery goes alone and gets its own outcome.
    pub fn refused(&mut self, deliveries: Vec<ClaimedDelivery>) {
        let half = deliveries.len() / 2;
        for size in [deliveries.len() - half, half].into_iter().filter(|size| *size > 0) {
            self.splits.push_front(size);
        }
        for delivery in deliveries.into_iter().rev() {
            self.ready.push_front(delivery);
        }
    }

    /// A retry (unordered) went back to the database, due at `at`.
    pub fn retry_in_database(&mut self, at: Millis) {
        self.db_due = Some(self.db_due.map_or(at, |due| due.min(at)));
    }

    /// Whether the lane can be given up: nothing in flight or waiting to be recorded.
    pub fn quiet(&self) -> bool {
        self.in_flight == 0 && self.unrecorded == 0 && !self.claiming
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::event::Event;
    use crate::domain::fanout::TargetKind;
    use crate::domain::ids::{AccountId, DeliveryId, EventId, TargetId};
    use crate::domain::integration::IntegrationKind;

    fn owned(ordering: Ordering, rate_limit: Option<u32>) -> OwnedTarget {
        owned_of(TargetKind::Webhook, ordering, rate_limit)
    }

    fn owned_of(kind: TargetKind, ordering: Ordering, rate_limit: Option<u32>) -> OwnedTarget {
        OwnedTarget {
            target: TargetRef { kind, id: TargetId::now_v7() },
            token: Uuid::now_v7(),
            is_active: true,
            rate_limit,
            ordering,
            failing: false,
            expires_at: 100_000,
            settle_until: 0,
        }
    }

    fn delivery(due_at: Millis) -> ClaimedDelivery {
        let event = Event {
            id: EventId::now_v7(),
            account_id: AccountId::now_v7(),
            event_type: "contact.created".into(),
            workspace_id: None,
            data: "{}".into(),
            idempotency_key: None,
            created_at: 0,
            traceparent: None,
        };
        ClaimedDelivery {
            delivery_id: DeliveryId::now_v7(),
            lease_token: Uuid::now_v7(),
            target: TargetRef { kind: TargetKind::Webhook, id: TargetId::now_v7() },
            target_version: 1,
            attempt_count: 0,
            manual_retry: false,
            due_at,
            event: Arc::new(event),
            params: None,
        }
    }

    fn lane_with(ordering: Ordering, rate_limit: Option<u32>, n: usize) -> Lane {
        let mut lane = Lane::new(&owned(ordering, rate_limit));
        lane.db_due = None;
        lane.extend((0..n).map(|_| delivery(0)).collect());
        lane
    }

    #[test]
    fn the_cap_bounds_attempts_in_flight() {
        let mut lane = lane_with(Ordering::Unordered, None, 5);
        for _ in 0..3 {
            assert_eq!(lane.next_start(10, 3), Ok(()));
            lane.start(1);
        }
        assert_eq!(lane.next_start(10, 3), Err(Blocked::Waiting));
        lane.finish(20, 1, None);
        assert_eq!(lane.next_start(20, 3), Ok(()));
    }

    #[test]
    fn a_rate_limit_counts_attempts_until_a_window_after_their_answer() {
        let mut lane = lane_with(Ordering::Unordered, Some(2), 5);
        lane.start(1);
        lane.start(1);
        assert_eq!(lane.next_start(10, 8), Err(Blocked::Waiting), "two in flight fill a limit of 2");
        lane.finish(50, 1, None);
        assert_eq!(lane.next_start(60, 8), Err(Blocked::Until(1_050)), "an answered attempt counts for a window more");
        assert_eq!(lane.next_start(1_050, 8), Ok(()));
    }

    #[test]
    fn nothing_starts_before_a_takeover_settles_or_near_the_end_of_the_lease() {
        let mut lane = lane_with(Ordering::Unordered, None, 1);
        lane.settle_until = 5_000;
        assert_eq!(lane.next_start(1_000, 8), Err(Blocked::Until(5_000)));
        assert_eq!(lane.next_start(5_000, 8), Ok(()));
        assert_eq!(lane.next_start(100_000 - LEASE_MARGIN_MS, 8), Err(Blocked::Waiting));
    }

    #[test]
    fn an_ordered_lane_sends_one_at_a_time_and_a_retried_head_first_once_its_retry_is_recorded() {
        let mut lane = lane_with(Ordering::Fifo, None, 3);
        lane.start(1);
        assert_eq!(lane.next_start(10, 8), Err(Blocked::Waiting), "one in flight");
        lane.finish(15, 1, None);
        assert_eq!(lane.next_start(16, 8), Ok(()), "a success lets the next go before it is on record");
        let second = lane.start(1).remove(0);
        // It failed and is retried at 500: it goes back to the head and holds the others.
        lane.finish(20, 1, Some(ClaimedDelivery { due_at: 500, ..second.clone() }));
        assert_eq!(lane.next_start(600, 8), Err(Blocked::Waiting), "its retry is not on record yet");
        lane.recorded(1);
        assert_eq!(lane.next_start(600, 8), Err(Blocked::Waiting), "nor is it after the first result alone");
        assert!(!lane.quiet(), "a result waits to be recorded");
        lane.recorded(1);
        assert!(lane.quiet());
        assert_eq!(lane.next_start(30, 8), Err(Blocked::Until(500)));
        assert_eq!(lane.next_start(500, 8), Ok(()));
        assert_eq!(lane.start(1)[0].delivery_id, second.delivery_id, "the retry goes first");
    }

    #[test]
    fn new_work_goes_to_memory_only_while_the_lane_has_room_and_nothing_older_waits() {
        let mut lane = lane_with(Ordering::Unordered, None, HIGH_WATER - 1);
        assert!(lane.takes_new_work(10));
        lane.push(delivery(0));
        assert!(!lane.takes_new_work(10), "full");
        let mut lane = lane_with(Ordering::Unordered, None, 0);
        lane.retry_in_database(50);
        assert!(lane.takes_new_work(10), "a retry due later does not hold new work back");
        assert!(!lane.takes_new_work(50), "once it is due, it goes first");
        assert!(lane.claim(50).is_some());
        assert!(!lane_with(Ordering::Fifo, None, 0).takes_new_work(10), "ordered work goes through the database");
    }

    #[test]
    fn an_ordered_lane_claims_whenever_rows_wait_whatever_their_time() {
        let mut lane = lane_with(Ordering::Fifo, None, 0);
        lane.db_due = Some(10_000);
        let order = lane.claim(10).expect("its head may wait in memory for its retry");
        assert_eq!(order.limit as usize, HIGH_WATER);
        lane.claiming = true;
        assert!(lane.claim(10).is_none(), "one claim at a time");
    }

    fn hubspot_lane(rate_limit: Option<u32>, n: usize) -> Lane {
        let mut lane = Lane::new(&owned_of(TargetKind::Integration(IntegrationKind::Hubspot), Ordering::Unordered, rate_limit));
        lane.db_due = None;
        lane.extend((0..n).map(|_| delivery(0)).collect());
        lane
    }

    #[test]
    fn a_batching_lane_sends_up_to_its_limit_and_the_room_left_in_one_request() {
        let mut lane = hubspot_lane(Some(1), 150);
        assert_eq!(lane.start(1_000).len(), 100, "HubSpot's limit");
        assert_eq!(lane.next_start(10, 8), Err(Blocked::Waiting), "a batch is one request against a limit of 1 a second");
        lane.finish(20, 100, None);
        assert_eq!(lane.next_start(1_020, 8), Ok(()));
        assert_eq!(lane.start(30).len(), 30, "no more than the node has room for");
        assert_eq!(lane_with(Ordering::Fifo, None, 5).start(1_000).len(), 1, "other kinds send one at a time");
    }

    #[test]
    fn a_refused_batch_goes_again_in_halves_first() {
        let mut lane = hubspot_lane(None, 12);
        let batch = lane.start(1_000);
        let ids: Vec<DeliveryId> = batch.iter().map(|d| d.delivery_id).collect();
        lane.finish(20, 0, None);
        lane.push(delivery(0));
        lane.refused(batch);
        let first = lane.start(1_000);
        assert_eq!(first.iter().map(|d| d.delivery_id).collect::<Vec<_>>(), ids[..6]);
        lane.refused(first);
        assert_eq!(lane.start(2).len(), 2, "a half larger than the room goes in parts");
        assert_eq!(lane.start(1_000).len(), 1, "the rest of that quarter");
        assert_eq!(lane.start(1_000).len(), 3, "then the other quarter");
        assert_eq!(lane.start(1_000).iter().map(|d| d.delivery_id).collect::<Vec<_>>(), ids[6..], "then the other half");
        assert_eq!(lane.start(1_000).len(), 1, "then what came meanwhile");
    }
}
