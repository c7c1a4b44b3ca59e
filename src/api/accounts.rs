//! The admin API of a host platform (`--operator-token`): its customers' accounts. Deleting one
//! removes its tokens at once and the rest of its data in bounded batches, in the background.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{checked_name, next_cursor, page_limit, whole};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, Operator, parse_id};
use super::{ApiResult, AppState, success};
use crate::domain::access::check_external_id;
use crate::domain::account::{Account, AccountCreated};
use crate::domain::ids::AccountId;
use crate::domain::time::{now_ms, rfc3339};
use crate::janitor;

const SCOPE: Scope = Scope::Accounts;

#[derive(Serialize, ToSchema)]
pub struct AccountSummary {
    id: Uuid,
    name: String,
    /// The platform's own key for this customer.
    external_id: Option<String>,
    /// `active`, or `deleting` while its data is being removed.
    status: &'static str,
    created_at: String,
}

impl From<Account> for AccountSummary {
    fn from(a: Account) -> Self {
        let status = if a.deleting_since.is_some() { "deleting" } else { "active" };
        Self { id: a.id.into(), name: a.name, external_id: a.external_id, status, created_at: rfc3339(a.created_at) }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Unique; not blank; at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: String,
    /// The platform's own key for this customer: creating again with the same one returns the
    /// existing account (`created: false`).
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9_.:@-]+$")]
    external_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountCreatedView {
    account: AccountSummary,
    /// False when an account with this `external_id` existed already.
    created: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAccounts {
    /// `next_cursor` of the previous page.
    #[schema(format = Uuid)]
    cursor: Option<String>,
    /// 1 to 500; default 100.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountPage {
    accounts: Vec<AccountSummary>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<Uuid>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountRef {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAccount {
    #[schema(format = Uuid)]
    id: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
    /// A new external id; null removes it; absent keeps it.
    #[serde(default, deserialize_with = "super::checks::present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9_.:@-]+$")]
    external_id: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountSummaryOne {
    account: AccountSummary,
}

fn checked_external_id(id: Option<&str>) -> Result<(), ApiError> {
    id.map_or(Ok(()), |id| check_external_id(id).map_err(|m| ApiError::invalid_request(SCOPE, m)))
}

fn required_name(name: &str) -> Result<String, ApiError> {
    let name = checked_name(SCOPE, "name", name)?;
    if name.is_empty() {
        return Err(ApiError::invalid_request(SCOPE, "name is required"));
    }
    Ok(name)
}

async fn load(state: &AppState, id: &str) -> Result<Account, ApiError> {
    let id: AccountId = parse_id(SCOPE, "id", id)?;
    state.store.accounts.get_account(id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "account"))
}

/// Create an account for one of the platform's customers (idempotent on `external_id`).
#[utoipa::path(post, path = "/api/accounts-create", tag = "accounts", request_body = CreateAccount,
    responses((status = 200, body = super::Success<AccountCreatedView>)))]
pub async fn create(State(state): State<AppState>, _: Operator, ApiJson(req): ApiJson<CreateAccount>) -> ApiResult<AccountCreatedView> {
    let name = required_name(&req.name)?;
    checked_external_id(req.external_id.as_deref())?;
    let account = Account::new(&name, req.external_id.as_deref(), now_ms());
    match state.store.accounts.create_account(&account).await.or_store_error(SCOPE)? {
        AccountCreated::Created(a) => success(AccountCreatedView { account: a.into(), created: true }),
        AccountCreated::Existing(a) => success(AccountCreatedView { account: a.into(), created: false }),
        AccountCreated::NameTaken => Err(ApiError::store(SCOPE, crate::store::StoreError::Conflict("name"))),
    }
}

/// The accounts, oldest first, a page at a time.
#[utoipa::path(post, path = "/api/accounts-list", tag = "accounts", request_body = ListAccounts,
    responses((status = 200, body = super::Success<AccountPage>)))]
pub async fn list(State(state): State<AppState>, _: Operator, ApiJson(req): ApiJson<ListAccounts>) -> ApiResult<AccountPage> {
    let limit = page_limit(SCOPE, req.limit, 500)?;
    let after: Option<AccountId> = req.cursor.as_deref().map(|c| parse_id(SCOPE, "cursor", c)).transpose()?;
    let page = state.store.accounts.list_accounts_page(after, limit).await.or_store_error(SCOPE)?;
    let next_cursor = next_cursor(&page, limit, |a| a.id.into());
    success(AccountPage { accounts: page.into_iter().map(Into::into).collect(), next_cursor })
}

/// One account.
#[utoipa::path(post, path = "/api/accounts-get", tag = "accounts", request_body = AccountRef,
    responses((status = 200, body = super::Success<AccountSummaryOne>)))]
pub async fn get(State(state): State<AppState>, _: Operator, ApiJson(req): ApiJson<AccountRef>) -> ApiResult<AccountSummaryOne> {
    success(AccountSummaryOne { account: load(&state, &req.id).await?.into() })
}

/// Rename an account or change its external id.
#[utoipa::path(post, path = "/api/accounts-update", tag = "accounts", request_body = ChangeAccount,
    responses((status = 200, body = super::Success<AccountSummaryOne>)))]
pub async fn update(State(state): State<AppState>, _: Operator, ApiJson(req): ApiJson<ChangeAccount>) -> ApiResult<AccountSummaryOne> {
    let account = load(&state, &req.id).await?;
    let name = req.name.as_deref().map(required_name).transpose()?.unwrap_or(account.name);
    let external_id = req.external_id.unwrap_or(account.external_id);
    checked_external_id(external_id.as_deref())?;
    if !state.store.accounts.update_account(account.id, &name, external_id.as_deref()).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "account"));
    }
    success(AccountSummaryOne { account: load(&state, &req.id).await?.into() })
}

/// Delete an account and everything of it: its tokens stop working at once, its targets stop
/// delivering, and its data is removed in the background (`status: deleting` until then).
#[utoipa::path(post, path = "/api/accounts-delete", tag = "accounts", request_body = AccountRef,
    responses((status = 200, body = super::Success<AccountSummaryOne>)))]
pub async fn delete(State(state): State<AppState>, _: Operator, ApiJson(req): ApiJson<AccountRef>) -> ApiResult<AccountSummaryOne> {
    let account = load(&state, &req.id).await?;
    if state.store.accounts.start_account_deletion(account.id, now_ms()).await.or_store_error(SCOPE)? {
        state.caches.callers.retain(|caller| caller.account_id != account.id);
        state.engine.changed();
        let upkeep = state.store.upkeep.clone();
        tokio::spawn(async move {
            if let Err(e) = janitor::purge_deleted_accounts(upkeep.as_ref()).await {
                tracing::warn!(error = %e, "deleting an account's data failed; the janitor goes on with it");
            }
        });
    }
    success(AccountSummaryOne { account: load(&state, &req.id).await?.into() })
}
