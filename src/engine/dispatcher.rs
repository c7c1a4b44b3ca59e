//! The dispatcher: one task that owns every lane of this node and never waits on the database.
//! It takes deliveries handed over by accepting commits and claims, starts attempts as lanes
//! allow (round-robin over lanes, within `max_in_flight`), sends results to the recorder, asks it
//! for claims when a lane runs low and rows wait in the database, and follows ownership changes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::domain::ids::TargetId;

use super::attempt::{Concluded, Finished, attempt};
use super::lanes::{Blocked, Lane};
use super::membership::{Change, MembershipHandle};
use super::recorder::{Recorded, RecorderHandle};
use super::{EngineSettings, HotTargets, Message};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::health::answered_gone;
use crate::domain::ownership::Ordering;
use crate::domain::ownership::OwnedTarget;
use crate::domain::queue::ClaimedDelivery;
use crate::domain::time::{Millis, now_ms};
use crate::targets::TargetFactory;

/// Pause before a lane asks again after a claim failed.
const CLAIM_RETRY_MS: Millis = 250;

pub(super) struct Dispatcher {
    factory: TargetFactory,
    settings: Arc<EngineSettings>,
    hot: Arc<HotTargets>,
    messages: mpsc::UnboundedSender<Message>,
    inbox: mpsc::UnboundedReceiver<Message>,
    recorder: RecorderHandle,
    membership: MembershipHandle,
    lanes: HashMap<TargetId, Lane>,
    /// Lanes to look at again before waiting (their state changed).
    touched: HashSet<TargetId>,
    /// Lanes that may start an attempt, in turn (each once: `queued`).
    runnable: VecDeque<TargetId>,
    queued: HashSet<TargetId>,
    /// When a lane waiting on time should be looked at again (`scheduled`: the earliest per lane).
    timers: BinaryHeap<Reverse<(Millis, TargetId)>>,
    scheduled: HashMap<TargetId, Millis>,
    /// Attempts started and not yet on record.
    in_flight: usize,
    /// Lanes whose `takes_new_work` was last published as true.
    published: HashSet<TargetId>,
    /// What lanes learned of their rows in the database while a claim was on its way (new work,
    /// a retry gone back): the earliest due time, which the claim's answer, read before, may miss.
    due_during_claim: HashMap<TargetId, Millis>,
    /// Targets this node does not own that it heard of work for, and when it last asked for a
    /// round because of them: once per lease is enough (most are simply owned by another node).
    asked_about: HashMap<TargetId, Instant>,
}

impl Dispatcher {
    pub fn new(
        factory: TargetFactory,
        settings: Arc<EngineSettings>,
        hot: Arc<HotTargets>,
        messages: mpsc::UnboundedSender<Message>,
        inbox: mpsc::UnboundedReceiver<Message>,
        recorder: RecorderHandle,
        membership: MembershipHandle,
    ) -> Self {
        Self {
            factory,
            settings,
            hot,
            messages,
            inbox,
            recorder,
            membership,
            lanes: HashMap::new(),
            touched: HashSet::new(),
            runnable: VecDeque::new(),
            queued: HashSet::new(),
            timers: BinaryHeap::new(),
            scheduled: HashMap::new(),
            in_flight: 0,
            published: HashSet::new(),
            due_during_claim: HashMap::new(),
            asked_about: HashMap::new(),
        }
    }

    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let wait = self.next_timer().map_or(Duration::from_secs(3600), |at| Duration::from_millis((at - now_ms()).max(0) as u64));
            tokio::select! {
                Some(message) = self.inbox.recv() => self.handle(message),
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            // Take in everything that arrived meanwhile before deciding.
            while let Ok(message) = self.inbox.try_recv() {
                self.handle(message);
            }
            self.fire_timers();
            self.settle();
        }
        self.drain().await;
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::HandOff(deliveries) => self.hand_off(deliveries),
            Message::Work(targets) => self.work(targets),
            Message::Changed => self.membership.poke(),
            Message::Finished(finished) => self.finished(finished),
            Message::Recorded(recorded) => self.recorded(recorded),
            Message::Ownership(change) => self.ownership(change),
        }
    }

    fn hand_off(&mut self, deliveries: Vec<ClaimedDelivery>) {
        for delivery in deliveries {
            let target = delivery.target.id;
            // A lane lost or re-taken since: the new owner releases and claims these rows.
            if let Some(lane) = self.lanes.get_mut(&target).filter(|lane| lane.token == delivery.lease_token) {
                lane.push(delivery);
                self.touched.insert(target);
            }
        }
    }

    fn work(&mut self, targets: Vec<TargetId>) {
        let now = now_ms();
        let mut unknown = false;
        let lease = self.settings.owner_lease;
        for target in targets {
            match self.lanes.get_mut(&target) {
                Some(lane) => {
                    lane.db_due = Some(now);
                    if lane.claiming {
                        note_due(&mut self.due_during_claim, target, now);
                    }
                    self.touched.insert(target);
                }
                None => {
                    let asked = self.asked_about.entry(target).or_insert_with(|| Instant::now() - lease);
                    if asked.elapsed() >= lease {
                        *asked = Instant::now();
                        unknown = true;
                    }
                }
            }
        }
        if unknown {
            // Maybe nobody owns it yet (a new target): a round may take it.
            self.asked_about.retain(|_, asked| asked.elapsed() < lease);
            self.membership.poke();
        }
    }

    fn finished(&mut self, finished: Finished) {
        let Finished { target, lease_token, answered_at, mut results, refused } = finished;
        // Refused deliveries go back to their lane (or, lane lost, stay with the rows its next
        // owner claims): they are no longer in flight, and nothing of theirs is to be recorded.
        self.in_flight -= refused.len();
        if let Some(lane) = self.lanes.get_mut(&target.id).filter(|lane| lane.token == lease_token) {
            let mut head = None;
            for Concluded { result, delivery, .. } in &mut results {
                let retry = result.status == DeliveryStatus::Pending;
                result.keep_lease = lane.ordering == Ordering::Fifo;
                result.target_failing = lane.failing;
                if retry && !result.keep_lease {
                    lane.retry_in_database(result.next_attempt_at);
                    if lane.claiming {
                        note_due(&mut self.due_during_claim, target.id, result.next_attempt_at);
                    }
                }
                if retry && result.keep_lease {
                    head = Some(ClaimedDelivery {
                        attempt_count: result.attempt.attempt_number,
                        manual_retry: false,
                        due_at: result.next_attempt_at,
                        ..delivery.clone()
                    });
                }
            }
            lane.finish(answered_at, results.len(), head);
            if !refused.is_empty() {
                lane.refused(refused);
            }
            if results.iter().any(|c| answered_gone(c.result.attempt.http_status_code)) {
                // The recorder switches it off; until then, nothing more goes out.
                lane.is_active = false;
            }
            self.touched.insert(target.id);
        }
        for Concluded { result, report, .. } in results {
            self.recorder.record(result, report);
        }
    }

    fn recorded(&mut self, recorded: Recorded) {
        let now = now_ms();
        // An attempt counts against `max_in_flight` until its result is on record: what a node
        // killed at any moment sends again is bounded by it.
        self.in_flight = self.in_flight.saturating_sub(recorded.targets.iter().map(|(_, count)| count).sum());
        for ((target, token), count) in recorded.targets {
            if let Some(lane) = self.lanes.get_mut(&target).filter(|lane| lane.token == token) {
                lane.recorded(count);
                self.touched.insert(target);
            }
        }
        for health in &recorded.health {
            if let Some(lane) = self.lanes.get_mut(&health.target_id) {
                lane.failing = health.failure_streak > 0;
            }
        }
        for target in &recorded.disabled {
            if let Some(lane) = self.lanes.get_mut(target) {
                lane.is_active = false;
                self.touched.insert(*target);
            }
        }
        if !recorded.disabled.is_empty() {
            // Their `endpoint.disabled` reports wait in the database for their targets' owners.
            self.membership.poke();
        }
        for claimed in recorded.claimed {
            let target = claimed.target;
            let Some(lane) = self.lanes.get_mut(&target) else { continue };
            lane.claiming = false;
            let learned = self.due_during_claim.remove(&target);
            lane.db_due = [claimed.next_due, learned].into_iter().flatten().min();
            lane.extend(claimed.deliveries.into_iter().filter(|d| d.lease_token == lane.token).collect());
            self.touched.insert(target);
        }
        for target in recorded.failed_claims {
            if let Some(lane) = self.lanes.get_mut(&target) {
                lane.claiming = false;
                lane.db_due = Some(now + CLAIM_RETRY_MS);
                self.due_during_claim.remove(&target);
                self.touched.insert(target);
            }
        }
    }

    fn ownership(&mut self, change: Change) {
        match change {
            Change::Renewed(owned) => {
                let still: HashSet<TargetId> = owned.iter().map(|o| o.target.id).collect();
                let lost: Vec<TargetId> = self.lanes.keys().filter(|id| !still.contains(id)).copied().collect();
                for target in lost {
                    tracing::info!(%target, "lost the ownership of a target");
                    self.drop_lane(target);
                }
                // Only lanes this node has: a target it gave up may still be listed by a round
                // that read before the hand-over committed.
                for o in owned {
                    if let Some(lane) = self.lanes.get_mut(&o.target.id).filter(|lane| lane.token == o.token) {
                        lane.update(&o);
                        self.touched.insert(o.target.id);
                    }
                }
            }
            Change::Taken(taken) => {
                for o in taken {
                    self.adopt(o);
                }
            }
            Change::HandOver(targets) => {
                for target in targets {
                    if let Some(lane) = self.lanes.get_mut(&target) {
                        lane.releasing = true;
                        self.touched.insert(target);
                    }
                }
            }
            Change::Due(due) => {
                for (target, at) in due {
                    if let (Some(lane), Some(at)) = (self.lanes.get_mut(&target), at) {
                        // Only ever sooner: a notice or retry may have arrived after the poll read.
                        lane.db_due = Some(lane.db_due.map_or(at, |known| known.min(at)));
                        self.touched.insert(target);
                    }
                }
            }
        }
    }

    /// A target just taken (or taken again, with a new token) gets a fresh lane.
    fn adopt(&mut self, owned: OwnedTarget) {
        let target = owned.target.id;
        if self.lanes.contains_key(&target) {
            self.drop_lane(target);
        }
        self.lanes.insert(target, Lane::new(&owned));
        self.touched.insert(target);
    }

    fn drop_lane(&mut self, target: TargetId) {
        self.lanes.remove(&target);
        self.hot.set(target, None);
        self.published.remove(&target);
        self.due_during_claim.remove(&target);
        self.scheduled.remove(&target);
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some(Reverse((at, target))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.scheduled.get(&target) == Some(&at) {
                self.scheduled.remove(&target);
            }
            self.touched.insert(target);
        }
    }

    fn next_timer(&self) -> Option<Millis> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Looks at every touched lane and starts what may start, until nothing more can.
    fn settle(&mut self) {
        loop {
            let now = now_ms();
            for target in std::mem::take(&mut self.touched) {
                self.evaluate(target, now);
            }
            if !self.start_attempts(now) {
                return;
            }
        }
    }

    /// Publishes whether the lane takes new work, asks for a claim it needs, hands it over when
    /// quiet, and queues it to start or sets its timer.
    fn evaluate(&mut self, target: TargetId, now: Millis) {
        let cap = self.settings.per_target_concurrency;
        let Some(lane) = self.lanes.get_mut(&target) else { return };
        let takes = lane.takes_new_work(now);
        if takes != self.published.contains(&target) {
            self.hot.set(target, takes.then_some(lane.token));
            if takes {
                self.published.insert(target);
            } else {
                self.published.remove(&target);
            }
        }
        if lane.releasing && lane.quiet() {
            let token = lane.token;
            self.drop_lane(target);
            self.membership.released(vec![(target, token)]);
            return;
        }
        if let Some(order) = lane.claim(now) {
            lane.claiming = true;
            self.recorder.claim(order);
        }
        let due_later = lane.db_due.filter(|due| *due > now && lane.ordering == Ordering::Unordered);
        let start = lane.next_start(now, cap);
        if let Some(due) = due_later {
            self.schedule(target, due, now);
        }
        match start {
            Ok(()) => {
                if self.queued.insert(target) {
                    self.runnable.push_back(target);
                }
            }
            Err(Blocked::Until(at)) => self.schedule(target, at, now),
            Err(Blocked::Waiting) => {}
        }
    }

    /// Looks at the lane again at `at` (one timer per lane: the earliest wanted).
    fn schedule(&mut self, target: TargetId, at: Millis, now: Millis) {
        if self.scheduled.get(&target).is_some_and(|known| *known <= at && *known > now) {
            return;
        }
        self.scheduled.insert(target, at);
        self.timers.push(Reverse((at, target)));
    }

    /// Starts attempts, one lane at a time in turn, while this node has room. True when it
    /// started any (their lanes are to be looked at again).
    fn start_attempts(&mut self, now: Millis) -> bool {
        let cap = self.settings.per_target_concurrency;
        let mut started = false;
        while self.in_flight < self.settings.max_in_flight {
            let Some(target) = self.runnable.pop_front() else { break };
            self.queued.remove(&target);
            self.touched.insert(target);
            let Some(lane) = self.lanes.get_mut(&target) else { continue };
            if lane.next_start(now, cap).is_ok() {
                // `max_in_flight` counts deliveries, so a batch takes no more than the room left.
                let deliveries = lane.start(self.settings.max_in_flight - self.in_flight);
                self.in_flight += deliveries.len();
                started = true;
                self.spawn_attempt(deliveries);
            }
        }
        started
    }

    fn spawn_attempt(&self, deliveries: Vec<ClaimedDelivery>) {
        let (factory, settings, messages) = (self.factory.clone(), self.settings.clone(), self.messages.clone());
        tokio::spawn(async move {
            let finished = attempt(&factory, &settings.schedule, &settings.traces, deliveries).await;
            // The results wake the dispatcher, which frees the lane's slot and records them.
            let _ = messages.send(Message::Finished(finished));
        });
    }

    /// Starts nothing more, waits (within the drain timeout) for attempts in flight, records every
    /// result, and hands every owned target back.
    async fn drain(mut self) {
        for lane in self.lanes.values_mut() {
            lane.releasing = true;
        }
        let deadline = Instant::now() + self.settings.drain_timeout;
        while self.in_flight > 0 && Instant::now() < deadline {
            tokio::select! {
                Some(message) = self.inbox.recv() => match message {
                    Message::Finished(finished) => self.finished(finished),
                    Message::Recorded(recorded) => self.recorded(recorded),
                    _ => {}
                },
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        if self.in_flight > 0 {
            tracing::warn!(in_flight = self.in_flight, "shutdown: attempts still in flight; their targets' next owner waits for them");
        }
        self.recorder.flush().await;
        // Targets with attempts still in flight are not handed back: their leases run out.
        let quiet: Vec<(TargetId, Uuid)> =
            self.lanes.values().filter(|lane| lane.in_flight() == 0).map(|lane| (lane.target.id, lane.token)).collect();
        self.membership.stop(quiet).await;
    }
}

/// Keeps the earliest due time learned for `target`.
fn note_due(learned: &mut HashMap<TargetId, Millis>, target: TargetId, at: Millis) {
    let due = learned.entry(target).or_insert(at);
    *due = (*due).min(at);
}
