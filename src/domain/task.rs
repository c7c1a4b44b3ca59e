//! Background tasks started by an API call (a recovery), and their states.

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
