//! Group commit for accepted events: concurrent `events-send` calls share one transaction.
//!
//! Each call still answers only after its events are committed; what changes is that calls
//! arriving while a commit is on disk wait for the next one together, so a busy server pays one
//! commit for many calls instead of one each. What a commit leased to this node goes to its engine
//! (`Intake`) before the calls are answered.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{EventStore, LeasePlan, NoLeases, StoreError, StoreResult};
use crate::domain::event::AcceptedEvent;
use crate::domain::event::Event;
use crate::domain::ids::TargetId;
use crate::domain::queue::ClaimedDelivery;

/// Calls combined into one transaction at most.
const MAX_CALLS: usize = 256;

type Reply = oneshot::Sender<StoreResult<Vec<AcceptedEvent>>>;

/// Where committed work goes: the node's delivery engine, which says which targets it takes new
/// work for (`LeasePlan`) and receives what was written leased to it.
pub trait Intake: Send + Sync {
    fn plan(&self) -> &dyn LeasePlan;
    /// Called after each commit, before its calls are answered.
    fn committed(&self, leased: Vec<ClaimedDelivery>, unleased_targets: Vec<TargetId>);
}

/// The intake of a node that delivers nothing: every delivery is left for the owners to claim.
pub struct NoIntake;

impl Intake for NoIntake {
    fn plan(&self) -> &dyn LeasePlan {
        &NoLeases
    }
    fn committed(&self, _: Vec<ClaimedDelivery>, _: Vec<TargetId>) {}
}

/// The front of the committing task; cheap to clone.
#[derive(Clone)]
pub struct EventCommitter {
    calls: mpsc::Sender<(Vec<Event>, Reply)>,
}

impl EventCommitter {
    /// Starts the committing task; it ends when every `EventCommitter` is dropped.
    pub fn start(store: Arc<dyn EventStore>, intake: Arc<dyn Intake>) -> Self {
        let (calls, rx) = mpsc::channel(MAX_CALLS * 4);
        tokio::spawn(run(store, intake, rx));
        Self { calls }
    }

    /// Stores the events (and their fan-out) atomically, like `Store::accept_events`.
    pub async fn accept(&self, events: Vec<Event>) -> StoreResult<Vec<AcceptedEvent>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the server is shutting down".into());
        self.calls.send((events, reply)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn EventStore>, intake: Arc<dyn Intake>, mut rx: mpsc::Receiver<(Vec<Event>, Reply)>) {
    let mut calls = Vec::with_capacity(MAX_CALLS);
    while rx.recv_many(&mut calls, MAX_CALLS).await > 0 {
        commit(store.as_ref(), intake.as_ref(), std::mem::take(&mut calls)).await;
    }
}

/// Accepts `events` in one transaction and hands what was leased to the intake.
async fn accept(store: &dyn EventStore, intake: &dyn Intake, events: &[Event]) -> StoreResult<Vec<AcceptedEvent>> {
    let accepted = store.accept_leasing(events, intake.plan()).await?;
    intake.committed(accepted.leased, accepted.unleased_targets);
    Ok(accepted.events)
}

/// Commits the calls' events together and answers each call with its share. If the combined
/// transaction fails for a reason other than an outage, the calls are retried one by one, so one
/// call's bad data never fails another's.
async fn commit(store: &dyn EventStore, intake: &dyn Intake, calls: Vec<(Vec<Event>, Reply)>) {
    let sizes: Vec<usize> = calls.iter().map(|(events, _)| events.len()).collect();
    let (events, replies): (Vec<Vec<Event>>, Vec<Reply>) = calls.into_iter().unzip();
    let all: Vec<Event> = events.into_iter().flatten().collect();
    match accept(store, intake, &all).await {
        Ok(accepted) => {
            let mut accepted = accepted.into_iter();
            for (reply, size) in replies.into_iter().zip(sizes) {
                let _ = reply.send(Ok(accepted.by_ref().take(size).collect()));
            }
        }
        Err(StoreError::Internal(_)) if replies.len() > 1 => {
            let mut start = 0;
            for (reply, size) in replies.into_iter().zip(sizes) {
                let _ = reply.send(accept(store, intake, &all[start..start + size]).await);
                start += size;
            }
        }
        // An outage, or a lone call's own error.
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::domain::event::EventFilter;
    use crate::domain::ids::{AccountId, EventId};
    use crate::domain::time::now_ms;
    use crate::store::{SqliteStore, Store};

    fn event(account: AccountId, n: usize) -> Event {
        Event {
            id: EventId::now_v7(),
            account_id: account,
            event_type: "contact.created".into(),
            workspace_id: None,
            data: format!(r#"{{"n":{n}}}"#),
            idempotency_key: None,
            created_at: now_ms(),
            traceparent: None,
        }
    }

    #[tokio::test]
    async fn concurrent_calls_each_get_their_own_events_and_a_bad_call_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("g.db").to_string_lossy()).await.unwrap());
        let account = store.add_token("acme", "digest", now_ms()).await.unwrap();
        let committer = EventCommitter::start(store.clone(), Arc::new(NoIntake));
        let calls = (0..40).map(|call| {
            let committer = committer.clone();
            // Every tenth call names an account that does not exist: the database refuses it.
            let owner = if call % 10 == 9 { AccountId::now_v7() } else { account };
            let events: Vec<Event> = (0..=call % 3).map(|i| event(owner, call * 10 + i)).collect();
            let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
            tokio::spawn(async move { (call, ids, committer.accept(events).await) })
        });
        let mut stored = 0;
        for handle in calls.collect::<Vec<_>>() {
            let (call, ids, result) = handle.await.unwrap();
            if call % 10 == 9 {
                assert!(matches!(result, Err(StoreError::Internal(_))), "call {call} names no account: {result:?}");
            } else {
                let accepted: Vec<EventId> = result.unwrap().iter().map(|a| a.event.id).collect();
                assert_eq!(accepted, ids, "call {call} gets back exactly its own events, in order");
                stored += ids.len();
            }
        }
        let listed = store.list_events(account, &EventFilter { limit: 1000, ..Default::default() }).await.unwrap();
        assert_eq!(listed.len(), stored);
    }
}
