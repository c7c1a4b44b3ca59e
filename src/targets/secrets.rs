//! Signing outbound requests: stored signing secrets opened into HMAC keys, and the Standard
//! Webhooks headers.

use super::factory::ResolveError;
use crate::crypto::secret_box::{SecretBox, signing_secret_binding};
use crate::domain::signing::StoredSecret;
use crate::domain::signing::{SigningKey, SigningSecret, signature_header};
use crate::domain::time::now_ms;

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
