//! Walks through rows in `(created_at, id)` order, one bounded batch at a time (retention,
//! recovery).

use super::time::Millis;

/// A place in a walk through rows in `(created_at, id)` order: the last row looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<Id> {
    pub created_at: Millis,
    pub id: Id,
}

/// What one batch of a walk did: rows looked at, rows changed, and where to continue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome<Id> {
    pub examined: u64,
    pub changed: u64,
    pub last: Option<Position<Id>>,
}
