//! Accounts (tenants), their workspaces, and who is calling.

use super::access::{self, TokenScope};
use super::fanout::WorkspaceScope;
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
    /// The host platform's own key for this customer (unique).
    pub external_id: Option<String>,
    /// Being deleted since then: its tokens are gone and its data goes in batches.
    pub deleting_since: Option<Millis>,
    pub created_at: Millis,
}

impl Account {
    /// A new account with the server's retention.
    pub fn new(name: &str, external_id: Option<&str>, now: Millis) -> Self {
        Self {
            id: AccountId::now_v7(),
            name: name.to_owned(),
            retention_days: None,
            external_id: external_id.map(str::to_owned),
            deleting_since: None,
            created_at: now,
        }
    }
}

/// What creating an account came to.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountCreated {
    Created(Account),
    /// An account with the same external id exists: creating is idempotent on it.
    Existing(Account),
    /// Another account has that name.
    NameTaken,
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
    pub scope: TokenScope,
    /// A portal session confined to one workspace: it sees the targets available in that
    /// workspace alone (`WorkspaceScope::confined_to`), their deliveries and its events.
    pub workspace: Option<Uuid>,
}

impl Caller {
    /// Whether this caller may see a target available in `scope`.
    pub fn sees(&self, scope: &WorkspaceScope) -> bool {
        self.workspace.is_none_or(|workspace| scope.confined_to(workspace))
    }

    /// Whether this caller may make the call named `call`: its scope allows it, and a caller
    /// confined to a workspace makes no account-wide change.
    pub fn allows(&self, call: &str) -> bool {
        self.scope.allows(call) && (self.workspace.is_none() || access::allowed_in_one_workspace(call))
    }
}

/// An API token as stored: never the token itself, only its digest and what identifies it to people.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub id: Uuid,
    pub account_id: AccountId,
    pub name: String,
    pub scope: TokenScope,
    /// The token's first characters, to tell tokens apart (`sy_AbC1…`).
    pub prefix: String,
    pub digest: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

impl Token {
    pub fn new(account_id: AccountId, name: &str, scope: TokenScope, prefix: &str, digest: &str, now: Millis, expires_at: Option<Millis>) -> Self {
        Self {
            id: Uuid::now_v7(),
            account_id,
            name: name.to_owned(),
            scope,
            prefix: prefix.to_owned(),
            digest: digest.to_owned(),
            created_at: now,
            expires_at,
            last_used_at: None,
        }
    }
}

/// A token found by its digest, with when it was last marked used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenUse {
    pub caller: Caller,
    pub last_used_at: Option<Millis>,
}
