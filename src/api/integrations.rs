//! Integrations (seeds 000/001): Custom API, HubSpot and Salesforce, with field mapping,
//! workspaces and Verify Connection.

use crate::domain::ids::TargetId;
use crate::domain::ownership::Ordering;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{
    auth_error, checked_events, checked_name, checked_rate_limit, checked_url, chosen_scope, default_scope, new_signing_secret, present,
    resolved_receiver_auth, scope_view, sealed_receiver_auth, sent,
};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams, parse_id};
use super::target_ops::{self, RecoverRequest, StatsRequest, TargetFamily, TargetStats};
use super::tasks::TaskOne;
use super::{ApiResult, AppState, Success, success};
use crate::crypto::secret_box::integration_secret_binding;
use crate::domain::account::Caller;
use crate::domain::fanout::TargetKind;
use crate::domain::fields::SOURCE_FIELDS;
use crate::domain::integration::Integration;
use crate::domain::integration::{self, ConfigError, DEFAULT_EVENT, IntegrationConfig, IntegrationKind, auth_header, secret_hint};
use crate::domain::mapping::{self, MappingRow};
use crate::domain::receiver_auth::{ReceiverAuth, ReceiverAuthInput};
use crate::domain::time::{now_ms, rfc3339};
use crate::targets::{IntegrationSpec, Verification};

const SCOPE: Scope = Scope::Integrations;
const FAMILY: TargetFamily = TargetFamily { scope: SCOPE, noun: "integration", kinds: |k| matches!(k, TargetKind::Integration(_)) };

/// An integration. Its credential is never returned: `secret_hint` shows its first characters.
#[derive(Serialize, ToSchema)]
pub struct IntegrationView {
    id: Uuid,
    account_id: Uuid,
    kind: IntegrationKind,
    name: String,
    /// Event types that trigger it.
    events: Vec<String>,
    mapping: Vec<MappingRow>,
    /// Workspaces it is available in (empty when `all_workspaces`).
    workspaces: Vec<Uuid>,
    /// Available in every workspace ("Select All").
    all_workspaces: bool,
    is_active: bool,
    /// Most deliveries in any one-second window, across all workers and nodes; null: no limit.
    rate_limit: Option<u32>,
    /// `fifo`: one delivery at a time, in the order the events were accepted, the next only
    /// after the one before succeeded or failed for good; `unordered` (the default): side by
    /// side, up to the concurrency cap.
    ordering: Ordering,
    /// Kind-specific settings.
    #[schema(value_type = Object)]
    config: serde_json::Value,
    secret_hint: Option<String>,
    /// Custom API requests are signed like webhooks; the secret is shown once, at creation.
    signing_secret_prefix: Option<String>,
    /// Custom API: how requests authenticate to the receiver besides `auth_type`; secrets are
    /// never returned (hints instead).
    receiver_auth: Option<ReceiverAuth>,
    /// Custom API: attempts' requests carry a W3C `traceparent` (their span's), when the server
    /// exports traces.
    propagate_trace: bool,
    created_at: String,
    updated_at: String,
}

impl From<Integration> for IntegrationView {
    fn from(i: Integration) -> Self {
        let (workspaces, all_workspaces) = scope_view(i.workspaces);
        Self {
            id: i.id.into(),
            account_id: i.account_id.into(),
            kind: i.config.kind(),
            name: i.name,
            events: i.events,
            mapping: i.mapping,
            workspaces,
            all_workspaces,
            is_active: i.is_active,
            rate_limit: i.rate_limit,
            ordering: i.ordering,
            config: i.config.to_json(),
            secret_hint: i.secret_hint,
            signing_secret_prefix: i.signing_secret_prefix,
            receiver_auth: i.receiver_auth.map(|a| a.settings),
            propagate_trace: i.propagate_trace,
            created_at: rfc3339(i.created_at),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

/// Fields an integration is created or updated with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationFields {
    /// Defaults to "Custom API Integration", "HubSpot Integration" or "Salesforce Integration".
    #[schema(max_length = 200)]
    name: Option<String>,
    /// Defaults to `["participant.completed"]`.
    events: Option<Vec<String>>,
    mapping: Option<Vec<MappingRow>>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    workspaces: Option<Vec<String>>,
    /// Defaults to true when no `workspaces` are given.
    all_workspaces: Option<bool>,
    is_active: Option<bool>,
    /// Most deliveries per second (in any one-second window, across all workers and nodes),
    /// 1 to 100000; null: no limit (the default). On update, omit to keep it.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<serde_json::Value>,
    /// `fifo`: one delivery at a time, in the order the events were accepted, the next only
    /// after the one before succeeded or failed for good; `unordered` (the default): side by
    /// side, up to the concurrency cap.
    /// On update, omit to keep it (it applies to what is sent next).
    ordering: Option<Ordering>,
    /// Custom API: `endpoint`, `method`, `auth_type`, `custom_header_name`. HubSpot: `{}`.
    /// Salesforce: `domain`, `consumer_key`, `object`, `external_id_field`, `external_id_source`.
    /// On update it replaces the whole settings object.
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    /// Write-only: the API key (Basic auth: `username:password`), the HubSpot access token, or
    /// the Salesforce consumer secret. On update: omit to keep the stored one, `""` removes it.
    secret: Option<String>,
    /// Custom API only: how requests authenticate to the receiver besides `auth_type` (static
    /// headers, OAuth 2.0 client credentials, a client certificate, a CA of its own). On update
    /// it replaces the stored one (secrets omitted are kept); null removes it, omitted keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ReceiverAuthInput>)]
    receiver_auth: Option<Option<ReceiverAuthInput>>,
    /// Custom API only: attempts' requests carry a W3C `traceparent` (their span's), when the
    /// server exports traces. Default false; on update, omit to keep it.
    propagate_trace: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegration {
    kind: IntegrationKind,
    #[serde(flatten)]
    fields: IntegrationFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegration {
    #[schema(format = Uuid)]
    id: String,
    #[serde(flatten)]
    fields: IntegrationFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyIntegration {
    /// A saved integration; `config`, `secret` and `mapping` given here override what is stored.
    #[schema(format = Uuid)]
    id: Option<String>,
    /// For settings not saved yet.
    kind: Option<IntegrationKind>,
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    secret: Option<String>,
    mapping: Option<Vec<MappingRow>>,
    /// Custom API: overrides the stored receiver authentication (secrets omitted are kept).
    receiver_auth: Option<ReceiverAuthInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationCreated {
    integration: IntegrationView,
    /// Custom API only: the `whsec_` secret its requests are signed with. Shown only here.
    signing_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationOne {
    integration: IntegrationView,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationList {
    integrations: Vec<IntegrationView>,
}

#[derive(Serialize, ToSchema)]
pub struct IntegrationDeleted {
    id: Uuid,
    deleted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct KindView {
    kind: IntegrationKind,
    title: &'static str,
    category: &'static str,
    description: &'static str,
    default_name: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct KindList {
    /// For the category filter: "All" first.
    categories: Vec<&'static str>,
    kinds: Vec<KindView>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldView {
    key: &'static str,
    display_name: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct FieldList {
    fields: Vec<FieldView>,
}

fn bad(reason: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, SCOPE, reason, message)
}

fn config_error(e: ConfigError) -> ApiError {
    match e {
        ConfigError::Invalid(m) => bad("invalid_config", m),
        ConfigError::SecretRequired(m) => bad("secret_required", m),
        ConfigError::MissingRequiredMapping(m) => bad("missing_required_field", m),
    }
}

/// The name given, or the kind's default when none is.
fn name_or_default(name: Option<String>, kind: IntegrationKind) -> Result<String, ApiError> {
    let name = checked_name(SCOPE, "name", name.as_deref().unwrap_or_default())?;
    Ok(if name.is_empty() { kind.default_name().to_owned() } else { name })
}

/// Parses the kind's settings and checks the URLs in them against the destination policy.
async fn checked_config(state: &AppState, kind: IntegrationKind, config: Option<serde_json::Value>) -> Result<IntegrationConfig, ApiError> {
    let value = config.unwrap_or_else(|| serde_json::json!({}));
    let mut config = IntegrationConfig::from_json(kind, value).map_err(|m| bad("invalid_config", m))?;
    match &mut config {
        IntegrationConfig::CustomApi(c) => c.endpoint = checked_url(state, SCOPE, Some(&c.endpoint)).await?,
        IntegrationConfig::Salesforce(c) if !c.domain.trim().is_empty() => {
            let url = c.login_url().map_err(|m| bad("invalid_url", m))?;
            checked_url(state, SCOPE, Some(url.as_str())).await?;
        }
        IntegrationConfig::Salesforce(_) | IntegrationConfig::Hubspot(_) => {}
    }
    Ok(config)
}

fn checked_mapping(rows: Vec<MappingRow>) -> Result<Vec<MappingRow>, ApiError> {
    mapping::validate(&rows).map_err(|m| bad("invalid_mapping", m))?;
    Ok(rows.into_iter().map(|r| MappingRow { webhook_field: r.webhook_field.trim().to_owned(), ..r }).collect())
}

/// Seals a credential for this integration; `""` means none.
fn sealed_secret(state: &AppState, id: TargetId, secret: &str) -> (Option<Vec<u8>>, Option<String>) {
    if secret.is_empty() {
        return (None, None);
    }
    (Some(state.secret_box.seal(secret.as_bytes(), &integration_secret_binding(id))), Some(secret_hint(secret)))
}

/// Only a Custom API's requests can carry a `traceparent`: the SaaS APIs' are not the account's.
fn check_propagation(config: &IntegrationConfig, propagate_trace: bool) -> Result<(), ApiError> {
    match config {
        IntegrationConfig::CustomApi(_) => Ok(()),
        _ if propagate_trace => Err(bad("invalid_config", "propagate_trace is for Custom API integrations only")),
        _ => Ok(()),
    }
}

/// Receiver authentication is for Custom APIs, and repeats no header their `auth_type` sets.
fn check_receiver_auth(config: &IntegrationConfig, auth: Option<&ReceiverAuth>) -> Result<(), ApiError> {
    let Some(auth) = auth else { return Ok(()) };
    match config {
        IntegrationConfig::CustomApi(c) => auth.check_against(auth_header(c, "").map(|(name, _)| name).as_deref()).map_err(|e| auth_error(SCOPE, e)),
        _ => Err(bad("invalid_config", "receiver_auth is for Custom API integrations only")),
    }
}

async fn owned_integration(state: &AppState, caller: &Caller, id: &str) -> Result<Integration, ApiError> {
    let id = parse_id(SCOPE, "id", id)?;
    state.store.targets.get_integration(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "integration"))
}

/// Create an integration. Custom API integrations also get a signing secret, shown only here.
#[utoipa::path(post, path = "/api/integrations-create", tag = "integrations", request_body = CreateIntegration,
    responses((status = 200, body = Success<IntegrationCreated>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(create): ApiJson<CreateIntegration>) -> ApiResult<IntegrationCreated> {
    let (kind, req) = (create.kind, create.fields);
    let name = name_or_default(req.name, kind)?;
    let events = req.events.unwrap_or_else(|| vec![DEFAULT_EVENT.to_owned()]);
    let events = checked_events(&state, SCOPE, caller.account_id, &events).await?;
    let mapping = checked_mapping(req.mapping.unwrap_or_default())?;
    let workspaces = chosen_scope(&state, SCOPE, &caller, req.workspaces, req.all_workspaces).await?.unwrap_or_else(|| default_scope(&caller));
    let rate_limit = checked_rate_limit(SCOPE, req.rate_limit.as_ref())?.flatten();
    let config = checked_config(&state, kind, req.config).await?;
    let secret = req.secret.unwrap_or_default();
    integration::validate(&config, !secret.is_empty(), Some(&secret).filter(|s| !s.is_empty()).map(String::as_str), &mapping)
        .map_err(config_error)?;

    let id = TargetId::now_v7();
    let receiver_auth = sealed_receiver_auth(&state, SCOPE, id, req.receiver_auth.flatten(), None).await?;
    check_receiver_auth(&config, receiver_auth.as_ref().map(|a| &a.settings))?;
    let propagate_trace = req.propagate_trace.unwrap_or_default();
    check_propagation(&config, propagate_trace)?;
    let now = now_ms();
    let signing = (kind == IntegrationKind::CustomApi).then(|| new_signing_secret(&state, now));
    let (sealed, hint) = sealed_secret(&state, id, &secret);
    let integration = Integration {
        id,
        account_id: caller.account_id,
        name,
        config,
        mapping,
        events,
        workspaces,
        is_active: req.is_active.unwrap_or(true),
        rate_limit,
        ordering: req.ordering.unwrap_or_default(),
        secret: sealed,
        secret_hint: hint,
        signing_secret_prefix: signing.as_ref().map(|(s, _)| s.prefix()),
        receiver_auth,
        propagate_trace,
        created_at: now,
        updated_at: now,
    };
    state.store.targets.insert_integration(&integration, signing.as_ref().map(|(_, stored)| stored)).await.or_store_error(SCOPE)?;
    state.engine.changed();
    success(IntegrationCreated { integration: integration.into(), signing_secret: signing.map(|(s, _)| s.expose()) })
}

/// List the account's integrations, oldest first.
#[utoipa::path(post, path = "/api/integrations-list", tag = "integrations",
    responses((status = 200, body = Success<IntegrationList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<IntegrationList> {
    let all = state.store.targets.list_integrations(caller.account_id).await.or_store_error(SCOPE)?;
    success(IntegrationList { integrations: all.into_iter().filter(|i| caller.sees(&i.workspaces)).map(Into::into).collect() })
}

/// Get one integration.
#[utoipa::path(post, path = "/api/integrations-get", tag = "integrations", request_body = IntegrationId,
    responses((status = 200, body = Success<IntegrationOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<IntegrationId>) -> ApiResult<IntegrationOne> {
    success(IntegrationOne { integration: owned_integration(&state, &caller, &req.id).await?.into() })
}

/// Change an integration; omitted fields keep their value, an omitted secret stays stored.
#[utoipa::path(post, path = "/api/integrations-update", tag = "integrations", request_body = UpdateIntegration,
    responses((status = 200, body = Success<IntegrationOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(update): ApiJson<UpdateIntegration>) -> ApiResult<IntegrationOne> {
    let mut integration = owned_integration(&state, &caller, &update.id).await?;
    let req = update.fields;
    let kind = integration.config.kind();
    if req.name.is_some() {
        integration.name = name_or_default(req.name, kind)?;
    }
    if let Some(events) = req.events {
        integration.events = checked_events(&state, SCOPE, caller.account_id, &events).await?;
    }
    if let Some(rows) = req.mapping {
        integration.mapping = checked_mapping(rows)?;
    }
    if let Some(workspaces) = chosen_scope(&state, SCOPE, &caller, req.workspaces, req.all_workspaces).await? {
        integration.workspaces = workspaces;
    }
    if let Some(active) = req.is_active {
        integration.is_active = active;
    }
    if let Some(rate_limit) = checked_rate_limit(SCOPE, req.rate_limit.as_ref())? {
        integration.rate_limit = rate_limit;
    }
    if let Some(ordering) = req.ordering {
        integration.ordering = ordering;
    }
    if req.config.is_some() {
        integration.config = checked_config(&state, kind, req.config).await?;
    }
    if let Some(secret) = &req.secret {
        (integration.secret, integration.secret_hint) = sealed_secret(&state, integration.id, secret);
    }
    let new_secret = req.secret.as_deref().filter(|s| !s.is_empty());
    integration::validate(&integration.config, integration.secret.is_some(), new_secret, &integration.mapping).map_err(config_error)?;
    if let Some(sent) = req.receiver_auth {
        integration.receiver_auth = sealed_receiver_auth(&state, SCOPE, integration.id, sent, integration.receiver_auth.as_ref()).await?;
    }
    check_receiver_auth(&integration.config, integration.receiver_auth.as_ref().map(|a| &a.settings))?;
    if let Some(propagate) = req.propagate_trace {
        integration.propagate_trace = propagate;
    }
    check_propagation(&integration.config, integration.propagate_trace)?;
    integration.updated_at = now_ms();
    if !state.store.targets.update_integration(&integration).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "integration"));
    }
    state.engine.changed();
    success(IntegrationOne { integration: integration.into() })
}

/// Delete an integration with its deliveries.
#[utoipa::path(post, path = "/api/integrations-delete", tag = "integrations", request_body = IntegrationId,
    responses((status = 200, body = Success<IntegrationDeleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<IntegrationId>) -> ApiResult<IntegrationDeleted> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    if !state.store.targets.delete_integration(caller.account_id, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "integration"));
    }
    success(IntegrationDeleted { id: id.into(), deleted: true })
}

/// Verify Connection: a marked test request for Custom API, a credentials check for HubSpot and
/// Salesforce. Works on saved integrations (`id`) and on settings not saved yet (`kind`, `config`).
#[utoipa::path(post, path = "/api/integrations-verify", tag = "integrations", request_body = VerifyIntegration,
    responses((status = 200, body = Success<Verification>)))]
pub async fn verify(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<VerifyIntegration>) -> ApiResult<Verification> {
    let mut spec = match (&req.id, req.kind) {
        (Some(id), _) => {
            let integration = owned_integration(&state, &caller, id).await?;
            let secrets =
                state.store.settings.integration_target(integration.id, now_ms()).await.or_store_error(SCOPE)?.map(|(_, s)| s).unwrap_or_default();
            let mut spec = state
                .targets
                .spec(integration, &secrets)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, SCOPE, "internal", e.to_string()))?;
            if req.config.is_some() {
                spec.config = checked_config(&state, spec.config.kind(), req.config).await?;
            }
            spec
        }
        // Unsaved settings share the nil id; cached Salesforce tokens are keyed on credentials too.
        (None, Some(kind)) => IntegrationSpec {
            id: TargetId::default(),
            config: checked_config(&state, kind, req.config).await?,
            mapping: Vec::new(),
            secret: None,
            signing_keys: Vec::new(),
            receiver_auth: None,
            propagate_trace: false,
        },
        (None, None) => return Err(ApiError::invalid_request(SCOPE, "give the id of a saved integration, or a kind and its config")),
    };
    if req.secret.is_some() {
        spec.secret = req.secret;
    }
    if let Some(rows) = req.mapping {
        spec.mapping = checked_mapping(rows)?;
    }
    if let Some(input) = req.receiver_auth {
        spec.receiver_auth = resolved_receiver_auth(&state, SCOPE, input, spec.receiver_auth.as_ref()).await?;
    }
    check_receiver_auth(&spec.config, spec.receiver_auth.as_ref().map(|(a, _)| a))?;
    let target = state.targets.integration(spec).map_err(|e| bad("invalid_config", e.to_string()))?;
    success(target.verify().await)
}

/// The three integration kinds with their category, for the selector.
#[utoipa::path(post, path = "/api/integration-kinds-list", tag = "integrations",
    responses((status = 200, body = Success<KindList>)))]
pub async fn kinds_list(_caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<KindList> {
    let kinds = IntegrationKind::ALL
        .into_iter()
        .map(|k| KindView { kind: k, title: k.title(), category: k.category(), description: k.description(), default_name: k.default_name() })
        .collect();
    success(KindList { categories: vec!["All", "Custom/Developer", "CRM & Marketing"], kinds })
}

/// The 43 source fields a mapping can use: display name and key.
#[utoipa::path(post, path = "/api/integrations-fields-list", tag = "integrations",
    responses((status = 200, body = Success<FieldList>)))]
pub async fn fields_list(_caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<FieldList> {
    success(FieldList { fields: SOURCE_FIELDS.iter().map(|(display_name, key)| FieldView { key, display_name }).collect() })
}

/// Succeeded, failed and pending counts of the integration's deliveries created in a window (default:
/// the last 24 hours).
#[utoipa::path(post, path = "/api/integrations-stats", tag = "integrations", request_body = StatsRequest,
    responses((status = 200, body = Success<TargetStats>)))]
pub async fn stats(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<StatsRequest>) -> ApiResult<TargetStats> {
    target_ops::stats(&state, &caller, &FAMILY, req).await
}

/// Re-queue every failed delivery to the integration created in a window of at most 14 days, as
/// manual retries, in the background: the answer is the task to follow with tasks-get.
#[utoipa::path(post, path = "/api/integrations-recover", tag = "integrations", request_body = RecoverRequest,
    responses((status = 200, body = Success<TaskOne>)))]
pub async fn recover(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<RecoverRequest>) -> ApiResult<TaskOne> {
    target_ops::recover(&state, &caller, &FAMILY, req).await
}
