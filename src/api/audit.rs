//! The audit trail: a layer on the API records every successful change of configuration (who,
//! when, which call, what it changed, the fields sent with secrets masked: `domain::audit`), and
//! `audit-list` reads it back.
//!
//! The layer learns who called and what they sent from the extractors themselves (`AuditNote`),
//! so a request is read and authenticated once, with the same errors as any other.
//!
//! Architecture invariant: no change is made without its entry. The body's extractor, the last
//! step before a handler runs, files the entry unconfirmed (`AuditNote::open`); the layer
//! confirms it once the call succeeded, or removes it. A crash in between leaves an unconfirmed
//! entry: a change that may or may not have been made, never one made unseen. Only
//! `accounts-create`, which names no account before it answers, is filed after.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{next_cursor, page_limit, parse_time, whole};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, Principal, parse_id};
use super::{ApiResult, AppState, success};
use crate::domain::access::TokenScope;
use crate::domain::account::Caller;
use crate::domain::audit::{Actor, AuditEntry, AuditFilter, audited, masked, subject_of};
use crate::domain::ids::AccountId;
use crate::domain::time::{now_ms, rfc3339};
use crate::store::AuditLog;

const SCOPE: Scope = Scope::Audit;
/// Request bodies up to this size are recorded; a larger one (an upload) is noted by its size.
const MAX_RECORDED_BODY: usize = 64 * 1024;

/// What the extractors of an audited request saw: who called, and the body they sent.
#[derive(Clone, Default)]
pub struct AuditNote(Arc<Mutex<Seen>>);

#[derive(Default)]
struct Seen {
    principal: Option<Principal>,
    body: Option<Value>,
    /// The entry filed before the change, to confirm or remove.
    opened: Option<AuditEntry>,
}

impl AuditNote {
    pub fn principal(&self, principal: Principal) {
        self.0.lock().expect("never poisoned").principal = Some(principal);
    }

    pub fn body(&self, bytes: &[u8]) {
        let body = if bytes.len() <= MAX_RECORDED_BODY {
            masked(&serde_json::from_slice(bytes).unwrap_or_default())
        } else {
            serde_json::json!({"body": format!("not recorded: {} bytes", bytes.len())})
        };
        self.0.lock().expect("never poisoned").body = Some(body);
    }

    /// Files the entry of the change `call` is about to make, unconfirmed. Refused (in the call's
    /// `scope`) if it cannot be filed: then the change is not made either.
    pub async fn open(&self, audit: &dyn AuditLog, call: &str, scope: Scope) -> Result<(), ApiError> {
        let entry = {
            let seen = self.0.lock().expect("never poisoned");
            let Some(principal) = seen.principal else { return Ok(()) };
            entry(principal, call, seen.body.clone().unwrap_or(Value::Null), &Value::Null, false)
        };
        let Some(entry) = entry else { return Ok(()) };
        if audit.insert_audit(&entry).await.or_store_error(scope)? {
            self.0.lock().expect("never poisoned").opened = Some(entry);
        }
        Ok(())
    }

    fn take(&self) -> Seen {
        std::mem::take(&mut *self.0.lock().expect("never poisoned"))
    }
}

/// The layer: runs the call and, if it changed configuration, confirms its entry (or files it,
/// when it could not be filed before) if it succeeded, and removes it if not.
pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let call = request.uri().path().strip_prefix("/api/").unwrap_or_default().to_owned();
    // Not an API call, or not a change; an account being deleted is gone with its trail.
    if call.is_empty() || !audited(&call) || call == "accounts-delete" {
        return next.run(request).await;
    }
    let note = AuditNote::default();
    request.extensions_mut().insert(note.clone());
    let response = next.run(request).await;
    let Seen { principal, body: fields, opened } = note.take();
    let audit = &state.store.audit;
    if !response.status().is_success() {
        if let Some(entry) = opened
            && let Err(e) = audit.discard_audit(entry.id).await
        {
            tracing::error!(error = %e, %call, "could not remove the audit entry of a refused change");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        tracing::error!(%call, "could not read an answer to record it in the audit trail");
        return Response::from_parts(parts, Body::empty());
    };
    let result = &serde_json::from_slice::<Value>(&bytes).unwrap_or_default()["result"];
    let fields = fields.unwrap_or(Value::Null);
    let recorded = match (opened, principal) {
        (Some(entry), _) => audit.confirm_audit(entry.id, subject_of(&fields, result)).await,
        (None, Some(principal)) => match entry(principal, &call, fields, result, true) {
            Some(entry) => audit.insert_audit(&entry).await.map(drop),
            None => Ok(()),
        },
        (None, None) => Ok(()),
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, %call, "could not record a change in the audit trail");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The entry for a call (`result`: its answer's, `Null` before it answers); `None` when it names
/// no account (it cannot be filed).
fn entry(principal: Principal, call: &str, fields: Value, result: &Value, confirmed: bool) -> Option<AuditEntry> {
    let (account_id, actor) = match principal {
        Principal::Account(Caller { account_id, token_id, scope: TokenScope::Portal, .. }) => (account_id, Actor::Portal { id: token_id }),
        Principal::Account(Caller { account_id, token_id, .. }) => (account_id, Actor::Token { id: token_id, name: "(revoked token)".into() }),
        Principal::Operator => {
            let named = fields
                .get("account_id")
                .or_else(|| call.starts_with("accounts-").then(|| fields.get("id").or(result["account"].get("id"))).flatten());
            (named.and_then(Value::as_str).and_then(|id| Uuid::try_parse(id).ok()).map(AccountId::from)?, Actor::Operator)
        }
    };
    let subject_id = subject_of(&fields, result);
    Some(AuditEntry { id: Uuid::now_v7(), account_id, at: now_ms(), actor, action: call.to_owned(), subject_id, fields, confirmed })
}

#[derive(Serialize, ToSchema)]
pub struct ActorView {
    /// `token`, `operator` or `portal`.
    kind: &'static str,
    /// The token's id.
    id: Option<Uuid>,
    /// The token's name at the time (or `operator`).
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    id: Uuid,
    at: String,
    actor: ActorView,
    /// The call that made the change (`webhooks-update`).
    action: String,
    /// What it changed: a target, workspace, token, delivery … when there is one.
    subject_id: Option<Uuid>,
    /// The fields sent, secrets masked.
    #[schema(value_type = Object)]
    fields: Value,
    /// False when the server stopped (or is still busy) making the change: it may or may not
    /// have been made. Entries are filed before their change, so none is ever missing.
    confirmed: bool,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        let actor = match e.actor {
            Actor::Token { id, name } => ActorView { kind: "token", id: Some(id), name },
            Actor::Operator => ActorView { kind: "operator", id: None, name: "operator".into() },
            Actor::Portal { id } => ActorView { kind: "portal", id: Some(id), name: "portal session".into() },
        };
        Self { id: e.id, at: rfc3339(e.at), actor, action: e.action, subject_id: e.subject_id, fields: e.fields, confirmed: e.confirmed }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAudit {
    /// Only this call (`webhooks-update`).
    action: Option<String>,
    /// Only changes of this target, workspace, token …
    #[schema(format = Uuid)]
    subject_id: Option<String>,
    /// RFC 3339, or a duration back from now (`24h`).
    since: Option<String>,
    until: Option<String>,
    /// `next_cursor` of the previous page.
    #[schema(format = Uuid)]
    cursor: Option<String>,
    /// 1 to 500; default 100.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    entries: Vec<AuditEntryView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<Uuid>,
}

/// The account's changes of configuration, newest first.
#[utoipa::path(post, path = "/api/audit-list", tag = "audit", request_body = ListAudit,
    responses((status = 200, body = super::Success<AuditPage>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListAudit>) -> ApiResult<AuditPage> {
    let limit = page_limit(SCOPE, req.limit, 500)?;
    let now = now_ms();
    let filter = AuditFilter {
        action: req.action,
        subject_id: req.subject_id.as_deref().map(|id| parse_id(SCOPE, "subject_id", id)).transpose()?,
        since: req.since.as_deref().map(|t| parse_time(SCOPE, "since", t, now)).transpose()?,
        until: req.until.as_deref().map(|t| parse_time(SCOPE, "until", t, now)).transpose()?,
        before: req.cursor.as_deref().map(|c| parse_id(SCOPE, "cursor", c)).transpose()?,
        limit,
    };
    let entries = state.store.audit.list_audit(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    let next_cursor = next_cursor(&entries, limit, |e| e.id);
    success(AuditPage { entries: entries.into_iter().map(Into::into).collect(), next_cursor })
}
