//! Custom API (seeds 000/001): the mapped record as JSON to the user's endpoint, with the chosen
//! authentication and Standard Webhooks signature headers.

use async_trait::async_trait;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use super::receiver::Receiver;
use super::{ResolveError, SentRequest, Target, Verification, Verify, data_object, sign_request};
use crate::domain::delivery::{AttemptOutcome, FailurePolicy};
use crate::domain::integration::{CustomApiConfig, auth_header};
use crate::domain::mapping::{self, MappingRow};
use crate::domain::queue::ClaimedDelivery;
use crate::domain::signing::SigningKey;
use crate::domain::time::{now_ms, rfc3339};

pub struct CustomApiTarget {
    url: Url,
    method: reqwest::Method,
    auth: Option<(HeaderName, HeaderValue)>,
    mapping: Vec<MappingRow>,
    keys: Vec<SigningKey>,
    receiver: Receiver,
}

impl CustomApiTarget {
    pub fn new(
        config: CustomApiConfig,
        secret: &str,
        mapping: Vec<MappingRow>,
        keys: Vec<SigningKey>,
        receiver: Receiver,
    ) -> Result<Self, ResolveError> {
        let bad = |what: &str| ResolveError::Config(format!("custom API {what} is not valid"));
        let url = Url::parse(&config.endpoint).map_err(|_| bad("endpoint"))?;
        let method = reqwest::Method::from_bytes(config.method.as_str().as_bytes()).map_err(|_| bad("method"))?;
        let auth = auth_header(&config, secret)
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("header name"))?;
                let mut value = HeaderValue::from_str(&value).map_err(|_| bad("API key"))?;
                value.set_sensitive(true);
                Ok::<_, ResolveError>((name, value))
            })
            .transpose()?;
        Ok(Self { url, method, auth, mapping, keys, receiver })
    }

    async fn send(&self, msg_id: &str, body: Value, test: bool) -> AttemptOutcome {
        self.receiver.send(|| Ok((self.url.clone(), self.request(msg_id, body.clone(), test)))).await
    }

    /// The request with its authentication and signature.
    fn request(&self, msg_id: &str, body: Value, test: bool) -> reqwest::RequestBuilder {
        let body = body.to_string().into_bytes();
        let mut request = self.receiver.request(self.method.clone(), self.url.clone()).header("content-type", "application/json");
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        if test {
            request = request.header("x-switchyard-test", "true");
        }
        sign_request(request, &self.keys, msg_id, &body).body(body)
    }

    /// The body is the mapped record; with no mapping rows, the whole record.
    fn body(&self, delivery: &ClaimedDelivery) -> Result<Value, AttemptOutcome> {
        let data = data_object(delivery)?;
        Ok(Value::Object(if self.mapping.is_empty() { data } else { mapping::apply(&self.mapping, &data) }))
    }
}

#[async_trait]
impl Target for CustomApiTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::RetryAll
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        match self.body(delivery) {
            Ok(body) => self.send(&delivery.event.id.to_string(), body, false).await,
            Err(outcome) => outcome,
        }
    }

    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.body(delivery)
            .and_then(|body| self.receiver.describe(self.request(&delivery.event.id.to_string(), body, false), delivery.event.traceparent.as_deref()))
    }
}

#[async_trait]
impl Verify for CustomApiTarget {
    /// Sends a request marked as a test (`x-switchyard-test: true`, `"test": true`).
    async fn verify(&self) -> Verification {
        let body = json!({
            "test": true,
            "message": "Connection test from Switchyard. No action is needed.",
            "timestamp": rfc3339(now_ms()),
        });
        Verification::from_outcome(&self.send(&format!("test_{}", uuid::Uuid::now_v7()), body, true).await)
    }
}
