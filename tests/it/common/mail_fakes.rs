//! Local fakes of the HTTP mail providers (Amazon SES v2, Brevo, Mailgun, Mailjet, Mandrill,
//! SendGrid), written from ../shared/reference/providers.md §3, on one loopback server (their
//! paths do not collide), and a real SMTP server (aiosmtpd) driven from Python.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::pki::TestCa;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// What a fake accepted: which provider, the recipient(s) and the request body.
#[derive(Clone, Debug)]
pub struct SentMail {
    pub provider: &'static str,
    pub body: Value,
}

#[derive(Default)]
pub struct MailState {
    /// Accepted credentials per provider: api key, or "key:secret" for Mailjet, access key id
    /// and secret for SES.
    pub keys: HashMap<&'static str, String>,
    pub ses_secret: String,
    pub sent: Vec<SentMail>,
    pub rejected_requests: usize,
    /// Providers having an outage: they answer 503, as their status pages put it, to everything.
    pub down: Vec<&'static str>,
}

#[derive(Clone)]
pub struct FakeMail {
    pub base: String,
    pub state: Arc<Mutex<MailState>>,
}

type Shared = State<Arc<Mutex<MailState>>>;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn basic_credentials(headers: &HeaderMap) -> Option<String> {
    let encoded = header(headers, "authorization").strip_prefix("Basic ")?;
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

fn record(state: &Shared, provider: &'static str, body: Value) {
    state.lock().unwrap().sent.push(SentMail { provider, body });
}

fn refuse(state: &Shared, status: StatusCode, body: Value) -> Response {
    state.lock().unwrap().rejected_requests += 1;
    (status, Json(body)).into_response()
}

async fn brevo(state: Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if header(&headers, "api-key") != state.lock().unwrap().keys["brevo"] {
        return refuse(&state, StatusCode::UNAUTHORIZED, json!({"message": "authentication not found in headers", "code": "unauthorized"}));
    }
    if !body["to"].is_array() || (body["templateId"].is_null() && body["subject"].is_null()) {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "to and templateId or subject are required", "code": "missing_parameter"}));
    }
    if !body["templateId"].is_null() && !body["templateId"].is_u64() {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "templateId must be an integer", "code": "invalid_parameter"}));
    }
    record(&state, "brevo", body);
    (StatusCode::CREATED, Json(json!({"messageId": "<202611240000.123@smtp-relay.mailin.fr>"}))).into_response()
}

async fn mailgun(state: Shared, UrlPath(domain): UrlPath<String>, headers: HeaderMap, body: String) -> Response {
    if basic_credentials(&headers) != Some(format!("api:{}", state.lock().unwrap().keys["mailgun"])) {
        state.lock().unwrap().rejected_requests += 1;
        return (StatusCode::UNAUTHORIZED, "Forbidden").into_response();
    }
    if header(&headers, "content-type") != "application/x-www-form-urlencoded" {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "expected a form"}));
    }
    let mut form: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()).into_owned() {
        form.entry(k).or_default().push(v);
    }
    for required in ["from", "to"] {
        if !form.contains_key(required) {
            return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": format!("'{required}' parameter is missing")}));
        }
    }
    if !form.contains_key("template") && !form.contains_key("text") && !form.contains_key("html") {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "Need at least one of 'text', 'html' or 'template' parameters specified"}));
    }
    record(&state, "mailgun", json!({"domain": domain, "form": form}));
    Json(json!({"id": format!("<20261124.1@{domain}>"), "message": "Queued. Thank you."})).into_response()
}

async fn mailjet(state: Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if basic_credentials(&headers).as_deref() != Some(state.lock().unwrap().keys["mailjet"].as_str()) {
        return refuse(&state, StatusCode::UNAUTHORIZED, json!({"ErrorMessage": "API key authentication/authorization failure", "StatusCode": 401}));
    }
    let Some(messages) = body["Messages"].as_array().filter(|m| !m.is_empty() && m.len() <= 50) else {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"ErrorMessage": "Messages is required"}));
    };
    let statuses: Vec<Value> = messages
        .iter()
        .map(|m| {
            if m["To"].as_array().is_some_and(|t| !t.is_empty()) {
                json!({"Status": "success", "To": [{"Email": m["To"][0]["Email"], "MessageUUID": "1ab23cd4", "MessageID": 1234}]})
            } else {
                json!({"Status": "error", "Errors": [{"ErrorCode": "send-0003", "StatusCode": 400, "ErrorMessage": "At least one recipient is required", "ErrorRelatedTo": ["Messages.To"]}]})
            }
        })
        .collect();
    if statuses.iter().any(|s| s["Status"] == "error") {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"Messages": statuses}));
    }
    record(&state, "mailjet", body);
    Json(json!({"Messages": statuses})).into_response()
}

async fn mandrill(state: Shared, UrlPath(call): UrlPath<String>, headers: HeaderMap, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    if header(&headers, "content-type") != "application/json" || body["key"].as_str() != Some(state.lock().unwrap().keys["mandrill"].as_str()) {
        // Mandrill answers a bad key with HTTP 500 and an error object.
        return refuse(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": "error", "code": -1, "name": "Invalid_Key", "message": "Invalid API key"}),
        );
    }
    if call == "send-template.json" && !body["template_content"].is_array() {
        return refuse(
            &state,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": "error", "code": -2, "name": "ValidationError", "message": "template_content is required"}),
        );
    }
    let results: Vec<Value> = body["message"]["to"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|to| json!({"email": to["email"], "status": "sent", "reject_reason": null, "_id": "abc123"}))
        .collect();
    record(&state, "mandrill", json!({"call": call, "body": body}));
    Json(results).into_response()
}

async fn sendgrid(state: Shared, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if header(&headers, "authorization") != format!("Bearer {}", state.lock().unwrap().keys["sendgrid"]) {
        return refuse(
            &state,
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"message": "The provided authorization grant is invalid, expired, or revoked", "field": null, "help": null}]}),
        );
    }
    if body["personalizations"].as_array().is_none_or(|p| p.is_empty()) || body["from"]["email"].is_null() {
        return refuse(
            &state,
            StatusCode::BAD_REQUEST,
            json!({"errors": [{"message": "The personalizations field is required", "field": "personalizations", "help": null}]}),
        );
    }
    record(&state, "sendgrid", body);
    let mut response = StatusCode::ACCEPTED.into_response();
    response.headers_mut().insert("x-message-id", "14c5d75ce93.dfd.64b469".parse().unwrap());
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Verifies an AWS SigV4 `Authorization` header the way AWS does, written out from the
/// specification (canonical request → string to sign → derived key), independently of the
/// signing crate Switchyard uses.
pub fn verify_sigv4(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    service: &str,
) -> Result<String, String> {
    let auth = header(headers, "authorization");
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or("not an AWS4-HMAC-SHA256 authorization")?;
    let parts: HashMap<&str, &str> = rest.split(", ").filter_map(|p| p.split_once('=')).collect();
    let credential = parts.get("Credential").ok_or("no Credential")?;
    let scope_parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, scope_service, "aws4_request"] = scope_parts[..] else { return Err(format!("bad credential scope {credential}")) };
    if key_id != access_key_id {
        return Err("unknown access key".into());
    }
    if scope_service != service {
        return Err(format!("signed for service {scope_service}, not {service}"));
    }
    let signed_headers = parts.get("SignedHeaders").ok_or("no SignedHeaders")?;
    let canonical_headers: String = signed_headers.split(';').map(|name| format!("{name}:{}\n", header(headers, name).trim())).collect();
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        uri.path(),
        uri.query().unwrap_or_default(),
        hex(&Sha256::digest(body))
    );
    let amz_date = header(headers, "x-amz-date");
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));
    let key = [date, region, service, "aws4_request"].iter().fold(format!("AWS4{secret}").into_bytes(), |key, part| hmac(&key, part));
    if hex(&hmac(&key, &string_to_sign)) != *parts.get("Signature").ok_or("no Signature")? {
        return Err("SignatureDoesNotMatch".into());
    }
    Ok(region.to_owned())
}

async fn ses(state: Shared, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let (key_id, secret) = {
        let s = state.lock().unwrap();
        (s.keys["amazon_ses"].clone(), s.ses_secret.clone())
    };
    let region = match verify_sigv4(method.as_str(), &uri, &headers, &body, &key_id, &secret, "ses") {
        Ok(region) => region,
        Err(why) => {
            state.lock().unwrap().rejected_requests += 1;
            let mut response = (
                StatusCode::FORBIDDEN,
                Json(json!({"message": format!("The request signature we calculated does not match the signature you provided. ({why})")})),
            )
                .into_response();
            response.headers_mut().insert("x-amzn-errortype", "SignatureDoesNotMatch".parse().unwrap());
            return response;
        }
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    if body["Destination"]["ToAddresses"].as_array().is_none_or(|t| t.is_empty()) {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "Missing final '@domain'"}));
    }
    if let Some(data) = body["Content"]["Template"]["TemplateData"].as_str()
        && serde_json::from_str::<Value>(data).is_err()
    {
        return refuse(&state, StatusCode::BAD_REQUEST, json!({"message": "Unable to parse template data (invalid JSON)"}));
    }
    record(&state, "amazon_ses", json!({"region": region, "body": body}));
    Json(json!({"MessageId": "0100018c-1234-5678"})).into_response()
}

/// The provider a request is for, by its path.
fn provider_of(path: &str) -> &'static str {
    match path {
        "/v3/smtp/email" => "brevo",
        "/v3.1/send" => "mailjet",
        "/v3/mail/send" => "sendgrid",
        "/v2/email/outbound-emails" => "amazon_ses",
        p if p.starts_with("/api/1.0/") => "mandrill",
        _ => "mailgun",
    }
}

/// Answers 503 for a provider having an outage (`MailState::down`).
async fn outages(state: Shared, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    if state.lock().unwrap().down.contains(&provider_of(request.uri().path())) {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error or disconnect/reset before headers").into_response();
    }
    next.run(request).await
}

impl FakeMail {
    /// Puts `provider` into an outage (`down`) or back.
    pub fn set_down(&self, provider: &'static str, down: bool) {
        let mut state = self.state.lock().unwrap();
        state.down.retain(|p| *p != provider);
        if down {
            state.down.push(provider);
        }
    }

    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(MailState {
            keys: HashMap::from([
                ("brevo", "xkeysib-test".to_owned()),
                ("mailgun", "key-mailgun-test".to_owned()),
                ("mailjet", "mj-public:mj-private".to_owned()),
                ("mandrill", "md-test".to_owned()),
                ("sendgrid", "SG.test".to_owned()),
                ("amazon_ses", "AKIDEXAMPLE".to_owned()),
            ]),
            ses_secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/v3/smtp/email", post(brevo))
            .route("/v3/{domain}/messages", post(mailgun))
            .route("/v3.1/send", post(mailjet))
            .route("/api/1.0/messages/{call}", post(mandrill))
            .route("/v3/mail/send", post(sendgrid))
            .route("/v2/email/outbound-emails", post(ses))
            .layer(axum::middleware::from_fn_with_state(state.clone(), outages))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, state }
    }

    /// Server flags pointing every HTTP provider here.
    pub fn flags(&self) -> Vec<String> {
        let b = &self.base;
        [
            ("--brevo-base-url", b.clone()),
            ("--mailgun-base-url", b.clone()),
            ("--mailgun-eu-base-url", b.clone()),
            ("--mailjet-base-url", b.clone()),
            ("--mandrill-base-url", format!("{b}/api/1.0")),
            ("--sendgrid-base-url", b.clone()),
            ("--ses-endpoint", b.clone()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    pub fn sent(&self) -> Vec<SentMail> {
        self.state.lock().unwrap().sent.clone()
    }
}

/// A real SMTP server (aiosmtpd) on 127.0.0.1, stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    /// The CA that signed the server's certificate.
    pub cert: PathBuf,
    out: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
    _ca: TestCa,
}

impl SmtpServer {
    /// `mode`: starttls, tls or plain. With a user, AUTH is required.
    pub fn start(mode: &str, user: Option<(&str, &str)>) -> Self {
        // A test CA (trusted by the server under test) and a certificate for localhost it signs.
        let ca = TestCa::new("Switchyard test CA");
        let leaf = ca.server("localhost");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = dir.path().join("received.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut command = Command::new("python3");
        command.arg(script).args(["--port", &port.to_string(), "--mode", mode, "--out"]).arg(&out);
        command.arg("--cert").arg(&leaf.cert).arg("--key").arg(&leaf.key);
        if let Some((login, password)) = user {
            command.args(["--user", login, "--password", password]);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "READY", "the SMTP server needs aiosmtpd: python3 -m pip install aiosmtpd");
        Self { port, cert: ca.cert.clone(), out, child, _dir: dir, _ca: ca }
    }

    /// Messages received so far.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
