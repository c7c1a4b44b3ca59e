//! The caller's own account and its settings (payload retention).

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::whole;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::{Account, Caller};
use crate::domain::retention::{check_retention_days, retention_ms};
use crate::domain::time::rfc3339;

const SCOPE: Scope = Scope::Account;

#[derive(Serialize, ToSchema)]
pub struct AccountView {
    id: Uuid,
    name: String,
    /// The account's own retention of payloads, in days; null: the server's default.
    retention_days: Option<u32>,
    /// The retention that applies, in seconds: payloads (event data, activation records,
    /// response excerpts) older than this are deleted.
    effective_retention_seconds: u64,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct AccountOne {
    account: AccountView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// 1 to 3650 days, or null to use the server's default (`--retention`). Required.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, required = true, minimum = 1, maximum = 3650)]
    retention_days: Option<Option<u32>>,
}

/// Tells a field sent as null (`Some(None)`) from a missing one (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    whole(d).map(Some)
}

fn view(state: &AppState, account: Account) -> AccountOne {
    let effective = retention_ms(state.retention, account.retention_days) / 1000;
    AccountOne {
        account: AccountView {
            id: account.id.into(),
            name: account.name,
            retention_days: account.retention_days,
            effective_retention_seconds: effective as u64,
            created_at: rfc3339(account.created_at),
        },
    }
}

async fn load(state: &AppState, caller: &Caller) -> Result<Account, ApiError> {
    state.store.accounts.get_account(caller.account_id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "account"))
}

/// The account the token belongs to, with its retention.
#[utoipa::path(post, path = "/api/account-get", tag = "account",
    responses((status = 200, body = Success<AccountOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<AccountOne> {
    let account = load(&state, &caller).await?;
    success(view(&state, account))
}

/// Set how long the account's payloads are kept (`retention_days`, or null for the default).
#[utoipa::path(post, path = "/api/account-update", tag = "account", request_body = UpdateAccount,
    responses((status = 200, body = Success<AccountOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<UpdateAccount>) -> ApiResult<AccountOne> {
    let days = req.retention_days.ok_or_else(|| ApiError::invalid_request(SCOPE, "retention_days is required: a number of days, or null"))?;
    if let Some(days) = days {
        check_retention_days(days).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
    }
    if !state.store.accounts.set_account_retention(caller.account_id, days).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "account"));
    }
    let account = load(&state, &caller).await?;
    success(view(&state, account))
}
