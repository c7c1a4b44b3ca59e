//! The error envelope: `{"ok": false, "error": {"code": "webhooks.invalid_url", "message": "…"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The resource an API call belongs to; the first half of every error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Api,
    Auth,
    Webhooks,
    Events,
    Workspaces,
    EventTypes,
    Deliveries,
    Integrations,
    Mailers,
    Destinations,
    Activations,
    Account,
    Accounts,
    Tokens,
    Audit,
    PortalSessions,
    Tasks,
    Suppressions,
    /// Providers' event webhooks (`/inbound/mail/…`).
    Inbound,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Auth => "auth",
            Self::Webhooks => "webhooks",
            Self::Events => "events",
            Self::Workspaces => "workspaces",
            Self::EventTypes => "event_types",
            Self::Deliveries => "deliveries",
            Self::Integrations => "integrations",
            Self::Mailers => "mailers",
            Self::Destinations => "destinations",
            Self::Activations => "activations",
            Self::Account => "account",
            Self::Accounts => "accounts",
            Self::Tokens => "tokens",
            Self::Audit => "audit",
            Self::PortalSessions => "portal_sessions",
            Self::Tasks => "tasks",
            Self::Suppressions => "suppressions",
            Self::Inbound => "inbound",
        }
    }

    /// The scope of `/api/<resource>-<verb>`.
    pub fn from_path(path: &str) -> Option<Self> {
        const CALLS: [(&str, Scope); 19] = [
            ("webhooks-", Scope::Webhooks),
            ("events-", Scope::Events),
            ("events.", Scope::Events), // the CSV export, `events.csv`
            ("workspaces-", Scope::Workspaces),
            ("event-types-", Scope::EventTypes),
            ("deliveries-", Scope::Deliveries),
            ("integrations-", Scope::Integrations),
            ("integration-kinds-", Scope::Integrations),
            ("mailers-", Scope::Mailers),
            ("mailer-providers-", Scope::Mailers),
            ("destinations-", Scope::Destinations),
            ("activations-", Scope::Activations),
            ("account-", Scope::Account),
            ("accounts-", Scope::Accounts),
            ("tokens-", Scope::Tokens),
            ("audit-", Scope::Audit),
            ("portal-sessions-", Scope::PortalSessions),
            ("tasks-", Scope::Tasks),
            ("suppressions-", Scope::Suppressions),
        ];
        let call = path.strip_prefix("/api/")?;
        CALLS.into_iter().find(|(prefix, _)| call.starts_with(prefix)).map(|(_, scope)| scope)
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `<resource>.<reason>`, e.g. `webhooks.invalid_url`.
    pub code: String,
    pub message: String,
}

/// Every failed call answers with this body.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always false.
    pub ok: bool,
    pub error: ErrorDetail,
}

impl ApiError {
    pub fn new(status: StatusCode, scope: Scope, reason: &str, message: impl Into<String>) -> Self {
        Self { status, code: format!("{}.{reason}", scope.as_str()), message: message.into() }
    }

    pub fn invalid_request(scope: Scope, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, scope, "invalid_request", message)
    }

    pub fn invalid_id(scope: Scope, field: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, scope, "invalid_id", format!("{field} must be a UUID"))
    }

    pub fn payload_too_large(scope: Scope, limit: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, scope, "payload_too_large", format!("the request body is larger than {limit} bytes"))
    }

    /// A failure of the server's own, without details (those go to the log).
    pub fn internal(scope: Scope) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, scope, "internal", "server error")
    }

    pub fn not_found(scope: Scope, what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, scope, "not_found", format!("{what} does not exist"))
    }

    pub fn store(scope: Scope, error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, scope, "unavailable", "the database is unavailable; retry shortly")
            }
            StoreError::Conflict(what) => Self::new(StatusCode::CONFLICT, scope, &format!("{what}_taken"), format!("that {what} is already taken")),
            StoreError::Internal(_) => {
                tracing::error!(%error, "database error");
                Self::internal(scope)
            }
        }
    }
}

/// `result.or_store_error(scope)?` turns a store failure into the scope's 500/503 answer.
pub trait OrStoreError<T> {
    fn or_store_error(self, scope: Scope) -> Result<T, ApiError>;
}

impl<T> OrStoreError<T> for Result<T, StoreError> {
    fn or_store_error(self, scope: Scope) -> Result<T, ApiError> {
        self.map_err(|e| ApiError::store(scope, e))
    }
}

impl ApiError {
    fn body(self) -> ErrorBody {
        ErrorBody { ok: false, error: ErrorDetail { code: self.code, message: self.message } }
    }

    /// The envelope as JSON bytes, for answers written below axum (`server::connections`).
    pub fn body_bytes(self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// The answer when a handler panicked: the 500 envelope, without the panic's text (the panic hook
/// has logged it, with its location, for the operator).
pub fn panic_response(_panic: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::internal(Scope::Api).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_comes_from_the_call_name() {
        assert_eq!(Scope::from_path("/api/webhooks-create"), Some(Scope::Webhooks));
        assert_eq!(Scope::from_path("/api/webhooks-rotate-secret"), Some(Scope::Webhooks));
        assert_eq!(Scope::from_path("/api/event-types-list"), Some(Scope::EventTypes));
        assert_eq!(Scope::from_path("/api/events-send-batch"), Some(Scope::Events));
        assert_eq!(Scope::from_path("/api/deliveries-retry"), Some(Scope::Deliveries));
        assert_eq!(Scope::from_path("/api/integration-kinds-list"), Some(Scope::Integrations));
        assert_eq!(Scope::from_path("/api/account-update"), Some(Scope::Account));
        assert_eq!(Scope::from_path("/api/accounts-create"), Some(Scope::Accounts));
        assert_eq!(Scope::from_path("/api/tokens-revoke"), Some(Scope::Tokens));
        assert_eq!(Scope::from_path("/api/tasks-get"), Some(Scope::Tasks));
        assert_eq!(Scope::from_path("/api/events.csv"), Some(Scope::Events));
        assert_eq!(Scope::from_path("/api/webhooks-recover"), Some(Scope::Webhooks));
        assert_eq!(Scope::from_path("/api/eventsx-send"), None);
        assert_eq!(Scope::from_path("/healthz"), None);
    }
}
