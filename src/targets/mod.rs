//! Outbound targets: one trait, one adapter per kind of destination.
//!
//! Adapters turn a claimed delivery into a request and report what happened as a pure
//! `AttemptOutcome`; they never touch the queue. The engine decides what the outcome means.

pub(crate) mod custom_api;
pub(crate) mod destination;
mod factory;
pub mod http;
pub(crate) mod hubspot;
pub(crate) mod mail;
pub(crate) mod salesforce;
mod secrets;
pub(crate) mod webhook;

pub use factory::{AdapterCache, IntegrationSpec, ProviderSettings, ResolveError, TargetFactory};
pub use secrets::{sign_request, signing_keys};

use async_trait::async_trait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy, explain};
use crate::domain::event::check_depth;
use crate::domain::queue::ClaimedDelivery;

#[async_trait]
pub trait Target: Send + Sync {
    fn failure_policy(&self) -> FailurePolicy;
    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome;
}

/// Integrations can also check their settings without delivering anything real.
#[async_trait]
pub trait Verify: Target {
    async fn verify(&self) -> Verification;
}

/// The answer to Verify Connection.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// What happened, in plain words.
    pub message: String,
    pub http_status: Option<u16>,
}

impl Verification {
    pub fn from_outcome(outcome: &AttemptOutcome) -> Self {
        let ok = matches!(outcome, AttemptOutcome::Response { status, .. } if (200..300).contains(status));
        Self { ok, message: explain(outcome), http_status: outcome.http_status() }
    }
}

/// An event's data as a JSON object (it was checked to be one when accepted).
pub fn data_object(delivery: &ClaimedDelivery) -> Result<serde_json::Map<String, serde_json::Value>, AttemptOutcome> {
    record_object("event data", &delivery.event.data)
}

/// A stored record (event data, an activation's row) as a JSON object, under the depth limit it
/// was accepted with.
pub fn record_object(what: &str, json: &str) -> Result<serde_json::Map<String, serde_json::Value>, AttemptOutcome> {
    let invalid = |message: String| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: format!("{what}: {message}") };
    check_depth(json).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_str(json).map_err(|e| invalid(format!("not a JSON object: {e}")))
}
