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
pub mod oauth;
mod receiver;
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
use crate::domain::ids::TargetId;
use crate::domain::queue::ClaimedDelivery;

#[async_trait]
pub trait Target: Send + Sync {
    fn failure_policy(&self) -> FailurePolicy;
    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome;

    /// `deliver`, also saying which target sent it: only a mailer with a fallback ever sends
    /// through another.
    async fn deliver_via(&self, delivery: &ClaimedDelivery) -> Sent {
        Sent { outcome: self.deliver(delivery).await, by: None }
    }

    /// Delivers several deliveries of this target in one request: the engine groups up to
    /// `TargetKind::batch_limit` ready deliveries for the kinds that batch. By default, one at a
    /// time.
    async fn deliver_batch(&self, deliveries: &[ClaimedDelivery]) -> BatchSent {
        let mut sent = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            sent.push(self.deliver_via(delivery).await);
        }
        BatchSent::Each(sent)
    }

    /// The request an attempt of `delivery` sends, built as `deliver` builds it but not sent, for
    /// the delivery log, with every credential masked.
    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome>;
}

/// What an attempt produced and, when a target other than the delivery's own sent it (a mailer's
/// fallback), which one.
#[derive(Debug)]
pub struct Sent {
    pub outcome: AttemptOutcome,
    pub by: Option<TargetId>,
}

/// What a request carrying several deliveries made of them.
#[derive(Debug)]
pub enum BatchSent {
    /// Each delivery's own outcome, in the order given.
    Each(Vec<Sent>),
    /// The receiver refused the whole request for the sake of some deliveries in it, without
    /// saying which (HubSpot's 400 for one bad contact): the engine sends its halves apart, until
    /// each bad one goes alone and gets its own outcome. Never said of a single delivery.
    Split,
}

/// A request as the delivery log shows it: secrets masked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub url: String,
    /// In the order sent; credentials (sensitive headers, `authorization`) read `••••••`.
    pub headers: Vec<Header>,
    /// The body as text (empty when there is none).
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// What the delivery log shows instead of a credential.
pub const MASKED: &str = "••••••";

impl SentRequest {
    /// Describes a built request, masking what would reveal a credential.
    pub fn of(request: reqwest::RequestBuilder) -> Result<Self, AttemptOutcome> {
        let request = request.build().map_err(|e| AttemptOutcome::Error { kind: ErrorKind::InvalidUrl, message: e.to_string() })?;
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let secret = value.is_sensitive() || name == reqwest::header::AUTHORIZATION;
                let value = if secret { MASKED.to_owned() } else { String::from_utf8_lossy(value.as_bytes()).into_owned() };
                Header { name: name.as_str().to_owned(), value }
            })
            .collect();
        let body = request.body().and_then(|b| b.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        Ok(Self { method: request.method().as_str().to_owned(), url: request.url().to_string(), headers, body })
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn described_requests_mask_credentials_only() {
        let mut key = HeaderValue::from_static("key-4");
        key.set_sensitive(true);
        let request = reqwest::Client::new()
            .request(reqwest::Method::PATCH, "https://example.com/x?a=1")
            .header("authorization", "Basic dXNlcjpwYXNz")
            .header("x-custom-auth", key)
            .header("content-type", "application/json")
            .body("{}");
        let described = SentRequest::of(request).unwrap();
        let header = |name: &str| described.headers.iter().find(|h| h.name == name).map(|h| h.value.as_str());
        assert_eq!((described.method.as_str(), described.url.as_str(), described.body.as_str()), ("PATCH", "https://example.com/x?a=1", "{}"));
        assert_eq!(header("authorization"), Some(MASKED));
        assert_eq!(header("x-custom-auth"), Some(MASKED));
        assert_eq!(header("content-type"), Some("application/json"));
    }
}
