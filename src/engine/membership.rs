//! Which targets this node owns. Each round (every quarter of the owner lease, or at once when
//! poked): a heartbeat that renews this node's leases and reads back its targets' settings, then
//! the takeover of targets that have no live owner and should be this node's (rendezvous hashing
//! over the live nodes, `domain::ownership`), then the handing over of targets another live node
//! should own. Every `poll_interval` it also asks the database when each owned target's waiting
//! rows fall due: the safety net under work notices.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::ids::TargetId;

use super::{EngineSettings, Message};
use crate::domain::ownership::preferred_owner;
use crate::domain::ownership::{NodeInfo, OwnedTarget};
use crate::domain::time::{Millis, now_ms};
use crate::store::{DeliveryQueue, StoreResult};

/// Targets taken over in one round at most.
const TAKE_BATCH: u32 = 1000;
/// Targets handed over in one round at most, so a node joining moves work gradually.
const HAND_OVER_BATCH: usize = 64;
/// Rounds asked for by pokes are at least this far apart (pokes in between wait for the next).
const POKE_SPACING: Duration = Duration::from_millis(100);
/// Nodes silent for this many leases are forgotten.
const FORGET_AFTER_LEASES: i64 = 10;

/// What the dispatcher learns of ownership.
pub(crate) enum Change {
    /// The targets this node still owns, with their settings and leases as renewed.
    Renewed(Vec<OwnedTarget>),
    /// Targets just taken over.
    Taken(Vec<OwnedTarget>),
    /// Targets to hand over once nothing of theirs is in flight.
    HandOver(Vec<TargetId>),
    /// When each owned target's earliest waiting row falls due (the poll).
    Due(Vec<(TargetId, Option<Millis>)>),
}

enum Control {
    /// Run a round now (new targets, work for a target this node may not own yet).
    Poke,
    /// Lanes now quiet: give these (target, token) up.
    Released(Vec<(TargetId, Uuid)>),
    /// Give these up and stop.
    Stop(Vec<(TargetId, Uuid)>, oneshot::Sender<()>),
}

#[derive(Clone)]
pub(super) struct MembershipHandle {
    control: mpsc::UnboundedSender<Control>,
    /// Answered after the first round (this node is known to the others).
    joined: Arc<tokio::sync::Mutex<Option<oneshot::Receiver<()>>>>,
}

impl MembershipHandle {
    /// Waits until this node's first round is over (or failed).
    pub async fn joined(&self) {
        if let Some(joined) = self.joined.lock().await.take() {
            let _ = joined.await;
        }
    }

    pub fn poke(&self) {
        let _ = self.control.send(Control::Poke);
    }

    pub fn released(&self, targets: Vec<(TargetId, Uuid)>) {
        let _ = self.control.send(Control::Released(targets));
    }

    /// Gives `owned` up cleanly (a node taking them over need not wait) and stops.
    pub async fn stop(&self, owned: Vec<(TargetId, Uuid)>) {
        let (done, wait) = oneshot::channel();
        if self.control.send(Control::Stop(owned, done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// This process, as other nodes see it.
pub(super) fn this_node() -> NodeInfo {
    let pid = std::process::id();
    NodeInfo { id: Uuid::new_v4(), host: host_id(), pid, process_start: process_start(pid).unwrap_or(0) }
}

/// Tells apart machines (and boots of one machine): Linux's boot id, else the host name.
fn host_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|name| name.trim().to_owned()))
        .unwrap_or_default()
}

/// When a process started, in clock ticks since boot (`/proc/<pid>/stat`, field 22): with the pid,
/// it names one process even after its pid is reused.
fn process_start(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split(' ').nth(19)?.parse().ok()
}

/// Whether `node` is a process of this machine that is no longer running. Unknown (another
/// machine, no `/proc`) counts as running: its lease will tell.
fn has_exited(node: &NodeInfo, here: &NodeInfo) -> bool {
    node.id != here.id
        && !here.host.is_empty()
        && node.host == here.host
        && here.process_start != 0
        && process_start(node.pid) != Some(node.process_start)
}

pub(super) fn start(
    store: Arc<dyn DeliveryQueue>,
    node: NodeInfo,
    settings: Arc<EngineSettings>,
    messages: mpsc::UnboundedSender<Message>,
) -> (MembershipHandle, JoinHandle<()>) {
    let (control, inbox) = mpsc::unbounded_channel();
    let (ready, joined) = oneshot::channel();
    let membership = Membership { store, node, settings, messages, next_poll: Instant::now() };
    (MembershipHandle { control, joined: Arc::new(tokio::sync::Mutex::new(Some(joined))) }, tokio::spawn(membership.run(inbox, ready)))
}

struct Membership {
    store: Arc<dyn DeliveryQueue>,
    node: NodeInfo,
    settings: Arc<EngineSettings>,
    messages: mpsc::UnboundedSender<Message>,
    next_poll: Instant,
}

impl Membership {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Control>, ready: oneshot::Sender<()>) {
        self.forward_work_notices().await;
        let heartbeat = (self.settings.owner_lease / 4).max(Duration::from_millis(50));
        let mut poll_now = true;
        let mut ready = Some(ready);
        loop {
            let round_at = tokio::time::Instant::now();
            if let Err(e) = self.round(std::mem::take(&mut poll_now)).await {
                tracing::warn!(error = %e, "ownership round failed; retrying");
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
            let wait = tokio::time::sleep(heartbeat);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    control = inbox.recv() => match control {
                        Some(Control::Poke) => {
                            // Pokes coming thick and fast share one round.
                            poll_now = true;
                            let soon = (round_at + POKE_SPACING).max(tokio::time::Instant::now());
                            if soon < wait.deadline() {
                                wait.as_mut().reset(soon);
                            }
                        }
                        Some(Control::Released(targets)) => self.release(&targets).await,
                        Some(Control::Stop(targets, done)) => {
                            self.release(&targets).await;
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    },
                    _ = &mut wait => break,
                }
            }
        }
    }

    /// Passes the database's work notices (PostgreSQL) on to the dispatcher.
    async fn forward_work_notices(&self) {
        match self.store.listen_for_work().await {
            Ok(Some(mut notices)) => {
                let messages = self.messages.clone();
                tokio::spawn(async move {
                    while let Some(targets) = notices.recv().await {
                        if messages.send(Message::Work(targets)).is_err() {
                            return;
                        }
                    }
                });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot listen for work notices; relying on polling"),
        }
    }

    async fn round(&mut self, poll_now: bool) -> StoreResult<()> {
        let lease_ms = self.settings.owner_lease.as_millis() as Millis;
        let now = now_ms();
        let owned = self.store.heartbeat(&self.node, now, now + lease_ms, now - FORGET_AFTER_LEASES * lease_ms).await?;
        let owned_ids: Vec<TargetId> = owned.iter().map(|o| o.target.id).collect();
        self.send(Change::Renewed(owned));
        let live = self.store.live_nodes(now - lease_ms).await?;
        let exited: Vec<Uuid> = live.iter().filter(|n| has_exited(n, &self.node)).map(|n| n.id).collect();
        let mut alive: Vec<Uuid> = live.iter().map(|n| n.id).filter(|id| !exited.contains(id)).collect();
        if !alive.contains(&self.node.id) {
            alive.push(self.node.id);
        }
        let mine = |target: &TargetId| preferred_owner(&alive, *target) == Some(self.node.id);
        let candidates = self.store.takeover_candidates(self.node.id, now, &exited, TAKE_BATCH).await?;
        let takes: Vec<(TargetId, Uuid)> = candidates.into_iter().filter(mine).map(|target| (target, Uuid::new_v4())).collect();
        if !takes.is_empty() {
            let timeout_ms = self.settings.request_timeout.as_millis() as Millis;
            let taken = self.store.take_targets(self.node.id, &takes, &exited, now, now + lease_ms, timeout_ms).await?;
            if !taken.is_empty() {
                tracing::info!(count = taken.len(), "took targets over");
                self.send(Change::Taken(taken));
            }
        }
        let hand_over: Vec<TargetId> = owned_ids.iter().filter(|t| !mine(t)).take(HAND_OVER_BATCH).copied().collect();
        if !hand_over.is_empty() {
            self.send(Change::HandOver(hand_over));
        }
        if poll_now || Instant::now() >= self.next_poll {
            self.next_poll = Instant::now() + self.settings.poll_interval;
            let due = self.store.due_hints(&owned_ids).await?;
            self.send(Change::Due(due));
        }
        Ok(())
    }

    async fn release(&self, targets: &[(TargetId, Uuid)]) {
        if targets.is_empty() {
            return;
        }
        match self.store.release_targets(self.node.id, targets, now_ms()).await {
            Ok(()) => tracing::info!(count = targets.len(), "handed targets over"),
            // Their leases run out instead; the next owner waits a little longer.
            Err(e) => tracing::warn!(error = %e, count = targets.len(), "could not hand targets over"),
        }
    }

    fn send(&self, change: Change) {
        let _ = self.messages.send(Message::Ownership(change));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_of_this_machine_that_is_gone_has_exited_and_a_running_one_has_not() {
        let here = this_node();
        assert!(here.process_start > 0, "this process's start time is readable on Linux");
        let running = NodeInfo { id: Uuid::new_v4(), ..here.clone() };
        assert!(!has_exited(&running, &here), "same pid and start: the process runs");
        let gone = NodeInfo { id: Uuid::new_v4(), process_start: here.process_start + 1, ..here.clone() };
        assert!(has_exited(&gone, &here), "same pid, another start: the pid was reused");
        let elsewhere = NodeInfo { id: Uuid::new_v4(), host: "another-machine".into(), process_start: 1, ..here.clone() };
        assert!(!has_exited(&elsewhere, &here), "another machine's process is judged by its lease");
        assert!(!has_exited(&here, &here));
    }
}
