//! Salesforce: OAuth 2.0 client-credentials token (cached per integration, renewed once on
//! 401), then upsert of a Lead or Contact by its external ID field.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::ids::TargetId;

use super::http::{HttpClient, with_path};
use super::{MASKED, ResolveError, SentRequest, Target, Verification, Verify, data_object};
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy};
use crate::domain::integration::SalesforceConfig;
use crate::domain::mapping::{self, MappingRow};
use crate::domain::queue::ClaimedDelivery;

pub const API_VERSION: &str = "v62.0";

#[derive(Clone)]
struct Token {
    access_token: String,
    instance_url: Url,
    /// Which credentials it was issued for: a changed secret must not reuse it.
    credentials: [u8; 32],
}

/// Tokens by integration. Salesforce states no lifetime, so a token is used until a 401 says
/// it expired; one refresh at a time per integration.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<TargetId, TokenSlot>>>);

/// One integration's token; its lock is held while the token is refreshed.
type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;

impl TokenCache {
    fn slot(&self, integration: TargetId) -> TokenSlot {
        self.0.lock().expect("lock is never poisoned").entry(integration).or_default().clone()
    }
}

pub struct SalesforceTarget {
    id: TargetId,
    login: Url,
    config: SalesforceConfig,
    consumer_secret: String,
    credentials: [u8; 32],
    mapping: Vec<MappingRow>,
    http: HttpClient,
    tokens: TokenCache,
}

/// The upsert body: the mapped record without the external ID field (it is in the path).
pub fn upsert_body(config: &SalesforceConfig, mapping: &[MappingRow], data: &Map<String, Value>) -> Result<(String, Map<String, Value>), String> {
    let external_id = data.get(&config.external_id_source).map(mapping::as_text).filter(|v| !v.trim().is_empty());
    let external_id = external_id.ok_or_else(|| format!("the event has no {} for the external ID", config.external_id_source))?;
    let mut body = mapping::apply(mapping, data);
    body.remove(&config.external_id_field);
    Ok((external_id, body))
}

impl SalesforceTarget {
    pub fn new(
        id: TargetId,
        config: SalesforceConfig,
        consumer_secret: String,
        mapping: Vec<MappingRow>,
        http: HttpClient,
        tokens: TokenCache,
    ) -> Result<Self, ResolveError> {
        let login = config.login_url().map_err(ResolveError::Config)?;
        let credentials = Sha256::digest(format!("{login}\n{}\n{consumer_secret}", config.consumer_key)).into();
        Ok(Self { id, login, config, consumer_secret, credentials, mapping, http, tokens })
    }

    /// The cached token, or a new one when there is none or `stale` is the one cached.
    async fn token(&self, stale: Option<&str>) -> Result<Token, AttemptOutcome> {
        let slot = self.tokens.slot(self.id);
        let mut cached = slot.lock().await;
        if let Some(token) = cached.as_ref()
            && token.credentials == self.credentials
            && Some(token.access_token.as_str()) != stale
        {
            return Ok(token.clone());
        }
        let token = self.fetch_token().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn fetch_token(&self) -> Result<Token, AttemptOutcome> {
        let url = with_path(&self.login, "/services/oauth2/token")?;
        let form = [("grant_type", "client_credentials"), ("client_id", &self.config.consumer_key), ("client_secret", &self.consumer_secret)];
        let request = self.http.request(reqwest::Method::POST, url.clone()).form(&form);
        match self.http.send(&url, request).await {
            AttemptOutcome::Response { status: 200, excerpt, .. } => {
                let body: Value = serde_json::from_str(&excerpt).unwrap_or_default();
                let parsed = body["access_token"].as_str().zip(body["instance_url"].as_str().and_then(|u| Url::parse(u).ok()));
                let (access_token, instance_url) = parsed.ok_or_else(|| AttemptOutcome::Error {
                    kind: ErrorKind::InvalidData,
                    message: format!("the token response lacks access_token or instance_url: {excerpt}"),
                })?;
                Ok(Token { access_token: access_token.to_owned(), instance_url, credentials: self.credentials })
            }
            other => Err(other),
        }
    }

    async fn upsert(&self, token: &Token, external_id: &str, body: &Map<String, Value>) -> AttemptOutcome {
        match self.upsert_request(&token.instance_url, &token.access_token, external_id, body) {
            Ok((url, request)) => self.http.send(&url, request).await,
            Err(outcome) => outcome,
        }
    }

    /// The PATCH that upserts `body` under `external_id` on the instance `instance_url`.
    fn upsert_request(
        &self,
        instance_url: &Url,
        access_token: &str,
        external_id: &str,
        body: &Map<String, Value>,
    ) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome> {
        let mut url = with_path(instance_url, "/")?;
        // `with_path` succeeded, so the URL has a path to extend: segments are escaped one by one.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                "services",
                "data",
                API_VERSION,
                "sobjects",
                self.config.object.as_str(),
                &self.config.external_id_field,
                external_id,
            ]);
        }
        Ok((url.clone(), self.http.request(reqwest::Method::PATCH, url).bearer_auth(access_token).json(body)))
    }

    /// The external ID and body of the record an event upserts.
    fn prepare(&self, delivery: &ClaimedDelivery) -> Result<(String, Map<String, Value>), AttemptOutcome> {
        let data = data_object(delivery)?;
        upsert_body(&self.config, &self.mapping, &data).map_err(|message| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message })
    }

    /// Where upserts go: the instance of the cached token, else the configured domain (which
    /// a token request answers with, for My Domain orgs).
    fn known_instance(&self) -> Url {
        let slot = self.tokens.slot(self.id);
        let cached =
            slot.try_lock().ok().and_then(|token| token.as_ref().filter(|t| t.credentials == self.credentials).map(|t| t.instance_url.clone()));
        cached.unwrap_or_else(|| self.login.clone())
    }
}

#[async_trait]
impl Target for SalesforceTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::FailFastOn4xx
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        let (external_id, body) = match self.prepare(delivery) {
            Ok(prepared) => prepared,
            Err(outcome) => return outcome,
        };
        let token = match self.token(None).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let outcome = match self.upsert(&token, &external_id, &body).await {
            // INVALID_SESSION_ID: the cached token expired. Renew once and try once more.
            AttemptOutcome::Response { status: 401, .. } => match self.token(Some(&token.access_token)).await {
                Ok(fresh) => self.upsert(&fresh, &external_id, &body).await,
                Err(outcome) => outcome,
            },
            other => other,
        };
        match outcome {
            AttemptOutcome::Response { status: 300, excerpt, .. } => AttemptOutcome::Error {
                kind: ErrorKind::InvalidData,
                message: format!("several Salesforce records share this external ID; nothing was written (HTTP 300): {excerpt}"),
            },
            other => other,
        }
    }

    /// The upsert an attempt sends after its token request (which carries the consumer secret
    /// and is not shown); the bearer token is masked.
    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.prepare(delivery)
            .and_then(|(external_id, body)| SentRequest::of(self.upsert_request(&self.known_instance(), MASKED, &external_id, &body)?.1))
    }
}

#[async_trait]
impl Verify for SalesforceTarget {
    /// A fresh token proves the domain, consumer key and secret; reading the org's limits
    /// proves the token works for API calls.
    async fn verify(&self) -> Verification {
        let token = match self.fetch_token().await {
            Ok(token) => token,
            Err(AttemptOutcome::Response { status, excerpt, .. }) => {
                let body: Value = serde_json::from_str(&excerpt).unwrap_or_default();
                return Verification {
                    ok: false,
                    message: format!(
                        "Salesforce refused the credentials (HTTP {status}): {} {}",
                        body["error"].as_str().unwrap_or("error"),
                        body["error_description"].as_str().unwrap_or(&excerpt)
                    ),
                    http_status: Some(status),
                };
            }
            Err(outcome) => return Verification::from_outcome(&outcome),
        };
        *self.tokens.slot(self.id).lock().await = Some(token.clone());
        let url = match with_path(&token.instance_url, &format!("/services/data/{API_VERSION}/limits")) {
            Ok(url) => url,
            Err(outcome) => return Verification::from_outcome(&outcome),
        };
        let request = self.http.request(reqwest::Method::GET, url.clone()).bearer_auth(&token.access_token);
        let outcome = self.http.send(&url, request).await;
        match outcome {
            AttemptOutcome::Response { status: 403, .. } => Verification {
                ok: true,
                message: "Connected: the credentials work. (The run-as user cannot read org limits, which upserts do not need.)".into(),
                http_status: Some(403),
            },
            AttemptOutcome::Response { status: 200, .. } => {
                Verification { ok: true, message: format!("Connected to Salesforce at {}.", token.instance_url), http_status: Some(200) }
            }
            other => Verification::from_outcome(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::integration::SalesforceObject;
    use crate::domain::mapping::IfMissing;
    use serde_json::json;

    #[test]
    fn body_leaves_out_the_external_id_field() {
        let config = SalesforceConfig {
            domain: "acme.my.salesforce.com".into(),
            consumer_key: "k".into(),
            object: SalesforceObject::Contact,
            external_id_field: "Email_External_Id__c".into(),
            external_id_source: "email".into(),
        };
        let rows = [("LastName", "lastName"), ("Email_External_Id__c", "email"), ("Email", "email")].map(|(o, s)| MappingRow {
            webhook_field: o.into(),
            source_field: s.into(),
            if_missing: IfMissing::Omit,
        });
        let data = json!({"email": "jane@example.com", "lastName": "Doe"}).as_object().unwrap().clone();
        let (id, body) = upsert_body(&config, &rows, &data).unwrap();
        assert_eq!(id, "jane@example.com");
        assert_eq!(Value::Object(body), json!({"LastName": "Doe", "Email": "jane@example.com"}));
        assert!(upsert_body(&config, &rows, &Map::new()).unwrap_err().contains("no email"));
    }
}
