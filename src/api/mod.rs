//! The HTTP layer: `POST /api/<resource>-<verb>` calls in seed 003's envelope, plus operations
//! endpoints. Handlers parse, call `domain` to validate, call the store, and shape the answer;
//! nothing here decides delivery behaviour.

mod account;
mod accounts;
mod activations;
mod audit;
mod cache;
mod checks;
pub(crate) mod confine;
mod deliveries;
mod destinations;
mod error;
mod event_types;
mod events;
mod extract;
mod inbound;
mod integrations;
mod mailers;
mod openapi;
mod ops;
mod portal;
mod suppressions;
mod target_ops;
mod tasks;
mod tokens;
mod ui;
mod webhooks;
mod workspaces;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{Method, StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, Scope};

use crate::crypto::secret_box::SecretBox;
use crate::domain::url_policy::UrlPolicy;
use crate::store::{
    AccountStore, ActivationStore, AuditLog, DeliveryLog, EventCommitter, EventStore, PortalSessions, Store, SuppressionStore, TargetSettings,
    TargetStore, Upkeep,
};
use crate::targets::TargetFactory;

/// The store's roles the API works with: each resource's module uses the ones it needs, never the
/// delivery queue's.
#[derive(Clone)]
pub struct StoreRoles {
    pub accounts: Arc<dyn AccountStore>,
    pub targets: Arc<dyn TargetStore>,
    pub settings: Arc<dyn TargetSettings>,
    pub events: Arc<dyn EventStore>,
    pub log: Arc<dyn DeliveryLog>,
    pub activations: Arc<dyn ActivationStore>,
    pub upkeep: Arc<dyn Upkeep>,
    pub audit: Arc<dyn AuditLog>,
    pub portal: Arc<dyn PortalSessions>,
    pub suppressions: Arc<dyn SuppressionStore>,
}

impl StoreRoles {
    pub fn new(store: &Arc<dyn Store>) -> Self {
        Self {
            accounts: store.clone(),
            targets: store.clone(),
            settings: store.clone(),
            events: store.clone(),
            log: store.clone(),
            activations: store.clone(),
            upkeep: store.clone(),
            audit: store.clone(),
            portal: store.clone(),
            suppressions: store.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: StoreRoles,
    /// Accepts events with group commit (`store::group_commit`).
    pub events: EventCommitter,
    /// Callers and event catalogs, fresh for a second (`cache.rs`).
    pub caches: Arc<cache::Caches>,
    /// The digest of the operator credential (`--operator-token`), if one is set.
    pub operator: Option<String>,
    pub secret_box: SecretBox,
    /// Builds integration adapters for Verify Connection.
    pub targets: TargetFactory,
    pub url_policy: UrlPolicy,
    pub max_body_bytes: usize,
    /// How long a JSON body may take to arrive whole; also the longest pause within any body.
    pub body_read_timeout: Duration,
    /// Largest activation upload.
    pub max_upload_bytes: usize,
    pub secret_grace: Duration,
    /// Payload retention when the account sets none (`--retention`).
    pub retention: Duration,
    /// Wakes the delivery engine after new work is committed.
    /// Tells this node's engine of work and changes (a no-op on API-only nodes).
    pub engine: crate::engine::Signal,
    pub metrics: PrometheusHandle,
    /// Spans of accepted events (nothing when tracing is off).
    pub traces: crate::traces::Traces,
}

/// Every successful call answers `{"ok": true, "result": …}`.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always true.
    pub ok: bool,
    pub result: T,
}

pub type ApiResult<T> = Result<Json<Success<T>>, ApiError>;

pub fn success<T>(result: T) -> ApiResult<T> {
    Ok(Json(Success { ok: true, result }))
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> axum::Router {
    let (api, generated) = router_parts();
    // Rendered once: the document is the same for every request.
    let openapi = bytes::Bytes::from(serde_json::to_vec(&openapi::document(&generated)).expect("JSON"));
    let routes = api
        .route("/api/openapi.json", axum::routing::get(move || std::future::ready(([(header::CONTENT_TYPE, "application/json")], openapi.clone()))))
        .merge(ops_routes())
        .route("/", axum::routing::get(ui::index))
        .route("/portal", axum::routing::get(portal::page))
        .route("/inbound/mail/{id}/{token}", axum::routing::post(inbound::receive).head(inbound::probe))
        .route("/ui/{*path}", axum::routing::get(ui::file))
        .route("/favicon.ico", axum::routing::get(ui::favicon))
        .route("/embed.js", axum::routing::get(ui::embed))
        .route("/demo/embed", axum::routing::get(ui::demo_host))
        .route("/demo/experience", axum::routing::get(ui::demo_experience))
        .route("/demo/portal", axum::routing::get(ui::demo_portal));
    with_error_fallbacks(routes)
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(RequestBodyTimeoutLayer::new(state.body_read_timeout))
        .with_state(state)
        .layer(answer_panics())
}

/// Every `/api/*` call, each registered together with its OpenAPI entry, so the document served
/// at `/api/openapi.json` cannot drift from the code; and that document as utoipa generates it.
fn router_parts() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(webhooks::create))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::get))
        .routes(routes!(webhooks::update))
        .routes(routes!(webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::stats))
        .routes(routes!(webhooks::recover))
        .routes(routes!(events::send))
        .routes(routes!(events::send_batch))
        .routes(routes!(events::list))
        .routes(routes!(events::csv))
        .routes(routes!(workspaces::create))
        .routes(routes!(workspaces::list))
        .routes(routes!(workspaces::update))
        .routes(routes!(workspaces::delete))
        .routes(routes!(event_types::list))
        .routes(routes!(event_types::create))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::get))
        .routes(routes!(deliveries::attempts))
        .routes(routes!(deliveries::retry))
        .routes(routes!(deliveries::stats))
        .routes(routes!(deliveries::request))
        .routes(routes!(integrations::create))
        .routes(routes!(integrations::list))
        .routes(routes!(integrations::get))
        .routes(routes!(integrations::update))
        .routes(routes!(integrations::delete))
        .routes(routes!(integrations::verify))
        .routes(routes!(integrations::kinds_list))
        .routes(routes!(integrations::fields_list))
        .routes(routes!(integrations::stats))
        .routes(routes!(integrations::recover))
        .routes(routes!(mailers::create))
        .routes(routes!(mailers::list))
        .routes(routes!(mailers::get))
        .routes(routes!(mailers::update))
        .routes(routes!(mailers::delete))
        .routes(routes!(mailers::test))
        .routes(routes!(mailers::send))
        .routes(routes!(mailers::providers_list))
        .routes(routes!(mailers::stats))
        .routes(routes!(mailers::recover))
        .routes(routes!(destinations::create))
        .routes(routes!(destinations::list))
        .routes(routes!(destinations::get))
        .routes(routes!(destinations::update))
        .routes(routes!(destinations::delete))
        .routes(routes!(destinations::stats))
        .routes(routes!(destinations::recover))
        .routes(routes!(activations::create))
        .routes(routes!(activations::get))
        .routes(routes!(activations::list))
        .routes(routes!(activations::records))
        .routes(routes!(activations::cancel))
        .routes(routes!(activations::preview_run))
        .routes(routes!(activations::retry_rejected))
        .routes(routes!(tasks::get))
        .routes(routes!(account::get))
        .routes(routes!(account::update))
        .routes(routes!(accounts::create))
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::get))
        .routes(routes!(accounts::update))
        .routes(routes!(accounts::delete))
        .routes(routes!(tokens::create))
        .routes(routes!(tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(audit::list))
        .routes(routes!(portal::create))
        .routes(routes!(portal::exchange))
        .routes(routes!(suppressions::list))
        .routes(routes!(suppressions::create))
        .routes(routes!(suppressions::delete))
        .split_for_parts()
}

/// What axum would answer on its own (an empty 404 or 405), answered with the envelope.
/// Last in the chain: the 405 fallback applies to the routes registered before it.
fn with_error_fallbacks(router: axum::Router<AppState>) -> axum::Router<AppState> {
    router.fallback(not_found).method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, Scope::Api, "not_found", "no such API call")
}

/// axum adds the `Allow` header (the route's methods) to this answer.
async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, Scope::Api, "method_not_allowed", format!("{method} is not allowed here; see the Allow header"))
}

fn ops_routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/healthz", axum::routing::get(ops::healthz))
        .route("/readyz", axum::routing::get(ops::readyz))
        .route("/metrics", axum::routing::get(ops::metrics))
}

/// What a worker-only node (`--workers-only`) serves: health, readiness and metrics.
pub fn ops_router(state: AppState) -> axum::Router {
    with_error_fallbacks(ops_routes()).with_state(state).layer(answer_panics())
}

/// A handler that panics still answers: a 500 `api.internal` envelope, never a dropped connection.
fn answer_panics() -> CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> axum::response::Response> {
    CatchPanicLayer::custom(error::panic_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_the_internal_envelope() {
        async fn boom() -> &'static str {
            panic!("secret panic text")
        }
        let app = axum::Router::new().route("/api/boom", axum::routing::post(boom)).layer(answer_panics());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let answer = reqwest::Client::new().post(format!("http://{address}/api/boom")).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = answer.text().await.unwrap();
        let envelope: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(envelope, serde_json::json!({"ok": false, "error": {"code": "api.internal", "message": "server error"}}));
        assert!(!body.contains("secret panic text"));
    }
}
