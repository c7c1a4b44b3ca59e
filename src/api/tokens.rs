//! API tokens by API: created with a name, a scope and an optional expiry, listed without the
//! token itself, revoked at once. The operator manages any account's (`account_id`); a full-scope
//! token manages its own account's.

use axum::extract::{FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::whole;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, Principal, forbidden, parse_id};
use super::{ApiResult, AppState, success};
use crate::crypto::api_token;
use crate::domain::access::{TokenScope, check_token_name, token_expiry};
use crate::domain::account::Token;
use crate::domain::ids::AccountId;
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::Tokens;

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: Uuid,
    account_id: Uuid,
    name: String,
    scope: TokenScope,
    /// The token's first characters, to tell it from others; the token itself is never shown
    /// again after `tokens-create`.
    prefix: String,
    created_at: String,
    expires_at: Option<String>,
    /// Noted at most once a minute.
    last_used_at: Option<String>,
}

impl From<Token> for TokenView {
    fn from(t: Token) -> Self {
        Self {
            id: t.id,
            account_id: t.account_id.into(),
            name: t.name,
            scope: t.scope,
            prefix: t.prefix,
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Required with the operator credential; with an account's token, its own account (or absent).
    #[schema(format = Uuid)]
    account_id: Option<String>,
    /// What the token is for (`backend`, `CI`): 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    /// Default `full`.
    scope: Option<TokenScope>,
    /// Seconds until it stops working (60 to ten years); absent: never.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 315360000)]
    expires_in: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    /// The token: shown only this once.
    token: String,
    info: TokenView,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTokens {
    /// Required with the operator credential.
    #[schema(format = Uuid)]
    account_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<TokenView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeToken {
    /// Required with the operator credential.
    #[schema(format = Uuid)]
    account_id: Option<String>,
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenRevoked {
    id: Uuid,
    revoked: bool,
}

/// Who may manage tokens: the operator, or a full-scope token (for its own account). Anyone else
/// is refused before the request is read.
pub enum Manager {
    Operator,
    Account(AccountId),
}

impl<S: Send + Sync> FromRequestParts<S> for Manager
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Operator => Ok(Manager::Operator),
            Principal::Account(caller) if caller.scope == TokenScope::Full => Ok(Manager::Account(caller.account_id)),
            Principal::Account(_) => Err(forbidden("managing tokens takes a full-scope token or the operator credential")),
        }
    }
}

/// The account whose tokens the call is about: the operator names it (and it must exist, not
/// being deleted); a token may name only its own.
pub(super) async fn account_of(state: &AppState, scope: Scope, manager: Manager, named: Option<&str>) -> Result<AccountId, ApiError> {
    let named: Option<AccountId> = named.map(|id| parse_id(scope, "account_id", id)).transpose()?;
    match manager {
        Manager::Operator => {
            let id = named.ok_or_else(|| ApiError::invalid_request(scope, "account_id is required with the operator credential"))?;
            let account = state.store.accounts.get_account(id).await.or_store_error(scope)?;
            account.filter(|a| a.deleting_since.is_none()).map(|a| a.id).ok_or_else(|| ApiError::not_found(Scope::Accounts, "account"))
        }
        Manager::Account(own) if named.is_some_and(|id| id != own) => Err(ApiError::not_found(Scope::Accounts, "account")),
        Manager::Account(own) => Ok(own),
    }
}

/// Create a token for an account. The answer holds the token: it is shown only this once.
#[utoipa::path(post, path = "/api/tokens-create", tag = "tokens", request_body = CreateToken,
    responses((status = 200, body = super::Success<TokenCreated>)))]
pub async fn create(State(state): State<AppState>, manager: Manager, ApiJson(req): ApiJson<CreateToken>) -> ApiResult<TokenCreated> {
    let account = account_of(&state, SCOPE, manager, req.account_id.as_deref()).await?;
    check_token_name(&req.name).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
    let now = now_ms();
    let expires_at = token_expiry(now, req.expires_in).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
    let (token, record) = api_token::issue(account, req.name.trim(), req.scope.unwrap_or_default(), now, expires_at);
    state.store.accounts.insert_token(&record).await.or_store_error(SCOPE)?;
    success(TokenCreated { token, info: record.into() })
}

/// An account's tokens (never the tokens themselves).
#[utoipa::path(post, path = "/api/tokens-list", tag = "tokens", request_body = ListTokens,
    responses((status = 200, body = super::Success<TokenList>)))]
pub async fn list(State(state): State<AppState>, manager: Manager, ApiJson(req): ApiJson<ListTokens>) -> ApiResult<TokenList> {
    let account = account_of(&state, SCOPE, manager, req.account_id.as_deref()).await?;
    let tokens = state.store.accounts.list_tokens(account).await.or_store_error(SCOPE)?;
    success(TokenList { tokens: tokens.into_iter().map(Into::into).collect() })
}

/// Revoke a token: it stops working at once on this server, and within a second on every other.
#[utoipa::path(post, path = "/api/tokens-revoke", tag = "tokens", request_body = RevokeToken,
    responses((status = 200, body = super::Success<TokenRevoked>)))]
pub async fn revoke(State(state): State<AppState>, manager: Manager, ApiJson(req): ApiJson<RevokeToken>) -> ApiResult<TokenRevoked> {
    let account = account_of(&state, SCOPE, manager, req.account_id.as_deref()).await?;
    let id: Uuid = parse_id(SCOPE, "id", &req.id)?;
    if !state.store.accounts.revoke_token(account, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "token"));
    }
    state.caches.callers.retain(|caller| caller.token_id != id);
    success(TokenRevoked { id, revoked: true })
}
