//! Request extractors: the caller behind a bearer token, and JSON bodies with the API's errors.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::audit::AuditNote;
use super::confine::{self, Confined};
use super::error::{ApiError, OrStoreError, Scope};
use crate::crypto::api_token;
use crate::domain::access::TokenScope;
use crate::domain::account::Caller;
use crate::domain::time::{Millis, now_ms};

/// Who is calling, before the call says whom it takes: the operator (`--operator-token`) or an
/// account's token.
#[derive(Clone, Copy, Debug)]
pub enum Principal {
    Operator,
    Account(Caller),
}

/// The operator, for the admin calls: an account's token is refused.
pub struct Operator;

/// A token's use is written down at most this often (a write per call would be a write per event).
const MARK_USED_EVERY: Millis = 60_000;

pub fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, Scope::Auth, "forbidden", message)
}

/// The bearer token of the request.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let unauthorized = |reason: &str, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, Scope::Auth, reason, message);
    let header =
        parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| unauthorized("missing_token", "send Authorization: Bearer <token>"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("invalid_token", "the Authorization header must be 'Bearer <token>'"))
}

impl<S: Send + Sync> FromRequestParts<S> for Principal
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let principal = identify(parts, &AppState::from_ref(state)).await?;
        if let Some(note) = parts.extensions.get::<AuditNote>() {
            note.principal(principal);
        }
        Ok(principal)
    }
}

/// The operator or the account's token behind the request's bearer token.
async fn identify(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let token = bearer(parts)?;
    let digest = api_token::digest(token);
    if state.operator.as_deref() == Some(digest.as_str()) {
        return Ok(Principal::Operator);
    }
    if let Some(caller) = state.caches.callers.get(&digest) {
        return Ok(Principal::Account(caller));
    }
    // A database outage answers in the call's own scope (`events.unavailable`, …).
    let scope = Scope::from_path(parts.uri.path()).unwrap_or(Scope::Auth);
    let now = now_ms();
    if api_token::is_portal_session(token) {
        let session = state.store.portal.portal_session_by_token(&digest, now).await.or_store_error(scope)?;
        let session = session
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, Scope::Auth, "invalid_token", "the portal session is not valid or expired"))?;
        let caller = Caller { account_id: session.account_id, token_id: session.id, scope: TokenScope::Portal, workspace: session.workspace_id };
        state.caches.callers.put(digest, caller);
        return Ok(Principal::Account(caller));
    }
    let found = state.store.accounts.token_by_digest(&digest, now).await.or_store_error(scope)?;
    let found = found.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, Scope::Auth, "invalid_token", "the API token is not valid"))?;
    if found.last_used_at.is_none_or(|at| at + MARK_USED_EVERY <= now) {
        let accounts = state.store.accounts.clone();
        tokio::spawn(async move {
            if let Err(e) = accounts.mark_token_used(found.caller.token_id, now).await {
                tracing::debug!(error = %e, "could not note a token's use");
            }
        });
    }
    state.caches.callers.put(digest, found.caller);
    Ok(Principal::Account(found.caller))
}

/// An account's caller whose token's scope allows this call (`domain::access`).
impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = match Principal::from_request_parts(parts, state).await? {
            Principal::Operator => return Err(forbidden("the operator credential calls the admin API only; call this with a token of the account")),
            Principal::Account(caller) => caller,
        };
        let call = parts.uri.path().strip_prefix("/api/").unwrap_or_default();
        if !caller.allows(call) {
            let whose = if caller.workspace.is_some() {
                "a portal session confined to one workspace".to_owned()
            } else {
                format!("this token's scope ({})", caller.scope.as_str())
            };
            return Err(forbidden(&format!("{whose} does not allow {call}")));
        }
        if caller.workspace.is_some() {
            parts.extensions.insert(Confined(caller));
        }
        Ok(caller)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Operator
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if AppState::from_ref(state).operator.is_none() {
            // Checked first: whatever the token, nobody can be the operator.
            bearer(parts)?;
            return Err(forbidden("no operator credential is set on this server (--operator-token)"));
        }
        match Principal::from_request_parts(parts, state).await? {
            Principal::Operator => Ok(Operator),
            Principal::Account(_) => Err(forbidden("this call takes the operator credential, not an account's token")),
        }
    }
}

/// A JSON object as the request body, bounded by the configured size. No body at all reads as
/// `{}`, so list calls work with or without `-d '{}'`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequest<S> for ApiJson<T>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let scope = call_scope(req.uri().path());
        let too_slow = || {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                scope,
                "request_timeout",
                format!("the request body did not arrive within {}", humantime::format_duration(state.body_read_timeout)),
            )
        };
        let note = req.extensions().get::<AuditNote>().cloned();
        let confined = req.extensions().get::<Confined>().copied();
        let call = req.uri().path().strip_prefix("/api/").unwrap_or_default().to_owned();
        let reading = axum::body::to_bytes(req.into_body(), state.max_body_bytes);
        let bytes = tokio::time::timeout(state.body_read_timeout, reading).await.map_err(|_| too_slow())?.map_err(|e| {
            if caused_by::<http_body_util::LengthLimitError>(&e) {
                ApiError::payload_too_large(scope, state.max_body_bytes)
            } else if caused_by::<tower_http::timeout::TimeoutError>(&e) {
                too_slow()
            } else {
                ApiError::invalid_request(scope, format!("could not read the request body: {e}"))
            }
        })?;
        if let Some(note) = &note {
            note.body(&bytes);
        }
        // Only an object: serde would also read a struct from an array of its fields.
        let text: &[u8] = match bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            _ if bytes.is_empty() => b"{}",
            Some(b'{') => &bytes,
            _ => return Err(ApiError::invalid_request(scope, "malformed request body: it must be a JSON object")),
        };
        let malformed = |e: serde_json::Error| ApiError::invalid_request(scope, format!("malformed request body: {e}"));
        if let Some(Confined(caller)) = confined {
            let params: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(text).map_err(malformed)?;
            confine::check_params(&state, &caller, &call, &params).await?;
        }
        let parsed = serde_json::from_slice(text).map_err(malformed)?;
        // The last step before the handler: a change's audit entry is filed before it is made.
        if let Some(note) = note {
            note.open(state.store.audit.as_ref(), &call, scope).await?;
        }
        Ok(ApiJson(parsed))
    }
}

/// Whether an error of type `E` is anywhere in `error`'s chain of sources.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<E>())
}

/// The body of a call without parameters: any JSON object (ignored), or nothing.
pub type NoParams = serde_json::Map<String, serde_json::Value>;

/// For calls whose request is all in the URL (`GET /api/events.csv`): a body is refused rather
/// than ignored.
pub struct NoBody;

impl<S: Send + Sync> FromRequestParts<S> for NoBody {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let sized = headers.get(axum::http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0");
        if sized || headers.contains_key(axum::http::header::TRANSFER_ENCODING) {
            return Err(ApiError::invalid_request(call_scope(parts.uri.path()), "this call takes no request body"));
        }
        Ok(NoBody)
    }
}

/// A query string, refused in the call's own scope (`events.invalid_request`) rather than with
/// axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    /// Takes the caller's extractor first (`caller: Caller, ApiQuery(…): …`), so that a caller
    /// confined to a workspace has its parameters checked.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let malformed = |e: String| ApiError::invalid_request(call_scope(parts.uri.path()), format!("malformed query string: {e}"));
        if let Some(Confined(caller)) = parts.extensions.get::<Confined>().copied() {
            let axum::extract::Query(params) =
                axum::extract::Query::<serde_json::Map<String, serde_json::Value>>::try_from_uri(&parts.uri).map_err(|e| malformed(e.body_text()))?;
            let call = parts.uri.path().strip_prefix("/api/").unwrap_or_default();
            confine::check_params(&AppState::from_ref(state), &caller, call, &params).await?;
        }
        axum::extract::Query::try_from_uri(&parts.uri).map(|axum::extract::Query(query)| ApiQuery(query)).map_err(|e| malformed(e.body_text()))
    }
}

/// The scope errors of a request to `path` answer in: its call's, or `api` for no known call.
pub fn call_scope(path: &str) -> Scope {
    Scope::from_path(path).unwrap_or(Scope::Api)
}

/// Parses a UUID field, answering `<scope>.invalid_id` when it is not one. Only the hyphenated
/// form the OpenAPI document's `format: uuid` names (the uuid crate also reads braced, URN and
/// bare-hex forms).
pub fn parse_id<T: From<uuid::Uuid>>(scope: Scope, field: &str, value: &str) -> Result<T, ApiError> {
    Some(value).filter(|v| v.len() == 36).and_then(|v| uuid::Uuid::try_parse(v).ok()).map(T::from).ok_or_else(|| ApiError::invalid_id(scope, field))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hyphenated_uuids_only() {
        let id = "01a20ba4-efaa-76f0-8a3c-0907e49dadeb";
        assert_eq!(parse_id::<uuid::Uuid>(Scope::Webhooks, "id", id).unwrap().to_string(), id);
        assert!(parse_id::<uuid::Uuid>(Scope::Webhooks, "id", &id.to_uppercase()).is_ok());
        for not in ["", "x", " 01a20ba4-efaa-76f0-8a3c-0907e49dadeb", "01a20ba4efaa76f08a3c0907e49dadeb", "{01a20ba4-efaa-76f0-8a3c-0907e49dadeb}"] {
            let err = parse_id::<uuid::Uuid>(Scope::Webhooks, "id", not).unwrap_err();
            assert_eq!(err.code, "webhooks.invalid_id", "{not:?}");
        }
    }
}
