//! Request extractors: the caller behind a bearer token, and JSON bodies with the API's errors.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::error::{ApiError, OrStoreError, Scope};
use crate::crypto::api_token;
use crate::store::Caller;

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let unauthorized = |reason: &str, message: &str| ApiError::new(StatusCode::UNAUTHORIZED, Scope::Auth, reason, message);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing_token", "send Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("invalid_token", "the Authorization header must be 'Bearer <token>'"))?;
        // A database outage answers in the call's own scope (`events.unavailable`, …).
        let scope = Scope::from_path(parts.uri.path()).unwrap_or(Scope::Auth);
        let digest = api_token::digest(token);
        if let Some(caller) = state.caches.callers.get(&digest) {
            return Ok(caller);
        }
        let caller = state
            .store
            .caller_for_token(&digest)
            .await
            .or_store_error(scope)?
            .ok_or_else(|| unauthorized("invalid_token", "the API token is not valid"))?;
        state.caches.callers.put(digest, caller);
        Ok(caller)
    }
}

/// A JSON request body, bounded by the configured size. An empty body reads as `{}`, so
/// list calls work with or without `-d '{}'`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let scope = call_scope(req.uri().path());
        let bytes = axum::body::to_bytes(req.into_body(), state.max_body_bytes).await.map_err(|e| {
            let over_limit = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over_limit {
                ApiError::payload_too_large(scope, state.max_body_bytes)
            } else {
                ApiError::invalid_request(scope, format!("could not read the request body: {e}"))
            }
        })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(text).map(ApiJson).map_err(|e| ApiError::invalid_request(scope, format!("malformed request body: {e}")))
    }
}

/// A query string, refused in the call's own scope (`events.invalid_request`) rather than with
/// axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(query)| ApiQuery(query))
            .map_err(|e| ApiError::invalid_request(call_scope(parts.uri.path()), format!("malformed query string: {}", e.body_text())))
    }
}

/// The scope errors of a request to `path` answer in: its call's, or `api` for no known call.
pub fn call_scope(path: &str) -> Scope {
    Scope::from_path(path).unwrap_or(Scope::Api)
}

/// Parses a UUID field, answering `<scope>.invalid_id` when it is not one.
pub fn parse_id(scope: Scope, field: &str, value: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(value.trim()).map_err(|_| ApiError::invalid_id(scope, field))
}
