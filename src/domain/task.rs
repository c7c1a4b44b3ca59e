//! Background tasks started by an API call (a recovery), and their states.

use uuid::Uuid;

use super::ids::{AccountId, TargetId};
use super::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskKind {
    /// Re-queues the failed deliveries of one target in a time window.
    Recover,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Done,
    Failed,
}

impl TaskKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recover => "recover",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s == "recover").then_some(Self::Recover)
    }
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Done, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }
}

/// A background task and its progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub account_id: AccountId,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub target_id: Option<TargetId>,
    /// Items to process, counted when the task started.
    pub total: u64,
    /// Items processed so far (including skipped ones).
    pub done: u64,
    /// Items processed but left alone (a recovery: deliveries whose payload expired).
    pub skipped: u64,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in [TaskStatus::Running, TaskStatus::Done, TaskStatus::Failed] {
            assert_eq!(TaskStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(TaskKind::parse(TaskKind::Recover.as_str()), Some(TaskKind::Recover));
        assert_eq!(TaskStatus::parse("paused"), None);
    }
}
