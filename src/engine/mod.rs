//! The delivery engine of one node. Each target is owned by exactly one live node (a lease in the
//! database, `membership`), and its owner delivers it from memory (`lanes`, `dispatcher`): events
//! accepted on the owner are written already leased to it and handed straight to the target's
//! lane, with no claim and no re-read; rows left in the database (another node accepted them, a
//! retry came due, a lane was full, a takeover) are claimed per target by their owner. Results
//! are recorded in group commits (`recorder`). See ARCHITECTURE.md, "The engine".

mod attempt;
mod dispatcher;
mod lanes;
mod membership;
mod recorder;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::ids::TargetId;

use crate::domain::queue::ClaimedDelivery;
use crate::domain::retry::RetrySchedule;
use crate::store::{DeliveryQueue, EventCommitter, EventStore, Intake, LeasePlan};
use crate::targets::TargetFactory;

#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub schedule: RetrySchedule,
    /// How long a node's ownership of a target lasts without a heartbeat.
    pub owner_lease: Duration,
    /// Longest an attempt may take: a node taking over an expired lease waits this long (plus a
    /// rate window) before sending, so the last owner's attempts are over.
    pub request_timeout: Duration,
    /// Attempts in flight to one target at once, so a slow endpoint cannot delay the others.
    pub per_target_concurrency: usize,
    /// Attempts in flight in this process.
    pub max_in_flight: usize,
    /// How often owners look for work in the database that no notice told them of.
    pub poll_interval: Duration,
    /// A target whose attempts have all failed for this long is switched off.
    pub disable_after: Duration,
    /// How long shutdown waits for attempts in flight.
    pub drain_timeout: Duration,
    /// Spans of attempts (nothing when tracing is off).
    pub traces: crate::traces::Traces,
}

/// What the dispatcher hears about.
pub(crate) enum Message {
    /// Deliveries committed already leased to this node.
    HandOff(Vec<ClaimedDelivery>),
    /// Targets that got deliveries nobody holds.
    Work(Vec<TargetId>),
    /// A target was created or its settings changed through this node's API.
    Changed,
    Finished(attempt::Finished),
    Recorded(recorder::Recorded),
    Ownership(membership::Change),
}

/// The targets this node takes new work for in memory, with their tokens (`LeasePlan`).
struct HotTargets {
    node: Uuid,
    tokens: Mutex<HashMap<TargetId, Uuid>>,
}

impl HotTargets {
    fn set(&self, target: TargetId, token: Option<Uuid>) {
        let mut tokens = self.tokens.lock().expect("lock is never poisoned");
        match token {
            Some(token) => tokens.insert(target, token),
            None => tokens.remove(&target),
        };
    }
}

impl LeasePlan for HotTargets {
    fn node(&self) -> Option<Uuid> {
        Some(self.node)
    }

    fn token_for(&self, target: TargetId) -> Option<Uuid> {
        self.tokens.lock().expect("lock is never poisoned").get(&target).copied()
    }
}

/// How accepted events reach this node's engine.
struct EngineIntake {
    hot: Arc<HotTargets>,
    messages: mpsc::UnboundedSender<Message>,
}

impl Intake for EngineIntake {
    fn plan(&self) -> &dyn LeasePlan {
        self.hot.as_ref()
    }

    fn committed(&self, leased: Vec<ClaimedDelivery>, unleased_targets: Vec<TargetId>) {
        if !leased.is_empty() {
            let _ = self.messages.send(Message::HandOff(leased));
        }
        if !unleased_targets.is_empty() {
            let _ = self.messages.send(Message::Work(unleased_targets));
        }
    }
}

/// Tells this node's engine about work and changes the API made; does nothing on API-only nodes
/// (owners elsewhere hear of it through the database).
#[derive(Clone, Default)]
pub struct Signal {
    messages: Option<mpsc::UnboundedSender<Message>>,
}

impl Signal {
    /// `target` has deliveries nobody holds (a retry, a recovery, an activation, a direct send).
    pub fn work(&self, target: TargetId) {
        if let Some(messages) = &self.messages {
            let _ = messages.send(Message::Work(vec![target]));
        }
    }

    /// Targets were created, changed or deleted: the owners look again.
    pub fn changed(&self) {
        if let Some(messages) = &self.messages {
            let _ = messages.send(Message::Changed);
        }
    }
}

/// A running engine.
pub struct EngineHandle {
    messages: mpsc::UnboundedSender<Message>,
    membership: membership::MembershipHandle,
    committer: EventCommitter,
    tasks: Vec<JoinHandle<()>>,
}

impl EngineHandle {
    pub fn start(
        queue: Arc<dyn DeliveryQueue>,
        events: Arc<dyn EventStore>,
        factory: TargetFactory,
        settings: EngineSettings,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let node = membership::this_node();
        let (messages, inbox) = mpsc::unbounded_channel();
        let hot = Arc::new(HotTargets { node: node.id, tokens: Mutex::default() });
        let committer = EventCommitter::start(events, Arc::new(EngineIntake { hot: hot.clone(), messages: messages.clone() }));
        let settings = Arc::new(settings);
        let (membership, membership_task) = membership::start(queue.clone(), node, settings.clone(), messages.clone());
        let (recorder, recorder_task) = recorder::start(queue, committer.clone(), settings.clone(), messages.clone());
        let dispatcher = dispatcher::Dispatcher::new(factory, settings, hot, messages.clone(), inbox, recorder, membership.clone());
        let dispatcher_task = tokio::spawn(dispatcher.run(shutdown));
        Self { messages, membership, committer, tasks: vec![dispatcher_task, recorder_task, membership_task] }
    }

    /// Waits until this node has made itself known and taken its first targets, so that other
    /// nodes count it in when they share out targets created from now on.
    pub async fn joined(&self) {
        self.membership.joined().await;
    }

    pub fn signal(&self) -> Signal {
        Signal { messages: Some(self.messages.clone()) }
    }

    /// Accepts events for this node: what it owns goes straight to its lanes.
    pub fn committer(&self) -> EventCommitter {
        self.committer.clone()
    }

    /// Waits until attempts in flight are recorded and every owned target is handed back.
    pub async fn stopped(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
