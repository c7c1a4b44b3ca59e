//! Webhook endpoints (seed 003): POST the event envelope, signed per Standard Webhooks.

use async_trait::async_trait;
use url::Url;

use crate::domain::ids::TargetId;

use super::receiver::Receiver;
use super::{ResolveError, SentRequest, Target, sign_request, signing_keys};
use crate::crypto::secret_box::SecretBox;
use crate::domain::delivery::{AttemptOutcome, FailurePolicy};
use crate::domain::endpoint::WebhookTargetConfig;
use crate::domain::event::webhook_body;
use crate::domain::queue::ClaimedDelivery;
use crate::domain::signing::SigningKey;

pub struct WebhookTarget {
    url: Url,
    keys: Vec<SigningKey>,
    receiver: Receiver,
}

impl WebhookTarget {
    pub fn new(id: TargetId, config: WebhookTargetConfig, secret_box: &SecretBox, receiver: Receiver) -> Result<Self, ResolveError> {
        let url = Url::parse(&config.url).map_err(|e| ResolveError::Config(format!("endpoint {id} has a bad URL: {e}")))?;
        let keys = signing_keys(&config.secrets, secret_box)?;
        if keys.is_empty() {
            return Err(ResolveError::Config(format!("endpoint {id} has no valid signing secret")));
        }
        Ok(Self { url, keys, receiver })
    }

    /// The signed POST of the event envelope.
    fn request(&self, delivery: &ClaimedDelivery) -> reqwest::RequestBuilder {
        let event = &delivery.event;
        let body = webhook_body(&event.event_type, event.created_at, &event.data);
        // The id stays the same across retries: receivers dedupe on it.
        let request = self.receiver.request(reqwest::Method::POST, self.url.clone()).header("content-type", "application/json");
        sign_request(request, &self.keys, &event.id.to_string(), body.as_bytes()).body(body)
    }
}

#[async_trait]
impl Target for WebhookTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::RetryAll
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        self.receiver.send(|| Ok((self.url.clone(), self.request(delivery)))).await
    }

    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.receiver.describe(self.request(delivery), delivery.event.traceparent.as_deref())
    }
}
