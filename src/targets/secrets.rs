//! Secrets at rest and in flight: the associated data that binds each sealed secret to its row,
//! and the Standard Webhooks signing of outbound requests.

use uuid::Uuid;

use super::factory::ResolveError;
use crate::crypto::secret_box::SecretBox;
use crate::domain::signing::{SigningKey, SigningSecret, signature_header};
use crate::domain::time::now_ms;
use crate::store::StoredSecret;

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
