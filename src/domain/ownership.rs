//! Who delivers a target: exactly one live node at a time, through a lease in the database.
//!
//! A node that owns a target keeps that target's queue, concurrency cap, rate limit and order in
//! its own memory; no other node sends to it. Ownership is spread over the live nodes by
//! rendezvous hashing (each target goes to the node with the highest score for it), so a node
//! joining or leaving moves only its share of targets. A lease that is not renewed runs out, and
//! another node takes the target over; before it sends anything it waits until nothing the last
//! owner started can still be in flight (`settle_until`).

use uuid::Uuid;

use super::fanout::TargetRef;
use super::ids::TargetId;
use super::throttle::RATE_WINDOW_MS;
use super::time::Millis;

/// How a target's deliveries are ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// Deliveries run side by side, up to the target's concurrency cap; a retry does not hold up
    /// the others.
    #[default]
    Unordered,
    /// One at a time, in the order the events were accepted: the next is sent only once the one
    /// before it succeeded or failed for good (retries used up, or a failure that is not retried).
    Fifo,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Unordered => "unordered",
            Ordering::Fifo => "fifo",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unordered" => Some(Ordering::Unordered),
            "fifo" => Some(Ordering::Fifo),
            _ => None,
        }
    }
}

/// A node's score for a target; the live node with the highest score owns it.
pub fn score(node: Uuid, target: TargetId) -> u64 {
    let (n, t) = (node.as_u64_pair(), target.as_uuid().as_u64_pair());
    mix(mix(n.0 ^ t.0) ^ n.1 ^ mix(t.1))
}

/// splitmix64's finalizer: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The live node that should own `target` (`None` when no node is live).
pub fn preferred_owner(live: &[Uuid], target: TargetId) -> Option<Uuid> {
    live.iter().copied().max_by_key(|node| (score(*node, target), *node))
}

/// What is known of a target's last owner when a node takes it over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LastOwner {
    /// Nobody owned it.
    None,
    /// Its owner handed it over at `at`, after its last attempt was answered.
    Released { at: Millis },
    /// A process on this machine that is no longer running: its attempts ended with it, though a
    /// receiver may still be answering the last of them.
    Exited,
    /// A node whose lease ran out at `expired_at`: it may be alive but cut off, and stops starting
    /// attempts when its lease runs out, so its last attempts end within a request timeout.
    Expired { expired_at: Millis },
}

/// The earliest time the new owner may send to the target, so that the last owner's attempts and
/// the new owner's never overlap at the receiver, neither in number (concurrency cap) nor within
/// one rate window.
pub fn settle_until(last: LastOwner, now: Millis, request_timeout_ms: Millis) -> Millis {
    match last {
        LastOwner::None => now,
        LastOwner::Released { at } => (at + RATE_WINDOW_MS).max(now),
        LastOwner::Exited => now + RATE_WINDOW_MS,
        LastOwner::Expired { expired_at } => (expired_at + request_timeout_ms + RATE_WINDOW_MS).max(now),
    }
}

/// A node as the ownership table knows it: where it runs, so that a node on the same machine can
/// tell that its process is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: Uuid,
    pub host: String,
    pub pid: u32,
    pub process_start: i64,
}

/// A target this node owns, with what its queue needs to know of its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTarget {
    pub target: TargetRef,
    pub token: Uuid,
    pub is_active: bool,
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub failing: bool,
    /// When the lease runs out unless renewed.
    pub expires_at: Millis,
    /// Not before this may it be sent to (`domain::ownership::settle_until`); set when taken.
    pub settle_until: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_spread_over_nodes_and_only_a_leaving_nodes_share_moves() {
        let nodes: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let targets: Vec<TargetId> = (0..3000).map(|_| TargetId::from(Uuid::new_v4())).collect();
        let owner_of = |live: &[Uuid], t: TargetId| preferred_owner(live, t).unwrap();
        for node in &nodes {
            let share = targets.iter().filter(|t| owner_of(&nodes, **t) == *node).count();
            assert!((800..1200).contains(&share), "each of 3 nodes owns about a third: {share}");
        }
        let without_last = &nodes[..2];
        for t in &targets {
            let before = owner_of(&nodes, *t);
            let after = owner_of(without_last, *t);
            if before != nodes[2] {
                assert_eq!(before, after, "a target whose owner stays keeps its owner");
            }
        }
        assert_eq!(preferred_owner(&[], targets[0]), None);
    }

    #[test]
    fn a_new_owner_waits_until_the_last_owners_attempts_are_over() {
        assert_eq!(settle_until(LastOwner::None, 5_000, 15_000), 5_000);
        assert_eq!(settle_until(LastOwner::Exited, 5_000, 15_000), 6_000);
        // Handed over at 4.5 s: its answers count against the rate limit until 5.5 s.
        assert_eq!(settle_until(LastOwner::Released { at: 4_500 }, 5_000, 15_000), 5_500);
        assert_eq!(settle_until(LastOwner::Released { at: 1_000 }, 5_000, 15_000), 5_000);
        // Expired at 4 s: its last attempt started before 4 s and was over by 19 s; the one second
        // after it still counts for its rate limit.
        assert_eq!(settle_until(LastOwner::Expired { expired_at: 4_000 }, 5_000, 15_000), 20_000);
        assert_eq!(settle_until(LastOwner::Expired { expired_at: 0 }, 50_000, 15_000), 50_000);
    }

    #[test]
    fn orderings_read_back_what_they_write() {
        for o in [Ordering::Unordered, Ordering::Fifo] {
            assert_eq!(Ordering::parse(o.as_str()), Some(o));
        }
        assert_eq!(Ordering::parse("lifo"), None);
    }
}
