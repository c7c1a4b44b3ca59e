//! Authenticated encryption of secrets at rest (XChaCha20-Poly1305, random 24-byte nonces).
//!
//! Each ciphertext is bound to the row it belongs to through associated data, so a secret copied
//! into another row does not decrypt.

use crate::domain::ids::{AccountId, TargetId};
use crate::domain::receiver_auth::{AuthSecrets, ReceiverAuth, StoredReceiverAuth};
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use uuid::Uuid;

const NONCE_LEN: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Keys `derived_token`: derived from the server key, never the key itself.
    token_key: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum SecretBoxError {
    #[error("the server key must be 32 bytes of standard base64")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong server key or tampered data)")]
    Undecryptable,
    #[error("server key file {path}: {source}")]
    KeyFile { path: String, source: std::io::Error },
}

impl SecretBox {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { cipher: XChaCha20Poly1305::new(&key.into()), token_key: hmac_sha256(&key, b"switchyard derived tokens") }
    }

    /// An unguessable token for `context`, the same on every node sharing the server key, so it
    /// need not be stored (a mailer's inbound webhook URL). Base64url, 43 characters.
    pub fn derived_token(&self, context: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.token_key, context.as_bytes()))
    }

    /// Whether `given` is `derived_token(context)`, compared in constant time.
    pub fn is_derived_token(&self, context: &str, given: &str) -> bool {
        use hmac::{Hmac, Mac};
        let Ok(given) = URL_SAFE_NO_PAD.decode(given) else { return false };
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.token_key).expect("HMAC takes keys of any length");
        mac.update(context.as_bytes());
        mac.verify_slice(&given).is_ok()
    }

    pub fn from_base64(text: &str) -> Result<Self, SecretBoxError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SecretBoxError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretBoxError::BadKey)?;
        Ok(Self::from_key(key))
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh random key on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretBoxError> {
        let io_err = |source| SecretBoxError::KeyFile { path: path.display().to_string(), source };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = super::random_bytes::<32>();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io_err)?;
                file.write_all(format!("{}\n", STANDARD.encode(key)).as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    pub fn seal(&self, plaintext: &[u8], row_binding: &str) -> Vec<u8> {
        let nonce = super::random_bytes::<NONCE_LEN>();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: row_binding.as_bytes() })
            .expect("encryption of in-memory data cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    pub fn open(&self, sealed: &[u8], row_binding: &str) -> Result<Vec<u8>, SecretBoxError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretBoxError::Undecryptable);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad: row_binding.as_bytes() }).map_err(|_| SecretBoxError::Undecryptable)
    }

    /// Seals a target's receiver-authentication secrets (as JSON) to its row.
    pub fn seal_auth_secrets(&self, target: TargetId, secrets: &AuthSecrets) -> Vec<u8> {
        self.seal(&serde_json::to_vec(secrets).expect("secrets serialize"), &receiver_auth_binding(target))
    }

    /// A stored receiver authentication with its secrets opened.
    pub fn open_receiver_auth(&self, target: TargetId, stored: &StoredReceiverAuth) -> Result<(ReceiverAuth, AuthSecrets), SecretBoxError> {
        let plain = self.open(&stored.sealed_secrets, &receiver_auth_binding(target))?;
        let secrets = serde_json::from_slice(&plain).map_err(|_| SecretBoxError::Undecryptable)?;
        Ok((stored.settings.clone(), secrets))
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The associated data that binds a stored signing secret to its row (every sealed secret is
/// bound to its row, so a ciphertext moved to another row does not open).
pub fn signing_secret_binding(secret_id: Uuid) -> String {
    format!("signing_secret:{secret_id}")
}

/// The associated data that binds an integration's credential to its integration.
pub fn integration_secret_binding(integration_id: TargetId) -> String {
    format!("integration_secret:{integration_id}")
}

/// The associated data that binds a target's receiver-authentication secrets to its target.
fn receiver_auth_binding(target_id: TargetId) -> String {
    format!("receiver_auth:{target_id}")
}

/// The associated data that binds a mailer's credentials to its mailer.
pub fn mailer_credentials_binding(mailer_id: TargetId) -> String {
    format!("mailer_credentials:{mailer_id}")
}

/// The associated data that binds a mailer's event webhook key to its mailer.
pub fn mailer_webhook_key_binding(mailer_id: TargetId) -> String {
    format!("mailer_webhook_key:{mailer_id}")
}

/// The associated data that binds a passed test of unsaved mailer settings to its account, so
/// one account's proof never verifies another's mailer.
pub fn mailer_test_proof_binding(account_id: AccountId) -> String {
    format!("mailer_test_proof:{account_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_its_row() {
        let sb = SecretBox::from_key([9; 32]);
        let token = sb.derived_token("mailer_inbound:1");
        assert!(sb.is_derived_token("mailer_inbound:1", &token) && !sb.is_derived_token("mailer_inbound:2", &token));
        assert!(!SecretBox::from_key([8; 32]).is_derived_token("mailer_inbound:1", &token), "another server key");
        let sealed = sb.seal(b"whsec_secret", "row-1");
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"), "plaintext must not appear");
        assert_eq!(sb.open(&sealed, "row-1").unwrap(), b"whsec_secret");
        assert!(sb.open(&sealed, "row-2").is_err(), "bound to its row");
        assert!(SecretBox::from_key([8; 32]).open(&sealed, "row-1").is_err(), "wrong key");
    }

    #[test]
    fn key_file_is_created_once_with_owner_only_permissions() {
        let dir = std::env::temp_dir().join(format!("sy-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("switchyard.db.key");
        let first = SecretBox::load_or_create(&path).unwrap();
        let sealed = first.seal(b"x", "r");
        let second = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(second.open(&sealed, "r").unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
