//! Webhook endpoints (seed 003): POST the event envelope, signed per Standard Webhooks.

use async_trait::async_trait;
use url::Url;
use uuid::Uuid;

use super::http::HttpClient;
use super::{ResolveError, Target};
use crate::crypto::secret_box::SecretBox;
use crate::domain::delivery::{AttemptOutcome, FailurePolicy};
use crate::domain::event::webhook_body;
use crate::domain::signing::{SigningKey, SigningSecret, signature_header};
use crate::domain::time::now_ms;
use crate::store::{ClaimedDelivery, WebhookTargetConfig};

pub struct WebhookTarget {
    url: Url,
    keys: Vec<SigningKey>,
    http: HttpClient,
}

/// The associated data that binds a stored signing secret to its row.
pub fn secret_binding(secret_id: Uuid) -> String {
    format!("signing_secret:{secret_id}")
}

impl WebhookTarget {
    pub fn new(id: Uuid, config: WebhookTargetConfig, secret_box: &SecretBox, http: HttpClient) -> Result<Self, ResolveError> {
        let url = Url::parse(&config.url).map_err(|e| ResolveError::Config(format!("endpoint {id} has a bad URL: {e}")))?;
        let keys = config
            .secrets
            .iter()
            .map(|s| {
                let plain = secret_box.open(&s.ciphertext, &secret_binding(s.id)).map_err(|e| ResolveError::Config(e.to_string()))?;
                let text = String::from_utf8(plain).map_err(|_| ResolveError::Config("secret is not text".into()))?;
                let secret = SigningSecret::parse(&text).ok_or_else(|| ResolveError::Config("stored secret is malformed".into()))?;
                Ok(secret.signing_key())
            })
            .collect::<Result<Vec<_>, ResolveError>>()?;
        if keys.is_empty() {
            return Err(ResolveError::Config(format!("endpoint {id} has no valid signing secret")));
        }
        Ok(Self { url, keys, http })
    }
}

#[async_trait]
impl Target for WebhookTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::RetryAll
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        let event = &delivery.event;
        let body = webhook_body(&event.event_type, event.created_at, &event.data);
        // The id stays the same across retries (receivers dedupe on it); the timestamp is this attempt's.
        let msg_id = event.id.to_string();
        let timestamp = now_ms() / 1000;
        let signature = signature_header(&self.keys, &msg_id, timestamp, body.as_bytes());
        let request = self
            .http
            .request(reqwest::Method::POST, self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        self.http.send(&self.url, request).await
    }
}
