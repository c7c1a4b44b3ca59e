//! Outbound targets: one trait, one adapter per kind of destination.
//!
//! Adapters turn a claimed delivery into a request and report what happened as a pure
//! `AttemptOutcome`; they never touch the queue. The engine decides what the outcome means.

pub mod http;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;

use crate::crypto::secret_box::SecretBox;
use crate::domain::delivery::{AttemptOutcome, FailurePolicy};
use crate::domain::fanout::{TargetKind, TargetRef};
use crate::domain::time::Millis;
use crate::store::{ClaimedDelivery, Store, StoreError};

#[async_trait]
pub trait Target: Send + Sync {
    fn failure_policy(&self) -> FailurePolicy;
    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome;
}

/// What adapters need to be built: stored config, the key to decrypt its secrets, the client.
#[derive(Clone)]
pub struct TargetFactory {
    pub store: Arc<dyn Store>,
    pub secret_box: SecretBox,
    pub http: http::HttpClient,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the target no longer exists")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
}

impl TargetFactory {
    /// Builds the adapter for a target from its current stored configuration.
    pub async fn resolve(&self, target: TargetRef, now: Millis) -> Result<Box<dyn Target>, ResolveError> {
        match target.kind {
            TargetKind::Webhook => {
                let config = self.store.webhook_target(target.id, now).await?.ok_or(ResolveError::Gone)?;
                Ok(Box::new(webhook::WebhookTarget::new(target.id, config, &self.secret_box, self.http.clone())?))
            }
        }
    }
}
