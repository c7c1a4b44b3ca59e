//! Accounts (tenants), their workspaces, and who is calling.

use super::ids::AccountId;
use super::time::Millis;
use uuid::Uuid;

/// An account (tenant) and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Its own payload retention; `None`: the server's `--retention`.
    pub retention_days: Option<u32>,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub id: Uuid,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Who is calling: the account a token belongs to, and the token (seed 003's `created_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: AccountId,
    pub token_id: Uuid,
}
