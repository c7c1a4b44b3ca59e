//! Salesforce: OAuth 2.0 client-credentials token (`oauth::TokenClient`: cached per integration,
//! renewed once on 401), then upsert of a Lead or Contact by its external ID field.

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use crate::domain::ids::TargetId;

use super::http::{HttpClient, with_path};
use super::oauth::{Token, TokenCache, TokenClient};
use super::{MASKED, ResolveError, SentRequest, Target, Verification, Verify, data_object};
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy};
use crate::domain::integration::SalesforceConfig;
use crate::domain::mapping::{self, MappingRow};
use crate::domain::queue::ClaimedDelivery;
use crate::domain::receiver_auth::token_form;

pub const API_VERSION: &str = "v62.0";

/// Salesforce states no token lifetime: a token is used until a 401 says it expired.
pub struct SalesforceTarget {
    /// The login domain: where upserts go until a token names the org's instance.
    login: Url,
    config: SalesforceConfig,
    mapping: Vec<MappingRow>,
    http: HttpClient,
    tokens: TokenClient,
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
        let token_url = with_path(&login, "/services/oauth2/token").map_err(|_| ResolveError::Config(format!("{login} takes no token path")))?;
        let form = token_form(&config.consumer_key, &consumer_secret, None, None);
        let tokens = TokenClient::new(id, token_url, form, http.clone(), tokens);
        Ok(Self { login, config, mapping, http, tokens })
    }

    /// The org's address, given with every token.
    fn instance_url(token: &Token) -> Result<Url, AttemptOutcome> {
        let url = token.answer.get("instance_url").and_then(Value::as_str).and_then(|u| Url::parse(u).ok());
        url.ok_or_else(|| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: "the token response lacks instance_url".into() })
    }

    /// The upsert's URL on the org's instance: the path's segments escaped one by one.
    fn upsert_url(&self, instance: &Url, external_id: &str) -> Result<Url, AttemptOutcome> {
        let mut url = with_path(instance, "/")?;
        // `with_path` succeeded, so the URL has a path to extend.
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
        Ok(url)
    }

    /// The external ID and body of the record an event upserts.
    fn prepare(&self, delivery: &ClaimedDelivery) -> Result<(String, Map<String, Value>), AttemptOutcome> {
        let data = data_object(delivery)?;
        upsert_body(&self.config, &self.mapping, &data).map_err(|message| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message })
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
        // A 401 (INVALID_SESSION_ID) means the cached token expired: the token client renews it once.
        let outcome = self
            .tokens
            .send(&self.http, |token| {
                let url = self.upsert_url(&Self::instance_url(token)?, &external_id)?;
                Ok((url.clone(), self.http.request(reqwest::Method::PATCH, url).json(&body)))
            })
            .await;
        match outcome {
            AttemptOutcome::Response { status: 300, excerpt, .. } => AttemptOutcome::Error {
                kind: ErrorKind::InvalidData,
                message: format!("several Salesforce records share this external ID; nothing was written (HTTP 300): {excerpt}"),
            },
            other => other,
        }
    }

    /// The upsert an attempt sends after its token request (which carries the consumer secret
    /// and is not shown), on the cached token's instance (else the login domain, which My Domain
    /// orgs are answered with); the bearer token is masked.
    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        let (external_id, body) = self.prepare(delivery)?;
        let instance = self.tokens.cached().and_then(|token| Self::instance_url(&token).ok()).unwrap_or_else(|| self.login.clone());
        SentRequest::of(self.http.request(reqwest::Method::PATCH, self.upsert_url(&instance, &external_id)?).bearer_auth(MASKED).json(&body))
    }
}

#[async_trait]
impl Verify for SalesforceTarget {
    /// A fresh token proves the domain, consumer key and secret; reading the org's limits
    /// proves the token works for API calls.
    async fn verify(&self) -> Verification {
        let token = match self.tokens.fetch().await {
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
        self.tokens.remember(token.clone()).await;
        let limits = format!("/services/data/{API_VERSION}/limits");
        let located = Self::instance_url(&token).and_then(|instance| Ok((with_path(&instance, &limits)?, instance)));
        let (url, instance) = match located {
            Ok(located) => located,
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
                Verification { ok: true, message: format!("Connected to Salesforce at {instance}."), http_status: Some(200) }
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
