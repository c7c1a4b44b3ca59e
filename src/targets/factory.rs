//! Building adapters from stored settings: `TargetFactory` decrypts a target's credentials and
//! builds its adapter, and `AdapterCache` keeps it while the target's settings version holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::domain::ids::TargetId;

use super::receiver::Receiver;
use super::secrets::signing_keys;
use super::{Target, Verify, custom_api, destination, http, hubspot, mail, oauth, salesforce, webhook};
use crate::crypto::secret_box::{SecretBox, integration_secret_binding, mailer_credentials_binding};
use crate::domain::fanout::{TargetKind, TargetRef};
use crate::domain::integration::Integration;
use crate::domain::integration::IntegrationConfig;
use crate::domain::mailer::Mailer;
use crate::domain::mapping::MappingRow;
use crate::domain::receiver_auth::{AuthSecrets, ReceiverAuth, StoredReceiverAuth};
use crate::domain::signing::SigningKey;
use crate::domain::signing::StoredSecret;
use crate::domain::time::Millis;
use crate::store::{StoreError, TargetSettings};

/// Server-level settings of the SaaS adapters.
#[derive(Clone, Debug)]
pub struct ProviderSettings {
    pub hubspot_base_url: Url,
    pub mail: mail::MailSettings,
}

/// What adapters need to be built: stored config, the key to decrypt its secrets, the client.
#[derive(Clone)]
pub struct TargetFactory {
    pub store: Arc<dyn TargetSettings>,
    pub secret_box: SecretBox,
    pub http: http::HttpClient,
    pub providers: ProviderSettings,
    /// OAuth 2.0 tokens of every target that needs one (receiver authentication, Salesforce).
    pub tokens: oauth::TokenCache,
    pub adapters: AdapterCache,
}

/// Adapters built from stored settings (URL parsed, secrets decrypted, signing keys ready),
/// reused while the target's settings version holds and none of its secrets has expired.
#[derive(Clone, Default)]
pub struct AdapterCache(Arc<Mutex<HashMap<TargetId, CachedAdapter>>>);

struct CachedAdapter {
    version: Millis,
    valid_until: Millis,
    adapter: Arc<dyn Target>,
}

impl AdapterCache {
    fn get(&self, id: TargetId, version: Millis, now: Millis) -> Option<Arc<dyn Target>> {
        let cache = self.0.lock().expect("lock is never poisoned");
        cache.get(&id).filter(|c| c.version == version && now < c.valid_until).map(|c| c.adapter.clone())
    }

    fn put(&self, id: TargetId, version: Millis, valid_until: Millis, adapter: Arc<dyn Target>) {
        self.0.lock().expect("lock is never poisoned").insert(id, CachedAdapter { version, valid_until, adapter });
    }

    fn forget(&self, id: TargetId) {
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

/// An integration's settings with its credential in the clear, ready to build an adapter.
pub struct IntegrationSpec {
    pub id: TargetId,
    pub config: IntegrationConfig,
    pub mapping: Vec<MappingRow>,
    pub secret: Option<String>,
    pub signing_keys: Vec<SigningKey>,
    /// Its receiver authentication with the secrets opened (Custom API).
    pub receiver_auth: Option<(ReceiverAuth, AuthSecrets)>,
    /// Custom API: its requests carry the attempt's `traceparent`.
    pub propagate_trace: bool,
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
                let receiver =
                    self.receiver(target.id, self.open_auth(target.id, config.receiver_auth.as_ref())?.as_ref(), config.propagate_trace)?;
                (Arc::new(webhook::WebhookTarget::new(target.id, config, &self.secret_box, receiver)?), valid_until)
            }
            TargetKind::Integration(_) => {
                let (integration, secrets) = self.store.integration_target(target.id, now).await?.ok_or(ResolveError::Gone)?;
                let valid_until = secrets_valid_until(&secrets);
                (Arc::from(self.integration(self.spec(integration, &secrets)?)? as Box<dyn Target>), valid_until)
            }
            TargetKind::Mailer => {
                let mailer = self.store.mailer_target(target.id).await?.ok_or(ResolveError::Gone)?;
                (Arc::new(self.mailer_with_fallback(mailer).await?), Millis::MAX)
            }
            TargetKind::Destination => {
                let destination = self.store.destination_target(target.id).await?.ok_or(ResolveError::Gone)?;
                let receiver =
                    self.receiver(target.id, self.open_auth(target.id, destination.receiver_auth.as_ref())?.as_ref(), destination.propagate_trace)?;
                (Arc::new(destination::DestinationTarget::new(destination, receiver)?), Millis::MAX)
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
        Ok(mail::MailerTarget::new(mailer, credentials, self.http.clone(), self.providers.mail.clone(), self.store.clone()))
    }

    /// The adapter of a mailer with its fallback's, if it names one of its account: one hop, the
    /// fallback's own fallback is not followed.
    async fn mailer_with_fallback(&self, mailer: Mailer) -> Result<mail::MailerTarget, ResolveError> {
        let fallback = match mailer.fallback_mailer_id {
            Some(id) => self.store.mailer_target(id).await?.filter(|f| f.account_id == mailer.account_id),
            None => None,
        };
        let target = self.mailer(mailer)?;
        Ok(match fallback {
            Some(fallback) => target.with_fallback(self.mailer(fallback)?),
            None => target,
        })
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
            receiver_auth: self.open_auth(integration.id, integration.receiver_auth.as_ref())?,
            propagate_trace: integration.propagate_trace,
            config: integration.config,
            mapping: integration.mapping,
            secret,
            signing_keys: signing_keys(signing_secrets, &self.secret_box)?,
        })
    }

    /// A stored receiver authentication with its secrets opened.
    pub fn open_auth(&self, id: TargetId, stored: Option<&StoredReceiverAuth>) -> Result<Option<(ReceiverAuth, AuthSecrets)>, ResolveError> {
        stored.map(|stored| self.secret_box.open_receiver_auth(id, stored).map_err(|e| ResolveError::Config(e.to_string()))).transpose()
    }

    /// The way to a target's receiver, with its authentication if it has one.
    fn receiver(&self, id: TargetId, auth: Option<&(ReceiverAuth, AuthSecrets)>, propagate_trace: bool) -> Result<Receiver, ResolveError> {
        let receiver = match auth {
            Some((settings, secrets)) => Receiver::new(id, settings, secrets, &self.http, &self.tokens)?,
            None => Receiver::open(self.http.clone()),
        };
        Ok(receiver.propagating_trace(propagate_trace))
    }

    /// Builds an integration adapter, also for settings not saved yet (Verify Connection).
    pub fn integration(&self, spec: IntegrationSpec) -> Result<Box<dyn Verify>, ResolveError> {
        let secret = spec.secret.unwrap_or_default();
        Ok(match spec.config {
            IntegrationConfig::CustomApi(config) => {
                let receiver = self.receiver(spec.id, spec.receiver_auth.as_ref(), spec.propagate_trace)?;
                Box::new(custom_api::CustomApiTarget::new(config, &secret, spec.mapping, spec.signing_keys, receiver)?)
            }
            IntegrationConfig::Hubspot(_) => {
                Box::new(hubspot::HubspotTarget::new(self.providers.hubspot_base_url.clone(), secret, spec.mapping, self.http.clone()))
            }
            IntegrationConfig::Salesforce(config) => {
                Box::new(salesforce::SalesforceTarget::new(spec.id, config, secret, spec.mapping, self.http.clone(), self.tokens.clone())?)
            }
        })
    }
}
