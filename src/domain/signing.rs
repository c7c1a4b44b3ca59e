//! Standard Webhooks signing (https://www.standardwebhooks.com/).
//!
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`; while a rotated
//! secret is in its grace period, one signature per valid secret, separated by spaces.
//!
//! ```
//! use switchyard::domain::signing::SigningSecret;
//!
//! // The specification's reference vector: any Standard Webhooks verifier agrees.
//! let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let signature = secret.signing_key().sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
//! assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::time::Millis;

const PREFIX: &str = "whsec_";
/// Shown again after creation (`secret_prefix`): enough to tell secrets apart, useless to forge.
const SHOWN_PREFIX_LEN: usize = 12;
pub const SECRET_BYTES: usize = 32;
/// Rotated-out secrets kept per target (expiring or expired); rotating again deletes the oldest
/// beyond this, so a target rotated in a loop cannot make every delivery carry a long header.
pub const MAX_OLD_SECRETS: u32 = 10;

/// A signing secret's raw key bytes. Its text form is `whsec_` + padded standard base64.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({}…)", self.prefix())
    }
}

impl SigningSecret {
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Self {
        Self(bytes.to_vec())
    }

    /// Parses `whsec_…`; Standard Webhooks allows 24 to 64 key bytes.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&bytes.len()).then_some(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    pub fn prefix(&self) -> String {
        self.expose().chars().take(SHOWN_PREFIX_LEN).collect()
    }

    pub fn signing_key(&self) -> SigningKey {
        SigningKey(Hmac::new_from_slice(&self.0).expect("HMAC takes keys of any length"))
    }
}

/// An HMAC state with the key already absorbed, so each signature costs only the message.
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    pub fn sign(&self, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one `v1,` signature per key, space-separated.
pub fn signature_header(keys: &[SigningKey], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    keys.iter().map(|k| k.sign(msg_id, timestamp_secs, body)).collect::<Vec<_>>().join(" ")
}

/// How far a `webhook-timestamp` may be from now, as Standard Webhooks verifiers allow.
pub const TOLERANCE_SECS: i64 = 5 * 60;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a number")]
    BadTimestamp,
    #[error("webhook-timestamp is {0} s away from now (more than 5 minutes)")]
    OutsideTolerance(i64),
    #[error("no signature matches this secret (wrong secret, or the body was changed)")]
    NoMatch,
}

/// Checks a request the way a receiver does: one of the space-separated `v1,` signatures must
/// match, and the timestamp must be within five minutes of `now_secs`.
pub fn verify(
    secret: &SigningSecret,
    msg_id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let msg_id = msg_id.ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = timestamp.ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures = signatures.ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if (now_secs - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::OutsideTolerance(now_secs - ts));
    }
    let expected = secret.signing_key().sign(msg_id, ts, body);
    // Compare in constant time per candidate: the HMAC check is what an attacker probes.
    let matches =
        |candidate: &str| candidate.len() == expected.len() && candidate.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if signatures.split(' ').any(matches) { Ok(()) } else { Err(VerifyError::NoMatch) }
}

/// An encrypted signing secret. `expires_at` is `None` for the current secret.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSecret {
    pub id: Uuid,
    pub ciphertext: Vec<u8>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_prefix_is_short() {
        let secret = SigningSecret::from_bytes([7; SECRET_BYTES]);
        let text = secret.expose();
        assert!(text.starts_with("whsec_") && text.ends_with('='));
        assert_eq!(SigningSecret::parse(&text), Some(secret.clone()));
        assert_eq!(secret.prefix().len(), 12);
        assert!(!format!("{secret:?}").contains(&text));
        assert_eq!(SigningSecret::parse("whsec_c2hvcnQ="), None, "too short a key");
        assert_eq!(SigningSecret::parse("sk_live"), None);
    }

    #[test]
    fn verification_accepts_good_and_refuses_tampered_or_stale() {
        let secret = SigningSecret::from_bytes([5; 32]);
        let other = SigningSecret::from_bytes([6; 32]);
        let header = signature_header(&[other.signing_key(), secret.signing_key()], "msg_1", 1000, b"{}");
        assert_eq!(verify(&secret, Some("msg_1"), Some("1000"), Some(&header), b"{}", 1010), Ok(()));
        assert_eq!(verify(&secret, Some("msg_1"), Some("1000"), Some(&header), b"{ }", 1010), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, Some("msg_2"), Some("1000"), Some(&header), b"{}", 1010), Err(VerifyError::NoMatch));
        assert_eq!(verify(&secret, Some("msg_1"), Some("1000"), Some(&header), b"{}", 1000 + 301), Err(VerifyError::OutsideTolerance(301)));
        assert_eq!(verify(&secret, None, Some("1000"), Some(&header), b"{}", 1000), Err(VerifyError::MissingHeader("webhook-id")));
        assert_eq!(verify(&secret, Some("m"), Some("soon"), Some(&header), b"{}", 1000), Err(VerifyError::BadTimestamp));
    }

    #[test]
    fn rotation_sends_one_signature_per_key() {
        let keys = [SigningSecret::from_bytes([1; 32]).signing_key(), SigningSecret::from_bytes([2; 32]).signing_key()];
        let header = signature_header(&keys, "id", 1, b"{}");
        let parts: Vec<_> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
    }
}
