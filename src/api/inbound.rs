//! The mail providers' event webhooks (issue 18): `POST /inbound/mail/<mailer id>/<token>`, one
//! public URL per mailer, outside `/api` (a provider cannot send an API token). The token is
//! derived from the server key (`SecretBox::derived_token`), so the URL is unguessable and needs
//! no storage. Each provider's request is then checked with its own scheme
//! (`crypto::webhook_signatures`): Mailgun's HMAC and timestamp, SendGrid's ECDSA signature and
//! timestamp, Mandrill's HMAC over the URL and parameters, SNS's certificate signature for SES.
//! Mailjet and Brevo sign nothing; their docs advise a secret in the URL, which the token is.
//! Hard bounces and complaints (`domain::suppression::mail_events`) go on the account's
//! suppression list.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::error::{ApiError, OrStoreError, Scope};
use super::portal::origin_of;
use super::{ApiResult, AppState, success};
use crate::crypto::secret_box::{SecretBox, mailer_webhook_key_binding};
use crate::crypto::webhook_signatures;
use crate::domain::delivery::AttemptOutcome;
use crate::domain::ids::TargetId;
use crate::domain::mailer::{Mailer, MailerProvider};
use crate::domain::suppression::{self, MailEvent, Suppression, fresh, sns_url_allowed};
use crate::domain::time::now_ms;

const SCOPE: Scope = Scope::Inbound;

#[derive(Serialize)]
pub struct Received {
    /// Addresses put on (or kept on) the suppression list by this request.
    suppressed: usize,
    /// True when this request was SNS's subscription confirmation, now confirmed.
    confirmed: bool,
}

/// Where a mailer's provider posts its events: the path of its inbound webhook, or `None` for
/// the SMTP providers, which have none.
pub fn inbound_path(secret_box: &SecretBox, mailer: &Mailer) -> Option<String> {
    mailer.provider.has_event_webhook().then(|| format!("/inbound/mail/{}/{}", mailer.id, secret_box.derived_token(&token_context(mailer.id))))
}

fn token_context(mailer: TargetId) -> String {
    format!("mailer_inbound:{mailer}")
}

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, SCOPE, "invalid_signature", message)
}

fn bad_payload(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_payload", message)
}

/// The mailer this URL belongs to. An unknown mailer and a wrong token get the same answer.
async fn mailer_of(state: &AppState, id: &str, given: &str) -> Result<Mailer, ApiError> {
    let not_found = || ApiError::not_found(SCOPE, "webhook");
    let id: TargetId = id.parse::<uuid::Uuid>().map_err(|_| not_found())?.into();
    if !state.secret_box.is_derived_token(&token_context(id), given) {
        return Err(not_found());
    }
    let mailer = state.store.settings.mailer_target(id).await.or_store_error(SCOPE)?.ok_or_else(not_found)?;
    if mailer.provider.has_event_webhook() { Ok(mailer) } else { Err(not_found()) }
}

/// The mailer's webhook key in the clear.
fn webhook_key(state: &AppState, mailer: &Mailer) -> Result<String, ApiError> {
    let sealed = mailer
        .webhook_key
        .as_deref()
        .ok_or_else(|| refused(format!("this mailer has no webhook_key: save {}'s key with it to accept its events", mailer.provider.title())))?;
    let plain = state.secret_box.open(sealed, &mailer_webhook_key_binding(mailer.id)).map_err(|e| refused(e.to_string()))?;
    String::from_utf8(plain).map_err(|_| refused("the stored webhook key is not text"))
}

fn json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_payload(format!("the body is not JSON: {e}")))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// A provider checking the URL (Mandrill sends a HEAD request when a webhook is added).
pub async fn probe(State(state): State<AppState>, Path((id, token)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    mailer_of(&state, &id, &token).await.map(|_| StatusCode::OK)
}

/// One request of a provider's event webhook.
pub async fn receive(
    State(state): State<AppState>,
    Path((id, token)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Received> {
    let mailer = mailer_of(&state, &id, &token).await?;
    let now = now_ms();
    let payload = match mailer.provider {
        MailerProvider::Mailgun => mailgun(&state, &mailer, &body, now)?,
        MailerProvider::Sendgrid => sendgrid(&state, &mailer, &headers, &body, now)?,
        MailerProvider::Mandrill => mandrill(&state, &mailer, &headers, &uri, &body)?,
        MailerProvider::AmazonSes => match sns(&state, &body).await? {
            Sns::Notification(message) => message,
            Sns::Confirmed => return success(Received { suppressed: 0, confirmed: true }),
        },
        // Authenticated by the token in the URL, as their docs advise.
        _ => json(&body)?,
    };
    let events = suppression::mail_events(mailer.provider, &payload).map_err(bad_payload)?;
    let suppressed = record(&state, &mailer, events, now).await?;
    success(Received { suppressed, confirmed: false })
}

async fn record(state: &AppState, mailer: &Mailer, events: Vec<MailEvent>, now: i64) -> Result<usize, ApiError> {
    let entries: Vec<Suppression> = events
        .into_iter()
        .map(|e| Suppression {
            account_id: mailer.account_id,
            address: e.address,
            reason: e.reason,
            provider: Some(mailer.provider),
            mailer_id: Some(mailer.id),
            detail: e.detail,
            first_seen: now,
            last_event: now,
        })
        .collect();
    if !entries.is_empty() {
        state.store.suppressions.suppress(&entries).await.or_store_error(SCOPE)?;
    }
    Ok(entries.len())
}

/// Mailgun: `{"signature": {"timestamp", "token", "signature"}, "event-data": {…}}`.
fn mailgun(state: &AppState, mailer: &Mailer, body: &[u8], now: i64) -> Result<Value, ApiError> {
    let payload = json(body)?;
    let signed = &payload["signature"];
    let field = |name: &str| signed[name].as_str().unwrap_or_default();
    if !fresh(field("timestamp"), now) {
        return Err(refused("the signature's timestamp is missing or too old"));
    }
    if !webhook_signatures::mailgun(&webhook_key(state, mailer)?, field("timestamp"), field("token"), field("signature")) {
        return Err(refused("the signature does not match the webhook signing key"));
    }
    Ok(payload)
}

/// SendGrid: the signed event webhook's two headers over the raw body.
fn sendgrid(state: &AppState, mailer: &Mailer, headers: &HeaderMap, body: &[u8], now: i64) -> Result<Value, ApiError> {
    let timestamp = header(headers, "x-twilio-email-event-webhook-timestamp");
    if !fresh(timestamp, now) {
        return Err(refused("the X-Twilio-Email-Event-Webhook-Timestamp is missing or too old"));
    }
    let signature = header(headers, "x-twilio-email-event-webhook-signature");
    if !webhook_signatures::sendgrid(&webhook_key(state, mailer)?, timestamp, body, signature) {
        return Err(refused("the signature does not match the verification key"));
    }
    json(body)
}

/// Mandrill: a form whose `mandrill_events` is the JSON array, signed with the URL as Mandrill was
/// given it (this server's address as the request names it, behind a proxy that says so).
fn mandrill(state: &AppState, mailer: &Mailer, headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Result<Value, ApiError> {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let url = format!("{}{}", origin_of(headers), uri.path_and_query().map(|p| p.as_str()).unwrap_or_default());
    let signed = suppression::mandrill_signed_data(&url, &params);
    if !webhook_signatures::mandrill(&webhook_key(state, mailer)?, &signed, header(headers, "x-mandrill-signature")) {
        return Err(refused(format!("the X-Mandrill-Signature does not match the webhook key for {url}")));
    }
    let events = params.iter().find(|(k, _)| k == "mandrill_events").ok_or_else(|| bad_payload("mandrill_events is missing"))?;
    json(events.1.as_bytes())
}

enum Sns {
    /// The SES notification or event inside the SNS message.
    Notification(Value),
    Confirmed,
}

/// Amazon SES through SNS: the SNS envelope, signed with the certificate at `SigningCertURL`.
/// A subscription confirmation is confirmed by fetching its `SubscribeURL`, under the same rule.
async fn sns(state: &AppState, body: &[u8]) -> Result<Sns, ApiError> {
    let envelope = json(body)?;
    let text = |name: &str| envelope[name].as_str().unwrap_or_default();
    let string_to_sign = suppression::sns_string_to_sign(&envelope).ok_or_else(|| bad_payload("not an SNS message"))?;
    let certificate = sns_fetch(state, text("SigningCertURL")).await.map_err(|m| refused(format!("SigningCertURL: {m}")))?;
    if !webhook_signatures::sns(&certificate, text("SignatureVersion"), &string_to_sign, text("Signature")) {
        return Err(refused("the SNS signature does not match its signing certificate"));
    }
    match text("Type") {
        "Notification" => Ok(Sns::Notification(json(text("Message").as_bytes())?)),
        "SubscriptionConfirmation" => {
            sns_fetch(state, text("SubscribeURL")).await.map_err(|m| ApiError::new(StatusCode::BAD_GATEWAY, SCOPE, "confirmation_failed", m))?;
            Ok(Sns::Confirmed)
        }
        // UnsubscribeConfirmation: acknowledged, nothing to record.
        _ => Ok(Sns::Notification(Value::Object(Default::default()))),
    }
}

/// Signing certificates seen, by URL: SNS signs with few, and each is fetched once.
static SNS_CERTIFICATES: LazyLock<Mutex<HashMap<String, Vec<u8>>>> = LazyLock::new(Default::default);
const MAX_CACHED_CERTIFICATES: usize = 64;

/// GETs an SNS URL (a certificate, a subscription confirmation) if it is Amazon's (or under
/// `--sns-base-url`), through the guarded client; certificates are cached.
async fn sns_fetch(state: &AppState, url: &str) -> Result<Vec<u8>, String> {
    let parsed = Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
    if !sns_url_allowed(&parsed, state.targets.providers.mail.sns_base_url.as_ref()) {
        return Err(format!("'{url}' is not an Amazon SNS address"));
    }
    if let Some(cached) = SNS_CERTIFICATES.lock().expect("never poisoned").get(url) {
        return Ok(cached.clone());
    }
    let http = &state.targets.http;
    match http.send(&parsed, http.request(reqwest::Method::GET, parsed.clone())).await {
        AttemptOutcome::Response { status: 200, excerpt, .. } => {
            let body = excerpt.into_bytes();
            if url.ends_with(".pem") {
                let mut cache = SNS_CERTIFICATES.lock().expect("never poisoned");
                if cache.len() >= MAX_CACHED_CERTIFICATES {
                    cache.clear();
                }
                cache.insert(url.to_owned(), body.clone());
            }
            Ok(body)
        }
        other => Err(format!("fetching {url}: {}", crate::domain::delivery::explain(&other))),
    }
}
