//! HubSpot: create or update the contact matched by e-mail, with mapped properties
//! (CRM v3 batch upsert, private app token).

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use url::Url;

use super::http::{HttpClient, with_path};
use super::{SentRequest, Target, Verification, Verify, data_object};
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy};
use crate::domain::mapping::{self, MappingRow};
use crate::domain::queue::ClaimedDelivery;

const UPSERT_PATH: &str = "/crm/v3/objects/contacts/batch/upsert";
const TOKEN_INFO_PATH: &str = "/oauth/v2/private-apps/get/access-token-info";
pub const WRITE_SCOPE: &str = "crm.objects.contacts.write";

pub struct HubspotTarget {
    base: Url,
    token: String,
    mapping: Vec<MappingRow>,
    http: HttpClient,
}

impl HubspotTarget {
    pub fn new(base: Url, token: String, mapping: Vec<MappingRow>, http: HttpClient) -> Self {
        Self { base, token, mapping, http }
    }

    async fn post(&self, path: &str, body: &Value) -> AttemptOutcome {
        match self.request(path, body) {
            Ok((url, request)) => self.http.send(&url, request).await,
            Err(outcome) => outcome,
        }
    }

    fn request(&self, path: &str, body: &Value) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome> {
        let url = with_path(&self.base, path)?;
        Ok((url.clone(), self.http.request(reqwest::Method::POST, url).bearer_auth(&self.token).json(body)))
    }

    /// The contact upsert of the event's data.
    fn upsert(&self, delivery: &ClaimedDelivery) -> Result<Value, AttemptOutcome> {
        let data = data_object(delivery)?;
        upsert_body(&self.mapping, &data).map_err(|message| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message })
    }
}

/// The upsert input: HubSpot properties are all strings; the contact is keyed on its e-mail.
pub fn upsert_body(mapping: &[MappingRow], data: &Map<String, Value>) -> Result<Value, String> {
    let email = data.get("email").map(mapping::as_text).map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    let email = email.ok_or("the event has no email, which HubSpot contacts are matched by")?;
    let properties: Map<String, Value> = mapping::apply(mapping, data).into_iter().map(|(k, v)| (k, Value::String(mapping::as_text(&v)))).collect();
    Ok(json!({"inputs": [{"idProperty": "email", "id": email, "properties": properties}]}))
}

#[async_trait]
impl Target for HubspotTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::FailFastOn4xx
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        let body = match self.upsert(delivery) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        match self.post(UPSERT_PATH, &body).await {
            // 207 Multi-Status: the one input failed; its errors are in the body.
            AttemptOutcome::Response { status: 207, excerpt, .. } => {
                AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: format!("HubSpot refused the contact (HTTP 207): {excerpt}") }
            }
            other => other,
        }
    }

    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.upsert(delivery).and_then(|body| SentRequest::of(self.request(UPSERT_PATH, &body)?.1))
    }
}

#[async_trait]
impl Verify for HubspotTarget {
    /// Reads the token's metadata (no side effects) and checks it may write contacts.
    async fn verify(&self) -> Verification {
        let outcome = self.post(TOKEN_INFO_PATH, &json!({"tokenKey": self.token})).await;
        let mut verification = Verification::from_outcome(&outcome);
        if let AttemptOutcome::Response { status: 200, excerpt, .. } = &outcome {
            let info: Value = serde_json::from_str(excerpt).unwrap_or_default();
            let scopes = info["scopes"].as_array().cloned().unwrap_or_default();
            if scopes.iter().any(|s| s == WRITE_SCOPE) {
                verification.message = format!("Connected to HubSpot portal {}.", info["hubId"]);
            } else {
                verification.ok = false;
                verification.message = format!("The token is valid but lacks the scope {WRITE_SCOPE}: add it to the private app.");
            }
        }
        verification
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::mapping::IfMissing;

    #[test]
    fn properties_are_strings_keyed_on_the_lowercased_email() {
        let rows = [("email", "email"), ("firstname", "firstName"), ("score", "score")].map(|(o, s)| MappingRow {
            webhook_field: o.into(),
            source_field: s.into(),
            if_missing: IfMissing::Omit,
        });
        let data = json!({"email": "Jane@Example.com", "firstName": "Jane", "score": 17}).as_object().unwrap().clone();
        assert_eq!(
            upsert_body(&rows, &data).unwrap(),
            json!({"inputs": [{"idProperty": "email", "id": "jane@example.com",
                "properties": {"email": "Jane@Example.com", "firstname": "Jane", "score": "17"}}]})
        );
        assert!(upsert_body(&rows, &Map::new()).unwrap_err().contains("no email"));
    }
}
