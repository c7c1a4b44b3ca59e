//! Outbound targets: one trait, one adapter per kind of destination.
//!
//! Adapters turn a claimed delivery into a request and report what happened as a pure
//! `AttemptOutcome`; they never touch the queue. The engine decides what the outcome means.

pub(crate) mod custom_api;
pub(crate) mod destination;
pub mod http;
pub(crate) mod hubspot;
pub(crate) mod mail;
pub(crate) mod salesforce;
pub(crate) mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::crypto::secret_box::SecretBox;
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy, explain};
use crate::domain::event::check_depth;
use crate::domain::fanout::{TargetKind, TargetRef};
use crate::domain::integration::IntegrationConfig;
use crate::domain::mapping::MappingRow;
use crate::domain::signing::{SigningKey, SigningSecret, signature_header};
use crate::domain::time::{Millis, now_ms};
use crate::store::{ClaimedDelivery, Integration, Mailer, Store, StoreError, StoredSecret};

#[async_trait]
pub trait Target: Send + Sync {
    fn failure_policy(&self) -> FailurePolicy;
    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome;
}

/// Integrations can also check their settings without delivering anything real.
#[async_trait]
pub trait Verify: Target {
    async fn verify(&self) -> Verification;
}

/// The answer to Verify Connection.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Verification {
    pub ok: bool,
    /// What happened, in plain words.
    pub message: String,
    pub http_status: Option<u16>,
}

impl Verification {
    pub fn from_outcome(outcome: &AttemptOutcome) -> Self {
        let ok = matches!(outcome, AttemptOutcome::Response { status, .. } if (200..300).contains(status));
        Self { ok, message: explain(outcome), http_status: outcome.http_status() }
    }
}

/// Server-level settings of the SaaS adapters.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    pub hubspot_base_url: Url,
    pub mail: mail::MailSettings,
}

/// What adapters need to be built: stored config, the key to decrypt its secrets, the client.
#[derive(Clone)]
pub struct TargetFactory {
    pub store: Arc<dyn Store>,
    pub secret_box: SecretBox,
    pub http: http::HttpClient,
    pub providers: ProviderSettings,
    pub salesforce_tokens: salesforce::TokenCache,
    pub adapters: AdapterCache,
}

/// Adapters built from stored settings (URL parsed, secrets decrypted, signing keys ready),
/// reused while the target's settings version holds and none of its secrets has expired.
#[derive(Clone, Default)]
pub struct AdapterCache(Arc<Mutex<HashMap<Uuid, CachedAdapter>>>);

struct CachedAdapter {
    version: Millis,
    valid_until: Millis,
    adapter: Arc<dyn Target>,
}

impl AdapterCache {
    fn get(&self, id: Uuid, version: Millis, now: Millis) -> Option<Arc<dyn Target>> {
        let cache = self.0.lock().expect("lock is never poisoned");
        cache.get(&id).filter(|c| c.version == version && now < c.valid_until).map(|c| c.adapter.clone())
    }

    fn put(&self, id: Uuid, version: Millis, valid_until: Millis, adapter: Arc<dyn Target>) {
        self.0.lock().expect("lock is never poisoned").insert(id, CachedAdapter { version, valid_until, adapter });
    }

    fn forget(&self, id: Uuid) {
        self.0.lock().expect("lock is never poisoned").remove(&id);
    }
}

/// Until when adapters signing with these secrets may be reused: the first expiry among them.
fn secrets_valid_until(secrets: &[StoredSecret]) -> Millis {
    secrets.iter().filter_map(|s| s.expires_at).min().unwrap_or(Millis::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the target no longer exists")]
    Gone,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
}

/// The associated data that binds a stored signing secret to its row.
pub fn signing_secret_binding(secret_id: Uuid) -> String {
    format!("signing_secret:{secret_id}")
}

/// The associated data that binds an integration's credential to its integration.
pub fn integration_secret_binding(integration_id: Uuid) -> String {
    format!("integration_secret:{integration_id}")
}

/// The associated data that binds a mailer's credentials to its mailer.
pub fn mailer_credentials_binding(mailer_id: Uuid) -> String {
    format!("mailer_credentials:{mailer_id}")
}

/// Decrypts stored signing secrets into ready HMAC keys.
pub fn signing_keys(secrets: &[StoredSecret], secret_box: &SecretBox) -> Result<Vec<SigningKey>, ResolveError> {
    secrets
        .iter()
        .map(|s| {
            let plain = secret_box.open(&s.ciphertext, &signing_secret_binding(s.id)).map_err(|e| ResolveError::Config(e.to_string()))?;
            let text = String::from_utf8(plain).map_err(|_| ResolveError::Config("secret is not text".into()))?;
            let secret = SigningSecret::parse(&text).ok_or_else(|| ResolveError::Config("stored secret is malformed".into()))?;
            Ok(secret.signing_key())
        })
        .collect()
}

/// Adds the Standard Webhooks headers; the timestamp is this attempt's.
pub fn sign_request(request: reqwest::RequestBuilder, keys: &[SigningKey], msg_id: &str, body: &[u8]) -> reqwest::RequestBuilder {
    if keys.is_empty() {
        return request;
    }
    let timestamp = now_ms() / 1000;
    request
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature_header(keys, msg_id, timestamp, body))
}

/// An event's data as a JSON object (it was checked to be one when accepted).
pub fn data_object(delivery: &ClaimedDelivery) -> Result<serde_json::Map<String, serde_json::Value>, AttemptOutcome> {
    record_object("event data", &delivery.event.data)
}

/// A stored record (event data, an activation's row) as a JSON object, under the depth limit it
/// was accepted with.
pub fn record_object(what: &str, json: &str) -> Result<serde_json::Map<String, serde_json::Value>, AttemptOutcome> {
    let invalid = |message: String| AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: format!("{what}: {message}") };
    check_depth(json).map_err(|e| invalid(e.to_string()))?;
    serde_json::from_str(json).map_err(|e| invalid(format!("not a JSON object: {e}")))
}

/// An integration's settings with its credential in the clear, ready to build an adapter.
pub struct IntegrationSpec {
    pub id: Uuid,
    pub config: IntegrationConfig,
    pub mapping: Vec<MappingRow>,
    pub secret: Option<String>,
    pub signing_keys: Vec<SigningKey>,
}

impl TargetFactory {
    /// The adapter for a target at settings `version`, reused from the cache when it holds.
    /// Mailers are always rebuilt: their `verified` gate changes without a new settings version.
    pub async fn resolve(&self, target: TargetRef, version: Millis, now: Millis) -> Result<Arc<dyn Target>, ResolveError> {
        if let Some(adapter) = self.adapters.get(target.id, version, now) {
            return Ok(adapter);
        }
        let (adapter, valid_until) = match self.build(target, now).await {
            Err(ResolveError::Gone) => {
                self.adapters.forget(target.id);
                return Err(ResolveError::Gone);
            }
            other => other?,
        };
        if target.kind != TargetKind::Mailer {
            self.adapters.put(target.id, version, valid_until, adapter.clone());
        }
        Ok(adapter)
    }

    /// Builds the adapter for a target from its current stored configuration, and says until
    /// when it may be reused.
    async fn build(&self, target: TargetRef, now: Millis) -> Result<(Arc<dyn Target>, Millis), ResolveError> {
        Ok(match target.kind {
            TargetKind::Webhook => {
                let config = self.store.webhook_target(target.id, now).await?.ok_or(ResolveError::Gone)?;
                let valid_until = secrets_valid_until(&config.secrets);
                (Arc::new(webhook::WebhookTarget::new(target.id, config, &self.secret_box, self.http.clone())?), valid_until)
            }
            TargetKind::Integration(_) => {
                let (integration, secrets) = self.store.integration_target(target.id, now).await?.ok_or(ResolveError::Gone)?;
                let valid_until = secrets_valid_until(&secrets);
                (Arc::from(self.integration(self.spec(integration, &secrets)?)? as Box<dyn Target>), valid_until)
            }
            TargetKind::Mailer => {
                let mailer = self.store.mailer_target(target.id).await?.ok_or(ResolveError::Gone)?;
                (Arc::new(self.mailer(mailer)?), Millis::MAX)
            }
            TargetKind::Destination => {
                let destination = self.store.destination_target(target.id).await?.ok_or(ResolveError::Gone)?;
                (Arc::new(destination::DestinationTarget::new(destination, self.http.clone())?), Millis::MAX)
            }
        })
    }

    /// The adapter of a mailer, with its credentials decrypted.
    pub fn mailer(&self, mailer: Mailer) -> Result<mail::MailerTarget, ResolveError> {
        let credentials = match &mailer.credentials {
            None => serde_json::Map::new(),
            Some(sealed) => {
                let plain = self.secret_box.open(sealed, &mailer_credentials_binding(mailer.id)).map_err(|e| ResolveError::Config(e.to_string()))?;
                serde_json::from_slice(&plain).map_err(|_| ResolveError::Config("stored credentials are not a JSON object".into()))?
            }
        };
        Ok(mail::MailerTarget::new(mailer, credentials, self.http.clone(), self.providers.mail.clone()))
    }

    /// A stored integration with its credential decrypted.
    pub fn spec(&self, integration: Integration, signing_secrets: &[StoredSecret]) -> Result<IntegrationSpec, ResolveError> {
        let secret = integration
            .secret
            .as_deref()
            .map(|sealed| {
                let plain =
                    self.secret_box.open(sealed, &integration_secret_binding(integration.id)).map_err(|e| ResolveError::Config(e.to_string()))?;
                String::from_utf8(plain).map_err(|_| ResolveError::Config("credential is not text".into()))
            })
            .transpose()?;
        Ok(IntegrationSpec {
            id: integration.id,
            config: integration.config,
            mapping: integration.mapping,
            secret,
            signing_keys: signing_keys(signing_secrets, &self.secret_box)?,
        })
    }

    /// Builds an integration adapter, also for settings not saved yet (Verify Connection).
    pub fn integration(&self, spec: IntegrationSpec) -> Result<Box<dyn Verify>, ResolveError> {
        let secret = spec.secret.unwrap_or_default();
        Ok(match spec.config {
            IntegrationConfig::CustomApi(config) => {
                Box::new(custom_api::CustomApiTarget::new(config, &secret, spec.mapping, spec.signing_keys, self.http.clone())?)
            }
            IntegrationConfig::Hubspot(_) => {
                Box::new(hubspot::HubspotTarget::new(self.providers.hubspot_base_url.clone(), secret, spec.mapping, self.http.clone()))
            }
            IntegrationConfig::Salesforce(config) => {
                Box::new(salesforce::SalesforceTarget::new(spec.id, config, secret, spec.mapping, self.http.clone(), self.salesforce_tokens.clone())?)
            }
        })
    }
}
