//! Mailer integrations (seed 001): eight providers, Send Test Email as the gate, template
//! parameters, rules that send on events, and direct sends.

use crate::domain::ids::{EventId, TargetId};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{
    checked_events, checked_host, checked_name, checked_rate_limit, checked_workspaces, chosen_scope, default_scope, scope_view, sent,
};
use super::deliveries::DeliveryOne;
use super::error::{ApiError, OrStoreError, Scope};
use super::events::{TraceHeader, incoming_traceparent};
use super::extract::{ApiJson, NoParams, parse_id};
use super::inbound::inbound_path;
use super::target_ops::{self, RecoverRequest, StatsRequest, TargetFamily, TargetStats};
use super::tasks::TaskOne;
use super::{ApiResult, AppState, Success, success};
use crate::crypto::secret_box::{SecretBox, mailer_credentials_binding, mailer_test_proof_binding, mailer_webhook_key_binding};
use crate::crypto::webhook_signatures;
use crate::domain::account::Caller;
use crate::domain::event::{Event, check_data};
use crate::domain::fanout::{TargetKind, TargetRef};
use crate::domain::integration::check_secret;
use crate::domain::integration::secret_hint;
use crate::domain::mailer::Mailer;
use crate::domain::mailer::{self, DirectSend, MailerProvider, MailerRule, Template, TemplateParam, TestProof};
use crate::domain::time::{now_ms, rfc3339};
use crate::targets::Verification;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const SCOPE: Scope = Scope::Mailers;
const FAMILY: TargetFamily = TargetFamily { scope: SCOPE, noun: "mailer", kinds: |k| k == TargetKind::Mailer };
/// The event type recorded for direct sends (they bypass the catalog and fan-out).
pub const DIRECT_SEND_EVENT: &str = "mailer.send";

#[derive(Serialize, ToSchema)]
pub struct MailerView {
    id: Uuid,
    account_id: Uuid,
    name: String,
    provider: MailerProvider,
    sender_name: String,
    /// Not used by the built-in relay, which sends from the server's address.
    sender_email: Option<String>,
    reply_to: Option<String>,
    bcc: Option<String>,
    /// Non-secret provider settings (SES region, Mailgun domain and region, SMTP host, port, login, security).
    #[schema(value_type = Object)]
    config: Map<String, Value>,
    /// The first characters of each stored credential.
    #[schema(value_type = Object)]
    credential_hints: Map<String, Value>,
    template_params: Vec<TemplateParam>,
    rules: Vec<MailerRule>,
    workspaces: Vec<Uuid>,
    all_workspaces: bool,
    is_active: bool,
    /// Most e-mails in any one-second window, across all workers and nodes; null: no limit.
    rate_limit: Option<u32>,
    /// Set only by a successful Send Test Email; cleared when settings or credentials change.
    verified: bool,
    verified_at: Option<String>,
    /// Verified and active: sends go out. Otherwise they fail with `mailers.not_verified`.
    usable: bool,
    /// The mailer of this account that sends when this one's provider fails (no connection,
    /// timeout, TLS, HTTP 5xx or 429, refused credentials), if it is usable itself; its own
    /// fallback is not followed. Null: none.
    fallback_mailer_id: Option<Uuid>,
    /// The first characters of the stored `webhook_key`, if one is stored.
    webhook_key_hint: Option<String>,
    /// Where the provider posts its bounce and complaint events: append it to this server's
    /// public address and paste the URL into the provider's webhook settings (SES: an SNS HTTPS
    /// subscription). Null for SMTP and the built-in relay. Keep it secret: its token
    /// authenticates Mailjet's and Brevo's events.
    inbound_path: Option<String>,
    created_at: String,
    updated_at: String,
}

impl MailerView {
    fn new(m: Mailer, secret_box: &SecretBox) -> Self {
        let usable = m.usable();
        let inbound_path = inbound_path(secret_box, &m);
        let (workspaces, all_workspaces) = scope_view(m.workspaces);
        Self {
            id: m.id.into(),
            account_id: m.account_id.into(),
            name: m.name,
            provider: m.provider,
            sender_name: m.sender_name,
            sender_email: m.sender_email,
            reply_to: m.reply_to,
            bcc: m.bcc,
            config: m.config,
            credential_hints: m.credential_hints,
            template_params: m.template_params,
            rules: m.rules,
            workspaces,
            all_workspaces,
            is_active: m.is_active,
            rate_limit: m.rate_limit,
            usable,
            fallback_mailer_id: m.fallback_mailer_id.map(Into::into),
            webhook_key_hint: m.webhook_key_hint,
            inbound_path,
            verified: m.verified,
            verified_at: m.verified_at.map(rfc3339),
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
        }
    }
}

/// Fields a mailer is created or updated with.
#[derive(Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailerFields {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(max_length = 200)]
    sender_name: Option<String>,
    sender_email: Option<String>,
    reply_to: Option<String>,
    bcc: Option<String>,
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
    /// Write-only. SES: access_key_id, secret_access_key, session_token?; Brevo, Mailgun,
    /// Mandrill, SendGrid: api_key; Mailjet: api_key, secret_key; SMTP: password.
    #[schema(value_type = Option<Object>)]
    credentials: Option<Map<String, Value>>,
    template_params: Option<Vec<TemplateParam>>,
    rules: Option<Vec<MailerRule>>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    workspaces: Option<Vec<String>>,
    all_workspaces: Option<bool>,
    is_active: Option<bool>,
    /// Most e-mails per second (in any one-second window, across all workers and nodes), 1 to
    /// 100000; null: no limit (the default). On update, omit to keep it. Not a provider setting:
    /// changing it keeps `verified`.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<Value>,
    /// Another mailer of the account that sends when this one's provider fails; null: none. On
    /// update, omit to keep it. Not a provider setting: changing it keeps `verified`.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<Uuid>)]
    fallback_mailer_id: Option<Value>,
    /// Write-only. The key the provider signs its event webhook with: Mailgun's HTTP webhook
    /// signing key, Mandrill's webhook key, SendGrid's signed event webhook verification key
    /// (base64). Null or "" removes it; omit to keep it. Not a provider setting: changing it keeps
    /// `verified`.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<String>, max_length = 4096)]
    webhook_key: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailer {
    /// Fixed once the mailer exists.
    #[schema(value_type = MailerProvider, required = true)]
    provider: Option<MailerProvider>,
    /// The `test_proof` of a passed mailers-test of these settings before they were saved: the
    /// mailer is saved verified when its provider settings and credentials are the ones tested.
    test_proof: Option<String>,
    #[serde(flatten)]
    fields: MailerFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMailer {
    #[schema(format = Uuid)]
    id: String,
    /// The provider cannot change: only the mailer's own is accepted.
    provider: Option<MailerProvider>,
    /// As in mailers-create: verifies the mailer when the saved settings are the ones tested.
    test_proof: Option<String>,
    #[serde(flatten)]
    fields: MailerFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailerId {
    #[schema(format = Uuid)]
    id: String,
}

/// A saved mailer (`id`), a saved mailer with edits not saved yet (`id` and fields), or
/// settings not saved at all (`provider` and fields): the test uses the settings as given.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestMailer {
    #[schema(format = Uuid)]
    id: Option<String>,
    /// Without `id`: the provider of the settings to test.
    provider: Option<MailerProvider>,
    /// Where the test e-mail goes.
    to: String,
    #[serde(flatten)]
    fields: MailerFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMail {
    #[schema(format = Uuid)]
    mailer_id: String,
    /// Defaults to the record's `email`.
    to: Option<String>,
    template: Template,
    /// The record the template parameters are taken from.
    #[schema(value_type = Option<Object>)]
    data: Option<Map<String, Value>>,
    #[schema(format = Uuid)]
    workspace_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MailerOne {
    mailer: MailerView,
}

#[derive(Serialize, ToSchema)]
pub struct MailerList {
    mailers: Vec<MailerView>,
}

#[derive(Serialize, ToSchema)]
pub struct MailerDeleted {
    id: Uuid,
    deleted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TestResult {
    #[serde(flatten)]
    verification: Verification,
    /// The saved mailer, when the test was of its saved settings (then a pass verified it).
    mailer: Option<MailerView>,
    /// When a test of settings not saved yet passed: give it to mailers-create or mailers-update
    /// with the same provider settings and credentials (within an hour) to save them verified.
    test_proof: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    provider: MailerProvider,
    title: &'static str,
    has_sender_email: bool,
    supports_template_params: bool,
    config_fields: &'static [&'static str],
    credential_fields: &'static [&'static str],
    /// What the provider's `webhook_key` is, where it signs its event webhook with one.
    webhook_key: Option<&'static str>,
    /// Whether it reports bounces and complaints to an inbound webhook.
    has_event_webhook: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    providers: Vec<ProviderView>,
}

fn bad(reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, SCOPE, reason, message)
}

fn checked_address(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if !mailer::valid_address(&v) => Err(bad("invalid_address", format!("{field} '{v}' is not an e-mail address"))),
        other => Ok(other),
    }
}

fn seal_credentials(state: &AppState, id: TargetId, credentials: &Map<String, Value>) -> (Option<Vec<u8>>, Map<String, Value>) {
    let present: Map<String, Value> =
        credentials.iter().filter(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty())).map(|(k, v)| (k.clone(), v.clone())).collect();
    if present.is_empty() {
        return (None, Map::new());
    }
    let hints = present.iter().map(|(k, v)| (k.clone(), Value::String(secret_hint(v.as_str().unwrap_or_default())))).collect();
    let sealed = state.secret_box.seal(Value::Object(present).to_string().as_bytes(), &mailer_credentials_binding(id));
    (Some(sealed), hints)
}

/// Applies `fields` to `mailer` and checks the result as a whole. Returns whether the provider
/// settings or credentials changed (which clears `verified`).
async fn apply(state: &AppState, caller: &Caller, mailer: &mut Mailer, fields: MailerFields, creating: bool) -> Result<bool, ApiError> {
    let provider = mailer.provider;
    if let Some(name) = fields.name {
        let name = checked_name(SCOPE, "name", &name)?;
        if name.is_empty() {
            return Err(bad("invalid_request", "name cannot be empty"));
        }
        mailer.name = name;
    }
    if let Some(sender_name) = fields.sender_name {
        mailer.sender_name = checked_name(SCOPE, "sender_name", &sender_name)?;
    }
    if fields.sender_email.is_some() {
        mailer.sender_email = checked_address("sender_email", fields.sender_email)?;
    }
    if fields.reply_to.is_some() {
        mailer.reply_to = checked_address("reply_to", fields.reply_to)?;
    }
    if fields.bcc.is_some() {
        mailer.bcc = checked_address("bcc", fields.bcc)?;
    }
    if provider.has_sender_email() && mailer.sender_email.is_none() {
        return Err(bad("sender_email_required", format!("sender_email is required for {}", provider.title())));
    }
    if !provider.has_sender_email() && mailer.sender_email.is_some() {
        return Err(bad("invalid_request", "the built-in relay sends from the server's own address: give reply_to instead of sender_email"));
    }
    if provider == MailerProvider::Internal && mailer.reply_to.is_none() {
        return Err(bad("invalid_request", "reply_to is required for the built-in relay"));
    }
    let mut settings_changed = creating;
    if let Some(config) = fields.config {
        settings_changed |= config != mailer.config;
        mailer.config = config;
    }
    let new_credentials = fields.credentials;
    let credentials_for_check = new_credentials.clone().unwrap_or_else(|| {
        // Stored credentials were complete when saved; check the settings against their names.
        mailer.credential_hints.clone()
    });
    mailer::validate_settings(provider, &mailer.config, &credentials_for_check).map_err(|m| bad("invalid_config", m))?;
    if mailer.provider == MailerProvider::Smtp {
        let (host, port) = mailer::smtp_address(&mailer.config);
        checked_host(state.url_policy, &host, port).await.map_err(|e| bad("invalid_config", format!("config.host: {e}")))?;
    }
    if let Some(credentials) = new_credentials {
        (mailer.credentials, mailer.credential_hints) = seal_credentials(state, mailer.id, &credentials);
        settings_changed = true;
    }
    if let Some(params) = fields.template_params {
        mailer::validate_template_params(provider, &params).map_err(|m| bad("invalid_template_params", m))?;
        mailer.template_params = params;
    }
    if let Some(rules) = fields.rules {
        mailer::validate_rules(provider, &rules).map_err(|m| bad("invalid_rules", m))?;
        let types: Vec<String> = rules.iter().map(|r| r.event_type.clone()).collect();
        if !types.is_empty() {
            checked_events(state, SCOPE, mailer.account_id, &types).await?;
        }
        mailer.rules = rules;
    }
    if let Some(workspaces) = chosen_scope(state, SCOPE, caller, fields.workspaces, fields.all_workspaces).await? {
        mailer.workspaces = workspaces;
    }
    if let Some(active) = fields.is_active {
        mailer.is_active = active;
    }
    if let Some(rate_limit) = checked_rate_limit(SCOPE, fields.rate_limit.as_ref())? {
        mailer.rate_limit = rate_limit;
    }
    if let Some(fallback) = fields.fallback_mailer_id {
        mailer.fallback_mailer_id = fallback_id(&fallback)?;
    }
    if let Some(key) = fields.webhook_key {
        (mailer.webhook_key, mailer.webhook_key_hint) = sealed_webhook_key(state, mailer, &key)?;
    }
    // Checked on every save: the rules it must be able to send may have changed.
    if let Some(fallback) = mailer.fallback_mailer_id {
        let found = state.store.targets.get_mailer(mailer.account_id, fallback).await.or_store_error(SCOPE)?;
        mailer::check_fallback(mailer, fallback, found.as_ref()).map_err(|m| bad("invalid_fallback", m))?;
    }
    if settings_changed {
        mailer.verified = false;
        mailer.verified_at = None;
    }
    Ok(settings_changed)
}

/// The webhook key given (a string; null or "" for none), checked for the mailer's provider and
/// sealed, with its hint.
fn sealed_webhook_key(state: &AppState, mailer: &Mailer, value: &Value) -> Result<(Option<Vec<u8>>, Option<String>), ApiError> {
    let key = match value {
        Value::Null => return Ok((None, None)),
        Value::String(key) if key.trim().is_empty() => return Ok((None, None)),
        Value::String(key) => key.trim(),
        _ => return Err(bad("invalid_config", "webhook_key is a string")),
    };
    let Some(name) = mailer.provider.webhook_key_name() else {
        return Err(bad(
            "invalid_config",
            format!("{} signs no event webhook with a key: its inbound URL's token authenticates it", mailer.provider.title()),
        ));
    };
    check_secret("webhook_key", key).map_err(|m| bad("invalid_config", m))?;
    if mailer.provider == MailerProvider::Sendgrid && !webhook_signatures::is_sendgrid_key(key) {
        return Err(bad(
            "invalid_config",
            format!("webhook_key is SendGrid's {name}: a base64 P-256 public key (\"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…\")"),
        ));
    }
    Ok((Some(state.secret_box.seal(key.as_bytes(), &mailer_webhook_key_binding(mailer.id))), Some(secret_hint(key))))
}

/// The fallback named by `value`: a mailer id, or null for none.
fn fallback_id(value: &Value) -> Result<Option<TargetId>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => {
            text.parse::<Uuid>().map(|id| Some(id.into())).map_err(|_| bad("invalid_fallback", "fallback_mailer_id is not a mailer id"))
        }
        _ => Err(bad("invalid_fallback", "fallback_mailer_id is a mailer id or null")),
    }
}

async fn owned_mailer(state: &AppState, caller: &Caller, id: &str) -> Result<Mailer, ApiError> {
    let id = parse_id(SCOPE, "id", id)?;
    state.store.targets.get_mailer(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "mailer"))
}

/// Create a mailer. It cannot send until Send Test Email (`mailers-test`) succeeds.
#[utoipa::path(post, path = "/api/mailers-create", tag = "mailers", request_body = CreateMailer,
    responses((status = 200, body = Success<MailerOne>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateMailer>) -> ApiResult<MailerOne> {
    let CreateMailer { provider, test_proof, fields } = req;
    let provider = provider.ok_or_else(|| bad("invalid_request", "provider is required"))?;
    let mut mailer = draft(&caller, provider);
    apply(&state, &caller, &mut mailer, fields, true).await?;
    accept_proof(&state, &mut mailer, test_proof.as_deref())?;
    state.store.targets.insert_mailer(&mailer).await.or_store_error(SCOPE)?;
    state.engine.changed();
    success(MailerOne { mailer: MailerView::new(mailer, &state.secret_box) })
}

/// A new mailer of `provider` with its defaults, not stored, available where the caller's new
/// targets are.
fn draft(caller: &Caller, provider: MailerProvider) -> Mailer {
    Mailer { workspaces: default_scope(caller), ..Mailer::draft(caller.account_id, provider, now_ms()) }
}

/// The mailer's credentials in the clear (only to digest them: they are never answered).
fn plain_credentials(state: &AppState, mailer: &Mailer) -> Result<Map<String, Value>, ApiError> {
    let Some(sealed) = &mailer.credentials else { return Ok(Map::new()) };
    let internal = |m: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, SCOPE, "internal", m);
    let plain = state.secret_box.open(sealed, &mailer_credentials_binding(mailer.id)).map_err(|e| internal(e.to_string()))?;
    serde_json::from_slice(&plain).map_err(|_| internal("stored credentials are not a JSON object".into()))
}

fn digest(state: &AppState, mailer: &Mailer) -> Result<String, ApiError> {
    Ok(mailer::settings_digest(mailer.provider, &mailer.config, &plain_credentials(state, mailer)?))
}

/// A sealed `TestProof` of the mailer's settings, as text.
fn issue_proof(state: &AppState, mailer: &Mailer) -> Result<String, ApiError> {
    let proof = serde_json::to_vec(&TestProof::new(digest(state, mailer)?, now_ms())).expect("a proof serializes");
    Ok(STANDARD.encode(state.secret_box.seal(&proof, &mailer_test_proof_binding(mailer.account_id))))
}

/// Marks `mailer` verified when `proof` vouches for its settings as they will be saved. A proof
/// this server did not seal for this account is refused; an outdated one (settings changed since
/// the test, or expired) just leaves the mailer unverified, as its answer shows.
fn accept_proof(state: &AppState, mailer: &mut Mailer, proof: Option<&str>) -> Result<(), ApiError> {
    let Some(proof) = proof else { return Ok(()) };
    let refused = || bad("invalid_request", "test_proof is not a proof that mailers-test gave this account");
    let sealed = STANDARD.decode(proof).map_err(|_| refused())?;
    let plain = state.secret_box.open(&sealed, &mailer_test_proof_binding(mailer.account_id)).map_err(|_| refused())?;
    let proof: TestProof = serde_json::from_slice(&plain).map_err(|_| refused())?;
    let now = now_ms();
    if proof.vouches_for(&digest(state, mailer)?, now) {
        mailer.verified = true;
        mailer.verified_at = Some(now);
    }
    Ok(())
}

/// List the account's mailers.
#[utoipa::path(post, path = "/api/mailers-list", tag = "mailers",
    responses((status = 200, body = Success<MailerList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<MailerList> {
    let mailers = state.store.targets.list_mailers(caller.account_id).await.or_store_error(SCOPE)?;
    success(MailerList {
        mailers: mailers.into_iter().filter(|m| caller.sees(&m.workspaces)).map(|m| MailerView::new(m, &state.secret_box)).collect(),
    })
}

/// Get one mailer.
#[utoipa::path(post, path = "/api/mailers-get", tag = "mailers", request_body = MailerId,
    responses((status = 200, body = Success<MailerOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<MailerId>) -> ApiResult<MailerOne> {
    success(MailerOne { mailer: MailerView::new(owned_mailer(&state, &caller, &req.id).await?, &state.secret_box) })
}

/// Change a mailer. New provider settings or credentials clear `verified`; omitted credentials stay.
#[utoipa::path(post, path = "/api/mailers-update", tag = "mailers", request_body = UpdateMailer,
    responses((status = 200, body = Success<MailerOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<UpdateMailer>) -> ApiResult<MailerOne> {
    let mut mailer = owned_mailer(&state, &caller, &req.id).await?;
    if req.provider.is_some_and(|p| p != mailer.provider) {
        return Err(bad("invalid_request", "the provider of a mailer cannot change; create a new mailer"));
    }
    apply(&state, &caller, &mut mailer, req.fields, false).await?;
    accept_proof(&state, &mut mailer, req.test_proof.as_deref())?;
    mailer.updated_at = now_ms();
    let updated = state.store.targets.update_mailer(&mailer).await.or_store_error(SCOPE)?;
    state.engine.changed();
    if !updated {
        return Err(ApiError::not_found(SCOPE, "mailer"));
    }
    success(MailerOne { mailer: MailerView::new(mailer, &state.secret_box) })
}

/// Delete a mailer with its deliveries. A mailer that is another's fallback is kept
/// (`mailers.in_use`) until that one names another fallback or none.
#[utoipa::path(post, path = "/api/mailers-delete", tag = "mailers", request_body = MailerId,
    responses((status = 200, body = Success<MailerDeleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<MailerId>) -> ApiResult<MailerDeleted> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    let mailers = state.store.targets.list_mailers(caller.account_id).await.or_store_error(SCOPE)?;
    if let Some(user) = mailers.iter().find(|m| m.fallback_mailer_id == Some(id) && m.id != id) {
        let message = format!("This mailer is the fallback of \"{}\": give that mailer another fallback or none first", user.name);
        return Err(ApiError::new(StatusCode::CONFLICT, SCOPE, "in_use", message));
    }
    if !state.store.targets.delete_mailer(caller.account_id, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "mailer"));
    }
    success(MailerDeleted { id: id.into(), deleted: true })
}

/// Send Test Email: a real message through the provider, with the settings given. A pass on a
/// saved mailer's own settings marks it verified; a pass on settings not saved yet answers a
/// `test_proof` that verifies them when they are saved.
#[utoipa::path(post, path = "/api/mailers-test", tag = "mailers", request_body = TestMailer,
    responses((status = 200, body = Success<TestResult>)))]
pub async fn test(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<TestMailer>) -> ApiResult<TestResult> {
    let TestMailer { id, provider, to, fields } = req;
    let to = checked_address("to", Some(to))?.ok_or_else(|| bad("invalid_address", "to is required"))?;
    let (mut mailer, unsaved) = match (id, provider) {
        (Some(id), provider) => {
            let mut mailer = owned_mailer(&state, &caller, &id).await?;
            if provider.is_some_and(|p| p != mailer.provider) {
                return Err(bad("invalid_request", "the provider of a mailer cannot change; create a new mailer"));
            }
            // Without edits the saved settings are tested as they are, even ones saved before a
            // check they would now fail: the test's answer says what is wrong.
            let changed = fields != MailerFields::default() && apply(&state, &caller, &mut mailer, fields, false).await?;
            (mailer, changed)
        }
        (None, Some(provider)) => {
            let mut mailer = draft(&caller, provider);
            apply(&state, &caller, &mut mailer, fields, true).await?;
            (mailer, true)
        }
        (None, None) => return Err(bad("invalid_request", "give the id of a saved mailer, or a provider and its settings")),
    };
    let target =
        state.targets.mailer(mailer.clone()).map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, SCOPE, "internal", e.to_string()))?;
    let mut verification = Verification::from_outcome(&target.send_test(&to).await);
    if !verification.ok {
        return success(TestResult { verification, mailer: (!unsaved).then(|| MailerView::new(mailer, &state.secret_box)), test_proof: None });
    }
    verification.message = "Test email sent successfully".into();
    if unsaved {
        return success(TestResult { verification, test_proof: Some(issue_proof(&state, &mailer)?), mailer: None });
    }
    let now = now_ms();
    if state.store.targets.mark_mailer_verified(caller.account_id, mailer.id, mailer.updated_at, now).await.or_store_error(SCOPE)? {
        mailer.verified = true;
        mailer.verified_at = Some(now);
    }
    success(TestResult { verification, mailer: Some(MailerView::new(mailer, &state.secret_box)), test_proof: None })
}

/// Queue one e-mail through a verified mailer.
#[utoipa::path(post, path = "/api/mailers-send", tag = "mailers", request_body = SendMail, params(TraceHeader),
    responses((status = 200, body = Success<DeliveryOne>)))]
pub async fn send(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ApiJson(req): ApiJson<SendMail>) -> ApiResult<DeliveryOne> {
    let span = state.traces.accepting("mailers-send", incoming_traceparent(&headers));
    let mailer = owned_mailer(&state, &caller, &req.mailer_id).await?;
    if !(mailer.verified && mailer.is_active) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            SCOPE,
            "not_verified",
            "this mailer cannot send: it has not passed Send Test Email since its settings last changed, or it is disabled",
        ));
    }
    mailer::validate_template(mailer.provider, &req.template).map_err(|m| bad("invalid_template", m))?;
    let data = Value::Object(req.data.unwrap_or_default());
    let raw = serde_json::value::RawValue::from_string(data.to_string()).map_err(|e| bad("invalid_request", e.to_string()))?;
    check_data(&raw).map_err(|e| bad("invalid_data", e.to_string()))?;
    let to = checked_address("to", req.to)?;
    if to.is_none() && !data.get("email").and_then(Value::as_str).is_some_and(mailer::valid_address) {
        return Err(bad("invalid_address", "give `to`, or a record with a valid `email`"));
    }
    let workspace_id = match req.workspace_id {
        Some(w) => checked_workspaces(&state, SCOPE, &caller, &[w]).await?.pop(),
        None => None,
    };
    let event = Event {
        id: EventId::now_v7(),
        account_id: caller.account_id,
        event_type: DIRECT_SEND_EVENT.into(),
        workspace_id,
        data: raw.get().to_owned(),
        idempotency_key: None,
        created_at: now_ms(),
        traceparent: span.traceparent(),
    };
    // A struct of strings always serializes.
    let params = serde_json::to_string(&DirectSend { to, template: req.template }).expect("parameters serialize");
    let delivery =
        state.store.events.enqueue_direct(&event, TargetRef { kind: TargetKind::Mailer, id: mailer.id }, &params).await.or_store_error(SCOPE)?;
    span.accepted(&event, false);
    state.engine.work(mailer.id);
    success(DeliveryOne::from(delivery))
}

/// The eight providers with their settings and credential fields.
#[utoipa::path(post, path = "/api/mailer-providers-list", tag = "mailers",
    responses((status = 200, body = Success<ProviderList>)))]
pub async fn providers_list(_caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<ProviderList> {
    let providers = MailerProvider::ALL
        .into_iter()
        .map(|p| ProviderView {
            provider: p,
            title: p.title(),
            has_sender_email: p.has_sender_email(),
            supports_template_params: p.supports_template_params(),
            config_fields: p.config_fields(),
            credential_fields: p.credential_fields(),
            webhook_key: p.webhook_key_name(),
            has_event_webhook: p.has_event_webhook(),
        })
        .collect();
    success(ProviderList { providers })
}

/// Succeeded, failed and pending counts of the mailer's deliveries created in a window (default:
/// the last 24 hours).
#[utoipa::path(post, path = "/api/mailers-stats", tag = "mailers", request_body = StatsRequest,
    responses((status = 200, body = Success<TargetStats>)))]
pub async fn stats(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<StatsRequest>) -> ApiResult<TargetStats> {
    target_ops::stats(&state, &caller, &FAMILY, req).await
}

/// Re-queue every failed delivery to the mailer created in a window of at most 14 days, as
/// manual retries, in the background: the answer is the task to follow with tasks-get.
#[utoipa::path(post, path = "/api/mailers-recover", tag = "mailers", request_body = RecoverRequest,
    responses((status = 200, body = Success<TaskOne>)))]
pub async fn recover(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<RecoverRequest>) -> ApiResult<TaskOne> {
    target_ops::recover(&state, &caller, &FAMILY, req).await
}
