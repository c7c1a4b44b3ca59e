//! Local fakes of the HubSpot and Salesforce HTTP APIs, written from
//! ../shared/reference/providers.md: they check auth headers, paths and bodies as the real
//! services do and answer with their success and error shapes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_owned)
}

// ---------------------------------------------------------------- HubSpot

/// Contact properties the fake portal knows (HubSpot refuses unknown ones with 400).
const HUBSPOT_PROPERTIES: &[&str] = &["email", "firstname", "lastname", "phone", "company", "website", "address", "city", "zip", "country", "score"];
/// The fake portal's number properties: a value that is not a number fails the whole batch.
const HUBSPOT_NUMBERS: &[&str] = &["score"];

#[derive(Default)]
pub struct HubspotState {
    pub token: String,
    pub scopes: Vec<String>,
    /// Contacts by e-mail: their properties.
    pub contacts: HashMap<String, HashMap<String, String>>,
    /// Every upsert request's body, in order (so also how many requests were made).
    pub upsert_bodies: Vec<Value>,
    /// Statuses the next upsert requests answer instead of upserting (e.g. 503), in order.
    pub fail_next: Vec<u16>,
    /// Upsert requests are taken in (and counted) but never answered, as by a portal that hangs.
    pub hold: bool,
}

#[derive(Clone)]
pub struct FakeHubspot {
    pub base: String,
    pub state: Arc<Mutex<HubspotState>>,
}

fn hubspot_error(status: StatusCode, category: &str, message: &str) -> Response {
    hubspot_answer(status, json!({"status": "error", "message": message, "correlationId": uuid::Uuid::new_v4(), "category": category}))
}

fn hubspot_answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert("x-hubspot-auth-failure", "401 Unauthorized".parse().unwrap());
    }
    response
}

fn hubspot_unauthorized() -> Response {
    hubspot_error(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

/// Why HubSpot refuses a whole batch for this input (`n`th): a malformed input, a property the
/// portal does not have, a number property that is not a number. The message names the input.
fn hubspot_invalid_input(n: usize, input: &Value) -> Option<String> {
    let (Some(id), Some(properties)) = (input["id"].as_str(), input["properties"].as_object()) else {
        return Some(format!("inputs[{n}] needs id and properties"));
    };
    if input["idProperty"] != "email" {
        return Some(format!("inputs[{n}] ({id}): this portal upserts contacts by email"));
    }
    properties.iter().find_map(|(name, value)| match value.as_str() {
        _ if !HUBSPOT_PROPERTIES.contains(&name.as_str()) => Some(format!("Property \"{name}\" does not exist (inputs[{n}], {id})")),
        None => Some(format!("Property \"{name}\" must be a string (inputs[{n}], {id})")),
        Some(text) if HUBSPOT_NUMBERS.contains(&name.as_str()) && text.parse::<f64>().is_err() => {
            Some(format!("Property \"{name}\" has the value \"{text}\", which is not a valid number (inputs[{n}], {id})"))
        }
        Some(_) => None,
    })
}

/// Why HubSpot fails this input alone (a 207 naming it): an e-mail that is not an address.
fn hubspot_failed_input(input: &Value) -> Option<Value> {
    let email = input["properties"]["email"].as_str()?;
    (!email.contains('@')).then(|| {
        json!({"status": "error", "category": "VALIDATION_ERROR", "subCategory": "INVALID_EMAIL",
               "message": format!("Email address {email} is invalid"), "context": {"ids": [input["id"]]}})
    })
}

/// Takes in a request the portal holds (counted, never answered); false when it is not holding.
fn held(state: &Mutex<HubspotState>, body: &Value) -> bool {
    let mut state = state.lock().unwrap();
    if state.hold {
        state.upsert_bodies.push(body.clone());
    }
    state.hold
}

/// Batch upsert as HubSpot answers it: 1 to 100 inputs; one invalid input fails the whole batch
/// with 400 VALIDATION_ERROR (nothing is written); inputs that fail on their own are named in a
/// 207's `errors[]` while the others are upserted.
async fn hubspot_upsert(State(state): State<Arc<Mutex<HubspotState>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if held(&state, &body) {
        return std::future::pending().await;
    }
    let mut state = state.lock().unwrap();
    if bearer(&headers).as_deref() != Some(state.token.as_str()) {
        return hubspot_unauthorized();
    }
    state.upsert_bodies.push(body.clone());
    if !state.fail_next.is_empty() {
        let status = StatusCode::from_u16(state.fail_next.remove(0)).unwrap();
        return hubspot_error(status, "INTERNAL_ERROR", "internal error");
    }
    let Some(inputs) = body["inputs"].as_array().filter(|i| !i.is_empty() && i.len() <= 100) else {
        return hubspot_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", "inputs must hold 1 to 100 objects");
    };
    if let Some(message) = inputs.iter().enumerate().find_map(|(n, input)| hubspot_invalid_input(n, input)) {
        return hubspot_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &message);
    }
    let (mut results, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        if let Some(error) = hubspot_failed_input(input) {
            errors.push(error);
            continue;
        }
        let id = input["id"].as_str().unwrap();
        let props: HashMap<String, String> =
            input["properties"].as_object().unwrap().iter().map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned())).collect();
        let new = !state.contacts.contains_key(id);
        state.contacts.entry(id.to_owned()).or_default().extend(props.clone());
        results.push(json!({"id": format!("{}", 500 + state.contacts.len()), "new": new, "properties": props,
            "createdAt": "2026-11-24T00:00:00Z", "updatedAt": "2026-11-24T00:00:00Z", "archived": false}));
    }
    let mut answer = json!({"status": "COMPLETE", "results": results, "startedAt": "2026-11-24T00:00:00Z", "completedAt": "2026-11-24T00:00:01Z"});
    if errors.is_empty() {
        return hubspot_answer(StatusCode::OK, answer);
    }
    answer["numErrors"] = json!(errors.len());
    answer["errors"] = json!(errors);
    hubspot_answer(StatusCode::MULTI_STATUS, answer)
}

async fn hubspot_token_info(State(state): State<Arc<Mutex<HubspotState>>>, Json(body): Json<Value>) -> Response {
    let state = state.lock().unwrap();
    if body["tokenKey"].as_str() != Some(state.token.as_str()) {
        return hubspot_unauthorized();
    }
    Json(json!({"userId": 123, "hubId": 4242, "appId": 777, "scopes": state.scopes})).into_response()
}

impl FakeHubspot {
    pub async fn start(token: &str) -> Self {
        let state = Arc::new(Mutex::new(HubspotState {
            token: token.into(),
            scopes: vec!["crm.objects.contacts.read".into(), "crm.objects.contacts.write".into()],
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/crm/v3/objects/contacts/batch/upsert", post(hubspot_upsert))
            .route("/oauth/v2/private-apps/get/access-token-info", post(hubspot_token_info))
            .with_state(state.clone());
        Self { base: serve(app).await, state }
    }

    /// Upsert requests made so far.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().upsert_bodies.len()
    }
}

// ---------------------------------------------------------------- Salesforce

#[derive(Default)]
pub struct SalesforceState {
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    pub external_id_field: String,
    pub valid_tokens: Vec<String>,
    pub token_requests: usize,
    /// Records by (object, external id): their fields.
    pub records: HashMap<(String, String), serde_json::Map<String, Value>>,
    pub upserts: Vec<(String, Value)>,
}

#[derive(Clone)]
pub struct FakeSalesforce {
    pub base: String,
    pub state: Arc<Mutex<SalesforceState>>,
}

async fn salesforce_token(State(state): State<Arc<Mutex<SalesforceState>>>, headers: HeaderMap, body: String) -> Response {
    let mut state = state.lock().unwrap();
    state.token_requests += 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let is_form = headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/x-www-form-urlencoded");
    if !is_form || form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"})))
            .into_response();
    }
    if form.get("client_id") != Some(&state.client_id) || form.get("client_secret") != Some(&state.client_secret) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"})))
            .into_response();
    }
    let token = format!("00D5g000004Tk2a!{}", uuid::Uuid::new_v4().simple());
    state.valid_tokens.push(token.clone());
    Json(json!({"access_token": token, "signature": "c2lnbmF0dXJl", "scope": "api", "instance_url": state.base,
        "id": format!("{}/id/00D5g000004Tk2a/0055g00000AbCdE", state.base), "token_type": "Bearer", "issued_at": "1795491688000"}))
    .into_response()
}

fn salesforce_session_expired() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]))).into_response()
}

async fn salesforce_upsert(
    State(state): State<Arc<Mutex<SalesforceState>>>,
    Path((version, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut state = state.lock().unwrap();
    if !bearer(&headers).is_some_and(|t| state.valid_tokens.contains(&t)) {
        return salesforce_session_expired();
    }
    let not_found =
        || (StatusCode::NOT_FOUND, Json(json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]))).into_response();
    if version != "v62.0" || !["Lead", "Contact"].contains(&object.as_str()) || field != state.external_id_field {
        return not_found();
    }
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!([{"message": "JSON parser error", "errorCode": "JSON_PARSER_ERROR"}]))).into_response();
    };
    state.upserts.push((format!("{object}/{field}/{value}"), Value::Object(fields.clone())));
    let key = (object.clone(), value.to_lowercase());
    let exists = state.records.contains_key(&key);
    let mut required = vec!["LastName"];
    if object == "Lead" {
        required.push("Company");
    }
    let missing: Vec<&str> = required.into_iter().filter(|f| !fields.contains_key(*f) && !exists).collect();
    if !missing.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!([{"message": format!("Required fields are missing: [{}]", missing.join(", ")), "errorCode": "REQUIRED_FIELD_MISSING", "fields": missing}])),
        )
            .into_response();
    }
    state.records.entry(key).or_default().extend(fields);
    let id = format!("003{:012}", state.records.len());
    let status = if exists { StatusCode::OK } else { StatusCode::CREATED };
    (status, Json(json!({"id": id, "success": true, "errors": [], "created": !exists}))).into_response()
}

async fn salesforce_limits(State(state): State<Arc<Mutex<SalesforceState>>>, headers: HeaderMap) -> Response {
    let state = state.lock().unwrap();
    if !bearer(&headers).is_some_and(|t| state.valid_tokens.contains(&t)) {
        return salesforce_session_expired();
    }
    Json(json!({"DailyApiRequests": {"Max": 15000, "Remaining": 14990}})).into_response()
}

impl FakeSalesforce {
    pub async fn start(client_id: &str, client_secret: &str, external_id_field: &str) -> Self {
        let state = Arc::new(Mutex::new(SalesforceState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            external_id_field: external_id_field.into(),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/services/oauth2/token", post(salesforce_token))
            .route("/services/data/{version}/sobjects/{object}/{field}/{value}", patch(salesforce_upsert))
            .route("/services/data/{version}/limits", get(salesforce_limits))
            .with_state(state.clone());
        let base = serve(app).await;
        state.lock().unwrap().base = base.clone();
        Self { base, state }
    }

    /// Every issued token stops working, as when a session times out.
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().valid_tokens.clear();
    }
}

// ---------------------------------------------------------------- OAuth 2.0 token endpoint

/// An OAuth 2.0 authorization server's token endpoint (client credentials, RFC 6749 §4.4): it
/// checks the client, records each request's form and hands out tokens receivers ask it about.
#[derive(Default)]
pub struct TokenState {
    pub client_id: String,
    pub client_secret: String,
    /// The `expires_in` of tokens issued next.
    pub expires_in: u64,
    pub forms: Vec<HashMap<String, String>>,
    valid: Vec<String>,
}

#[derive(Clone)]
pub struct FakeTokenEndpoint {
    pub url: String,
    pub state: Arc<Mutex<TokenState>>,
}

async fn issue_token(State(state): State<Arc<Mutex<TokenState>>>, body: String) -> Response {
    let mut state = state.lock().unwrap();
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    state.forms.push(form.clone());
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response();
    }
    if form.get("client_id") != Some(&state.client_id) || form.get("client_secret") != Some(&state.client_secret) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let token = format!("at-{}", uuid::Uuid::new_v4().simple());
    state.valid.push(token.clone());
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": state.expires_in})).into_response()
}

impl FakeTokenEndpoint {
    pub async fn start(client_id: &str, client_secret: &str, expires_in: u64) -> Self {
        let state =
            Arc::new(Mutex::new(TokenState { client_id: client_id.into(), client_secret: client_secret.into(), expires_in, ..Default::default() }));
        let base = serve(axum::Router::new().route("/oauth/token", post(issue_token)).with_state(state.clone())).await;
        Self { url: format!("{base}/oauth/token"), state }
    }

    /// How many tokens were asked for.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().forms.len()
    }

    /// Whether a request's `Authorization` carries a token this endpoint issued and did not revoke.
    pub fn authorizes(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|token| self.state.lock().unwrap().valid.contains(&token))
    }

    /// Every token issued so far stops working, as when the receiver rotates its keys.
    pub fn revoke_all(&self) {
        self.state.lock().unwrap().valid.clear();
    }
}
