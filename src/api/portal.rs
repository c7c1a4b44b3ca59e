//! The embeddable portal: `portal-sessions-create` (the operator, or a full-scope token) gives a
//! one-time link; `/portal?code=…` serves the UI, framable only by the link's allowed origins; the
//! page spends the code (`portal-sessions-exchange`) for a session token it keeps in the browser
//! tab and sends as a bearer token. No cookie is involved, so another site's forms and scripts
//! cannot act with the session (no CSRF), and the session cannot reach the account's tokens
//! (`TokenScope::Portal`).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::whole;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, parse_id};
use super::tokens::{Manager, account_of};
use super::{ApiResult, AppState, success, ui};
use crate::crypto::api_token;
use crate::domain::ids::AccountId;
use crate::domain::portal::{
    CODE_LIFE_MS, DEFAULT_SESSION_SECONDS, MAX_ORIGINS, MAX_SESSION_SECONDS, MIN_SESSION_SECONDS, PortalSession, Theme, check_origin, frame_ancestors,
};
use crate::domain::time::{Millis, now_ms, rfc3339};

const SCOPE: Scope = Scope::PortalSessions;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePortalSession {
    /// Required with the operator credential; with a full-scope token, its own account (or absent).
    #[schema(format = Uuid)]
    account_id: Option<String>,
    /// How long the session lasts once opened: 60 to 86400 seconds; default 3600.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 60, maximum = 86400)]
    expires_in: Option<u64>,
    /// Origins that may show the portal in a frame (`https://app.example.com`); none: it can only
    /// be opened on its own.
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    theme: Theme,
    /// Confine the session to this workspace of the account: it then sees and creates only
    /// targets available in that workspace alone, with their deliveries, and that workspace's
    /// events; it cannot change workspaces or event types, or read the audit log.
    #[schema(format = Uuid)]
    workspace_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PortalLink {
    id: Uuid,
    /// Open (or frame) this once, within 10 minutes.
    url: String,
    /// The same, relative to the server.
    path: String,
    code_expires_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeCode {
    /// The `code` of a portal link.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct PortalSessionView {
    /// Send as `Authorization: Bearer …` until `expires_at`.
    session_token: String,
    expires_at: String,
    theme: Theme,
    /// The workspace the session is confined to, if any.
    workspace_id: Option<Uuid>,
}

/// Create a one-time link that opens the portal for one account.
#[utoipa::path(post, path = "/api/portal-sessions-create", tag = "portal", request_body = CreatePortalSession,
    responses((status = 200, body = super::Success<PortalLink>)))]
pub async fn create(
    State(state): State<AppState>,
    manager: Manager,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreatePortalSession>,
) -> ApiResult<PortalLink> {
    let account_id = account_of(&state, SCOPE, manager, req.account_id.as_deref()).await?;
    let invalid = |m: String| ApiError::invalid_request(SCOPE, m);
    let seconds = req.expires_in.unwrap_or(DEFAULT_SESSION_SECONDS);
    if !(MIN_SESSION_SECONDS..=MAX_SESSION_SECONDS).contains(&seconds) {
        return Err(invalid(format!("expires_in must be from {MIN_SESSION_SECONDS} to {MAX_SESSION_SECONDS} seconds")));
    }
    if req.allowed_origins.len() > MAX_ORIGINS {
        return Err(invalid(format!("at most {MAX_ORIGINS} allowed_origins")));
    }
    let allowed_origins = req.allowed_origins.iter().map(|o| check_origin(o)).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
    req.theme.check().map_err(invalid)?;
    let workspace_id = match req.workspace_id.as_deref() {
        Some(id) => Some(workspace_of(&state, account_id, id).await?),
        None => None,
    };
    let now = now_ms();
    let code = api_token::generate_portal_code();
    let session = PortalSession {
        id: Uuid::now_v7(),
        account_id,
        code_digest: api_token::digest(&code),
        code_expires_at: now + CODE_LIFE_MS,
        session_digest: None,
        expires_at: now + (seconds * 1000) as Millis,
        allowed_origins,
        theme: req.theme,
        workspace_id,
        created_at: now,
    };
    state.store.portal.insert_portal_session(&session).await.or_store_error(SCOPE)?;
    let path = format!("/portal?code={code}");
    success(PortalLink { id: session.id, url: format!("{}{path}", origin_of(&headers)), path, code_expires_at: rfc3339(session.code_expires_at) })
}

/// The workspace `id` of the account, or `portal_sessions.workspace_not_found`.
async fn workspace_of(state: &AppState, account_id: AccountId, id: &str) -> Result<Uuid, ApiError> {
    let id = parse_id(SCOPE, "workspace_id", id)?;
    match state.store.accounts.get_workspace(account_id, id).await.or_store_error(SCOPE)? {
        Some(workspace) => Ok(workspace.id),
        None => Err(ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "workspace_not_found", format!("workspace {id} does not exist in this account"))),
    }
}

/// Where the server was reached, as the caller named it (behind a TLS proxy that says so, https).
pub(super) fn origin_of(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let https = headers.get("x-forwarded-proto").is_some_and(|p| p.as_bytes() == b"https");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Spend a portal link's code for a session token (once; no credential needed).
#[utoipa::path(post, path = "/api/portal-sessions-exchange", tag = "portal", request_body = ExchangeCode, security(()),
    responses((status = 200, body = super::Success<PortalSessionView>)))]
pub async fn exchange(State(state): State<AppState>, ApiJson(req): ApiJson<ExchangeCode>) -> ApiResult<PortalSessionView> {
    let token = api_token::generate_portal_session();
    let spent =
        state.store.portal.exchange_portal_code(&api_token::digest(&req.code), &api_token::digest(&token), now_ms()).await.or_store_error(SCOPE)?;
    let session = spent.ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, SCOPE, "code_invalid", "this portal link is unknown, expired or was already opened; ask for a new one")
    })?;
    success(PortalSessionView {
        session_token: token,
        expires_at: rfc3339(session.expires_at),
        theme: session.theme,
        workspace_id: session.workspace_id,
    })
}

#[derive(Deserialize)]
pub struct PortalQuery {
    code: Option<String>,
}

/// `/portal?code=…`: the UI, which may be framed only by the link's allowed origins (if its code
/// is unknown, by none; the page then says the link is spent). The code is not given to other
/// sites as a referrer.
pub async fn page(State(state): State<AppState>, Query(query): Query<PortalQuery>) -> Response {
    let origins = match query.code {
        Some(code) => match state.store.portal.portal_session_by_code(&api_token::digest(&code), now_ms()).await {
            Ok(session) => session.map(|s| s.allowed_origins).unwrap_or_default(),
            Err(e) => return ApiError::store(SCOPE, e).into_response(),
        },
        None => Vec::new(),
    };
    let mut response = ui::index().await.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&frame_ancestors(&origins)).expect("origins are ASCII"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
