//! Checks and helpers shared by the resources that save destinations.

use crate::domain::ids::{AccountId, TargetId};
use std::collections::HashSet;

use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::parse_id;
use crate::crypto::random_bytes;
use crate::crypto::secret_box::signing_secret_binding;
use crate::domain::account::Caller;
use crate::domain::endpoint::check_events;
use crate::domain::fanout::WorkspaceScope;
use crate::domain::json::whole_number;
use crate::domain::receiver_auth::{self, AuthError, AuthSecrets, ReceiverAuth, ReceiverAuthInput, StoredReceiverAuth};
use crate::domain::signing::SigningSecret;
use crate::domain::signing::StoredSecret;
use crate::domain::throttle::parse_rate_limit;
use crate::domain::time::{Millis, parse_rfc3339};
use crate::domain::url_policy::{UrlError, UrlPolicy};
use crate::targets::http::{LookupError, resolve_allowed};

/// Checks a destination URL against the policy: `<scope>.url_required` or `<scope>.invalid_url`.
/// A name (`domain::names`), refused as the scope's `invalid_request`.
pub fn checked_name(scope: Scope, field: &str, raw: &str) -> Result<String, ApiError> {
    crate::domain::names::check_name(field, raw).map_err(|m| ApiError::invalid_request(scope, m))
}

pub async fn checked_url(state: &AppState, scope: Scope, raw: Option<&str>) -> Result<String, ApiError> {
    let invalid = |e: UrlError| match e {
        UrlError::Missing => ApiError::new(StatusCode::BAD_REQUEST, scope, "url_required", "URL is required"),
        other => ApiError::new(StatusCode::BAD_REQUEST, scope, "invalid_url", other.to_string()),
    };
    let url = state.url_policy.check_url(raw.unwrap_or_default()).map_err(invalid)?;
    if let Some(url::Host::Domain(name)) = url.host() {
        refuse_internal_name(state.url_policy, name, url.port_or_known_default().unwrap_or(443)).await.map_err(invalid)?;
    }
    Ok(url.to_string())
}

/// Checks a bare host (an SMTP server) against the same policy as URLs.
pub async fn checked_host(policy: UrlPolicy, raw: &str, port: u16) -> Result<(), UrlError> {
    if let url::Host::Domain(name) = policy.check_host(raw)? {
        refuse_internal_name(policy, &name, port).await?;
    }
    Ok(())
}

/// Early, friendly refusal of names that resolve only to addresses the policy refuses. The check
/// that protects is the one at connect time; a name that does not resolve yet is accepted.
async fn refuse_internal_name(policy: UrlPolicy, name: &str, port: u16) -> Result<(), UrlError> {
    if policy.allow_private_networks {
        return Ok(());
    }
    match resolve_allowed(policy, name, port).await {
        Err(LookupError::Blocked(_, first)) => Err(UrlError::BlockedAddress(first)),
        Ok(_) | Err(LookupError::Dns(..)) => Ok(()),
    }
}

/// Checks subscribed event types against the account's catalog.
pub async fn checked_events(state: &AppState, scope: Scope, account: AccountId, events: &[String]) -> Result<Vec<String>, ApiError> {
    let catalog = state.store.accounts.list_event_types(account).await.or_store_error(scope)?;
    check_events(events, catalog.iter().map(|t| t.name.as_str())).map_err(|m| ApiError::invalid_request(scope, m))
}

/// Parses workspace ids and checks each is the account's: `<scope>.workspace_not_found`.
pub async fn checked_workspaces(state: &AppState, scope: Scope, caller: &Caller, ids: &[String]) -> Result<Vec<Uuid>, ApiError> {
    let all = state.store.accounts.list_workspaces(caller.account_id).await.or_store_error(scope)?;
    let known: HashSet<Uuid> = all.into_iter().map(|w| w.id).filter(|id| caller.workspace.is_none_or(|own| own == *id)).collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let id = parse_id(scope, "workspaces[]", id)?;
        if !known.contains(&id) {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, scope, "workspace_not_found", format!("workspace {id} does not exist")));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The workspaces a request chooses for a target (`workspaces`, `all_workspaces`), if it chooses
/// any: `all_workspaces: true` is every workspace, otherwise those listed (checked to exist). A
/// caller confined to one workspace can choose that one only; the others do not exist for it.
pub async fn chosen_scope(
    state: &AppState,
    scope: Scope,
    caller: &Caller,
    workspaces: Option<Vec<String>>,
    all: Option<bool>,
) -> Result<Option<WorkspaceScope>, ApiError> {
    let chosen = match (all, workspaces) {
        (Some(true), _) => WorkspaceScope::All,
        (None, None) => return Ok(None),
        (_, workspaces) => WorkspaceScope::Only(checked_workspaces(state, scope, caller, &workspaces.unwrap_or_default()).await?),
    };
    match caller.workspace {
        Some(own) if !chosen.confined_to(own) => Err(ApiError::invalid_request(
            scope,
            format!("this portal session is confined to workspace {own}: a target it saves is available there and nowhere else"),
        )),
        _ => Ok(Some(chosen)),
    }
}

/// Where a new target is available when its request does not say: every workspace, or for a
/// caller confined to one workspace, that one.
pub fn default_scope(caller: &Caller) -> WorkspaceScope {
    caller.workspace.map_or(WorkspaceScope::All, |own| WorkspaceScope::Only(vec![own]))
}

/// A target's scope as the API shows it: `(workspaces, all_workspaces)`.
pub fn scope_view(scope: WorkspaceScope) -> (Vec<Uuid>, bool) {
    match scope {
        WorkspaceScope::All => (Vec::new(), true),
        WorkspaceScope::Only(ids) => (ids, false),
    }
}

/// A fresh signing secret: the text to show once, and its sealed form to store.
pub fn new_signing_secret(state: &AppState, now: Millis) -> (SigningSecret, StoredSecret) {
    let secret = SigningSecret::from_bytes(random_bytes());
    let id = Uuid::now_v7();
    let ciphertext = state.secret_box.seal(secret.expose().as_bytes(), &signing_secret_binding(id));
    (secret, StoredSecret { id, ciphertext, created_at: now, expires_at: None })
}

/// A time given as RFC 3339 (`2026-11-24T10:00:00Z`) or as a duration back from `now` (`24h`,
/// `7days`); `<scope>.invalid_request` otherwise.
pub fn parse_time(scope: Scope, field: &str, value: &str, now: Millis) -> Result<Millis, ApiError> {
    parse_rfc3339(value).or_else(|| humantime::parse_duration(value).ok().map(|d| now - d.as_millis() as Millis)).ok_or_else(|| {
        ApiError::invalid_request(scope, format!("{field} is an RFC 3339 time (2026-11-24T10:00:00Z) or a duration back from now (24h)"))
    })
}

/// For `#[serde(default, deserialize_with = "sent")]`: tells a field sent as null (`Some(Null)`)
/// from a missing one (`None`).
pub fn sent<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A page's size: `limit` if given (1 to `max`), else 100.
pub fn page_limit(scope: Scope, limit: Option<u32>, max: u32) -> Result<u32, ApiError> {
    match limit.unwrap_or(100) {
        n if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_request(scope, format!("limit must be from 1 to {max}"))),
    }
}

/// The cursor of the page after `page` (the key of its last item), if `page` is full.
pub fn next_cursor<T, C>(page: &[T], limit: u32, key: impl Fn(&T) -> C) -> Option<C> {
    page.last().filter(|_| page.len() == limit as usize).map(key)
}

/// For `#[serde(default, deserialize_with = "present")]`: tells a field sent as null
/// (`Some(None)`) from a missing one (`None`).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// For `#[serde(default, deserialize_with = "whole")]` on an optional count: `20` or `20.0`.
pub fn whole<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    let Some(value) = Option::<Value>::deserialize(d)? else { return Ok(None) };
    whole_number(&value)
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::invalid_value(serde::de::Unexpected::Other(&value.to_string()), &"a whole number in range"))
}

/// A `rate_limit` as sent: `None` when missing, `Some(None)` for null (no limit), or the limit;
/// `<scope>.invalid_request` otherwise.
pub fn checked_rate_limit(scope: Scope, sent: Option<&Value>) -> Result<Option<Option<u32>>, ApiError> {
    sent.map(parse_rate_limit).transpose().map_err(|m| ApiError::invalid_request(scope, m))
}

/// A refused receiver authentication: `<scope>.invalid_auth`, `.secret_required` or
/// `.invalid_certificate`.
pub fn auth_error(scope: Scope, e: AuthError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, scope, e.reason(), e.to_string())
}

/// A receiver authentication as sent, checked (its token URL against the URL policy too), with
/// the secrets it omits kept from `stored`; `None` when it asks for nothing.
pub async fn resolved_receiver_auth(
    state: &AppState,
    scope: Scope,
    input: ReceiverAuthInput,
    stored: Option<&(ReceiverAuth, AuthSecrets)>,
) -> Result<Option<(ReceiverAuth, AuthSecrets)>, ApiError> {
    let (mut auth, secrets) = receiver_auth::resolve(input, stored.map(|(a, s)| (a, s))).map_err(|e| auth_error(scope, e))?;
    if let Some(oauth) = &mut auth.oauth2 {
        oauth.token_url = checked_url(state, scope, Some(&oauth.token_url))
            .await
            .map_err(|e| ApiError { message: format!("receiver_auth.oauth2.token_url: {}", e.message), ..e })?;
    }
    Ok((!auth.is_empty()).then_some((auth, secrets)))
}

/// A receiver authentication to store for target `id`: `sent` checked, secrets it omits kept from
/// `stored`, and sealed to the target; `None` when it asks for nothing (or was sent as null).
pub async fn sealed_receiver_auth(
    state: &AppState,
    scope: Scope,
    id: TargetId,
    sent: Option<ReceiverAuthInput>,
    stored: Option<&StoredReceiverAuth>,
) -> Result<Option<StoredReceiverAuth>, ApiError> {
    let Some(input) = sent else { return Ok(None) };
    let opened = stored.map(|s| state.secret_box.open_receiver_auth(id, s)).transpose().map_err(|e| {
        tracing::error!(%id, error = %e, "stored receiver authentication does not open");
        ApiError::internal(scope)
    })?;
    let resolved = resolved_receiver_auth(state, scope, input, opened.as_ref()).await?;
    Ok(resolved.map(|(settings, secrets)| StoredReceiverAuth { sealed_secrets: state.secret_box.seal_auth_secrets(id, &secrets), settings }))
}
