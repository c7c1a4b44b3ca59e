//! HubSpot: create or update the contact matched by e-mail, with mapped properties
//! (CRM v3 batch upsert, private app token).

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use url::Url;

use super::http::{HttpClient, with_path};
use super::{BatchSent, Sent, SentRequest, Target, Verification, Verify, data_object};
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

    /// The upsert input of a delivery's event data.
    fn input(&self, delivery: &ClaimedDelivery) -> Result<Value, AttemptOutcome> {
        let data = data_object(delivery)?;
        upsert_input(&self.mapping, &data).map_err(|message| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message })
    }

    /// Upserts the deliveries' contacts in one request: each delivery's outcome, in order, or
    /// `None` when HubSpot refused the batch for the sake of inputs it does not name. A delivery
    /// whose input cannot be built fails alone, without a request.
    async fn upsert(&self, deliveries: &[ClaimedDelivery]) -> Option<Vec<AttemptOutcome>> {
        let built: Vec<Result<Value, AttemptOutcome>> = deliveries.iter().map(|d| self.input(d)).collect();
        let inputs: Vec<&Value> = built.iter().filter_map(|b| b.as_ref().ok()).collect();
        let mut answers = if inputs.is_empty() {
            Vec::new()
        } else {
            let ids: Vec<&str> = inputs.iter().map(|input| input["id"].as_str().unwrap_or_default()).collect();
            per_input(self.post(UPSERT_PATH, &json!({"inputs": inputs})).await, &ids)?
        }
        .into_iter();
        // `per_input` answers once per input sent, so every built input finds its answer.
        Some(built.into_iter().map(|b| b.err().or_else(|| answers.next()).expect("one answer per input")).collect())
    }
}

/// One upsert input: HubSpot properties are all strings; the contact is keyed on its e-mail.
pub fn upsert_input(mapping: &[MappingRow], data: &Map<String, Value>) -> Result<Value, String> {
    let email = data.get("email").map(mapping::as_text).map(|e| e.trim().to_lowercase()).filter(|e| !e.is_empty());
    let email = email.ok_or("the event has no email, which HubSpot contacts are matched by")?;
    let properties: Map<String, Value> = mapping::apply(mapping, data).into_iter().map(|(k, v)| (k, Value::String(mapping::as_text(&v)))).collect();
    Ok(json!({"idProperty": "email", "id": email, "properties": properties}))
}

/// What a batch upsert's answer means for each input (`ids`, in order sent). A 400 refuses the
/// whole batch for one bad input it does not reliably name: `None` (split it), unless the input is
/// alone, whose own error it is. A 207 names the failed inputs in `errors[].context.ids`: each
/// fails with its own error, the others were upserted; `None` when an error names none of them.
/// Any other answer (success, 401, 429, 5xx, no answer) is every input's.
pub fn per_input(answer: AttemptOutcome, ids: &[&str]) -> Option<Vec<AttemptOutcome>> {
    let refused =
        |error: &str| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: format!("HubSpot refused the contact (HTTP 207): {error}") };
    match &answer {
        AttemptOutcome::Response { status: 207, excerpt, .. } if ids.len() == 1 => Some(vec![refused(excerpt)]),
        AttemptOutcome::Response { status: 207, excerpt, .. } => {
            let body: Value = serde_json::from_str(excerpt).ok()?;
            let mut errors: HashMap<&str, String> = HashMap::new();
            for error in body["errors"].as_array()? {
                let named: Vec<&str> =
                    error["context"]["ids"].as_array().into_iter().flatten().filter_map(Value::as_str).filter(|id| ids.contains(id)).collect();
                if named.is_empty() {
                    return None;
                }
                for id in named {
                    errors.insert(id, error.to_string());
                }
            }
            Some(ids.iter().map(|id| errors.get(id).map_or_else(|| answer.clone(), |error| refused(error))).collect())
        }
        AttemptOutcome::Response { status: 400, .. } if ids.len() > 1 => None,
        _ => Some(vec![answer; ids.len()]),
    }
}

#[async_trait]
impl Target for HubspotTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::FailFastOn4xx
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        let alone = self.upsert(std::slice::from_ref(delivery)).await.and_then(|mut outcomes| outcomes.pop());
        alone.expect("an input alone is never refused for another's sake")
    }

    async fn deliver_batch(&self, deliveries: &[ClaimedDelivery]) -> BatchSent {
        match self.upsert(deliveries).await {
            Some(outcomes) => BatchSent::Each(outcomes.into_iter().map(|outcome| Sent { outcome, by: None }).collect()),
            None => BatchSent::Split,
        }
    }

    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        self.input(delivery).and_then(|input| SentRequest::of(self.request(UPSERT_PATH, &json!({"inputs": [input]}))?.1))
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
            upsert_input(&rows, &data).unwrap(),
            json!({"idProperty": "email", "id": "jane@example.com",
                "properties": {"email": "Jane@Example.com", "firstname": "Jane", "score": "17"}})
        );
        assert!(upsert_input(&rows, &Map::new()).unwrap_err().contains("no email"));
    }

    fn answer(status: u16, body: Value) -> AttemptOutcome {
        AttemptOutcome::Response { status, excerpt: body.to_string(), headers: Vec::new(), retry_after: None }
    }

    #[test]
    fn a_refused_batch_is_split_unless_its_input_is_alone() {
        let refused = answer(400, json!({"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid"}));
        assert_eq!(per_input(refused.clone(), &["a@x.io", "b@x.io"]), None);
        assert_eq!(per_input(refused.clone(), &["a@x.io"]), Some(vec![refused]), "alone, the error is its own");
        let throttled = answer(429, json!({"status": "error", "errorType": "RATE_LIMIT"}));
        assert_eq!(per_input(throttled.clone(), &["a@x.io", "b@x.io"]), Some(vec![throttled.clone(), throttled]), "not a record's fault");
    }

    #[test]
    fn a_multi_status_fails_the_inputs_its_errors_name_and_no_other() {
        let error = json!({"status": "error", "category": "VALIDATION_ERROR", "message": "Email address b is invalid", "context": {"ids": ["b"]}});
        let partial = answer(207, json!({"status": "COMPLETE", "results": [{"id": "1"}], "numErrors": 1, "errors": [error]}));
        let outcomes = per_input(partial.clone(), &["a@x.io", "b"]).unwrap();
        assert_eq!(outcomes[0], partial, "upserted");
        assert!(
            matches!(&outcomes[1], AttemptOutcome::Error { kind: ErrorKind::InvalidData, message } if message.contains("Email address b is invalid"))
        );
        let anonymous = answer(207, json!({"status": "COMPLETE", "numErrors": 1, "errors": [{"message": "something failed"}]}));
        assert_eq!(per_input(anonymous, &["a@x.io", "b"]), None, "which one failed is unknown: split");
    }
}
