//! The account's suppression list (issue 18): addresses its mailers never send to again, filled
//! by the providers' event webhooks (`inbound.rs`) or by hand; listed and removed here.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{next_cursor, page_limit, whole};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::ApiJson;
use super::{ApiResult, AppState, success};
use crate::domain::account::Caller;
use crate::domain::mailer::{MailerProvider, valid_address};
use crate::domain::suppression::{MAX_DETAIL_CHARS, Suppression, SuppressionFilter, SuppressionReason, normalized_address};
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::Suppressions;

#[derive(Serialize, ToSchema)]
pub struct SuppressionView {
    /// Lowercased.
    address: String,
    reason: SuppressionReason,
    /// The provider whose event webhook reported it; null for manual entries.
    provider: Option<MailerProvider>,
    /// The mailer whose event webhook reported it.
    mailer_id: Option<Uuid>,
    /// What the provider said (a bounce's diagnostic), or a manual entry's note.
    detail: Option<String>,
    first_seen: String,
    last_event: String,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        Self {
            address: s.address,
            reason: s.reason,
            provider: s.provider,
            mailer_id: s.mailer_id.map(Into::into),
            detail: s.detail,
            first_seen: rfc3339(s.first_seen),
            last_event: rfc3339(s.last_event),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSuppressions {
    /// Only addresses containing this text (any case).
    #[schema(max_length = 254)]
    address: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500; default 100. A whole number written as a float (`100.0`) is one too.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionPage {
    /// In address order.
    suppressions: Vec<SuppressionView>,
    /// Give it as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionAddress {
    #[schema(max_length = 254)]
    address: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSuppression {
    #[schema(max_length = 254)]
    address: String,
    /// Why, in a few words (kept as the entry's detail).
    #[schema(max_length = 500)]
    note: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionOne {
    suppression: SuppressionView,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionDeleted {
    address: String,
    deleted: bool,
}

/// The address given, lowercased, if it is one.
fn checked_address(address: &str) -> Result<String, ApiError> {
    let address = normalized_address(address);
    if valid_address(&address) {
        Ok(address)
    } else {
        Err(ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_address", format!("'{address}' is not an e-mail address")))
    }
}

/// List the account's suppressed addresses: hard bounces and complaints its mailers' providers
/// reported, and manual entries. Mail to them ends without sending.
#[utoipa::path(post, path = "/api/suppressions-list", tag = "suppressions", request_body = ListSuppressions,
    responses((status = 200, body = super::Success<SuppressionPage>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListSuppressions>) -> ApiResult<SuppressionPage> {
    let limit = page_limit(SCOPE, req.limit, 500)?;
    // The longest an e-mail address may be: a longer search text could match nothing.
    if req.address.as_ref().is_some_and(|a| a.chars().count() > 254) {
        return Err(ApiError::invalid_request(SCOPE, "address: at most 254 characters"));
    }
    let filter = SuppressionFilter { address_contains: req.address.filter(|a| !a.trim().is_empty()), after: req.cursor, limit };
    let page = state.store.suppressions.list_suppressions(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    let next_cursor = next_cursor(&page, limit, |s| s.address.clone());
    success(SuppressionPage { suppressions: page.into_iter().map(Into::into).collect(), next_cursor })
}

/// Suppress an address by hand (reason `manual`): the account's mailers send nothing to it.
#[utoipa::path(post, path = "/api/suppressions-create", tag = "suppressions", request_body = CreateSuppression,
    responses((status = 200, body = super::Success<SuppressionOne>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateSuppression>) -> ApiResult<SuppressionOne> {
    let now = now_ms();
    let suppression = Suppression {
        account_id: caller.account_id,
        address: checked_address(&req.address)?,
        reason: SuppressionReason::Manual,
        provider: None,
        mailer_id: None,
        detail: req.note.map(|n| n.chars().take(MAX_DETAIL_CHARS).collect()).filter(|n: &String| !n.trim().is_empty()),
        first_seen: now,
        last_event: now,
    };
    state.store.suppressions.suppress(std::slice::from_ref(&suppression)).await.or_store_error(SCOPE)?;
    // An address suppressed before keeps its first sighting.
    let stored = state.store.settings.suppression(caller.account_id, &suppression.address).await.or_store_error(SCOPE)?;
    success(SuppressionOne { suppression: stored.unwrap_or(suppression).into() })
}

/// Remove an address from the suppression list: mail goes to it again (until its provider
/// reports another hard bounce or complaint).
#[utoipa::path(post, path = "/api/suppressions-delete", tag = "suppressions", request_body = SuppressionAddress,
    responses((status = 200, body = super::Success<SuppressionDeleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<SuppressionAddress>) -> ApiResult<SuppressionDeleted> {
    let address = normalized_address(&req.address);
    if !state.store.suppressions.delete_suppression(caller.account_id, &address).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "suppression"));
    }
    success(SuppressionDeleted { address, deleted: true })
}
