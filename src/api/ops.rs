//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.upkeep.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Prometheus text format. Queue depth is read at scrape time, so an idle server does no work.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.log.pending_count().await {
        Ok(n) => metrics::gauge!("switchyard_queue_depth").set(n as f64),
        Err(e) => tracing::warn!(error = %e, "queue depth unavailable"),
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
