//! The signature schemes of the mail providers' event webhooks, checked the way each provider
//! documents them. Every comparison is constant-time (done by `hmac`/`ring`).
//!
//! - Mailgun: hex HMAC-SHA256 of `timestamp + token`, keyed with the webhook signing key.
//! - Mandrill: base64 HMAC-SHA1 of the signed data (`domain::suppression::mandrill_signed_data`),
//!   keyed with the webhook's key.
//! - SendGrid: base64 ECDSA P-256/SHA-256 signature (ASN.1 DER) of `timestamp + body`, with the
//!   verification key (base64 DER SubjectPublicKeyInfo) from its Mail Settings.
//! - Amazon SNS: base64 RSA PKCS#1 v1.5 signature of the string to sign, SHA1 (SignatureVersion 1)
//!   or SHA256 (2), with the public key of the certificate at `SigningCertURL` (PEM).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm, SubjectPublicKeyInfoDer, alg_id};
use sha2::Sha256;

pub fn mailgun(signing_key: &str, timestamp: &str, token: &str, signature_hex: &str) -> bool {
    let Some(signature) = from_hex(signature_hex) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

pub fn mandrill(webhook_key: &str, signed_data: &str, signature_b64: &str) -> bool {
    let Ok(signature) = STANDARD.decode(signature_b64.trim()) else { return false };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, webhook_key.as_bytes());
    ring::hmac::verify(&key, signed_data.as_bytes(), &signature).is_ok()
}

pub fn sendgrid(verification_key_b64: &str, timestamp: &str, body: &[u8], signature_b64: &str) -> bool {
    let (Ok(key), Ok(signature)) = (STANDARD.decode(verification_key_b64.trim()), STANDARD.decode(signature_b64.trim())) else { return false };
    let spki = SubjectPublicKeyInfoDer::from(key.as_slice());
    let Ok(entity) = webpki::RawPublicKeyEntity::try_from(&spki) else { return false };
    let signed = [timestamp.as_bytes(), body].concat();
    entity.verify_signature(webpki::ring::ECDSA_P256_SHA256, &signed, &signature).is_ok()
}

/// Whether `key_b64` is a key `sendgrid` can verify with: base64 DER of a P-256 public key.
pub fn is_sendgrid_key(key_b64: &str) -> bool {
    let Ok(key) = STANDARD.decode(key_b64.trim()) else { return false };
    webpki::RawPublicKeyEntity::try_from(&SubjectPublicKeyInfoDer::from(key.as_slice())).is_ok() && key.len() == P256_SPKI_LEN
}

/// A P-256 SubjectPublicKeyInfo: its algorithm identifiers and the 65-byte uncompressed point.
const P256_SPKI_LEN: usize = 91;

/// SNS's signature versions: 1 signs with SHA1, 2 with SHA256.
pub fn sns(certificate_pem: &[u8], signature_version: &str, string_to_sign: &str, signature_b64: &str) -> bool {
    let algorithm: &dyn SignatureVerificationAlgorithm = match signature_version {
        "1" => &RSA_PKCS1_SHA1,
        "2" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return false,
    };
    let (Ok(der), Ok(signature)) = (CertificateDer::from_pem_slice(certificate_pem), STANDARD.decode(signature_b64.trim())) else { return false };
    let Ok(certificate) = webpki::EndEntityCert::try_from(&der) else { return false };
    certificate.verify_signature(algorithm, string_to_sign.as_bytes(), &signature).is_ok()
}

/// RSA PKCS#1 v1.5 with SHA1, which webpki leaves out (no certificate should use it) but SNS's
/// SignatureVersion 1 still signs messages with.
#[derive(Debug)]
struct RsaPkcs1Sha1;

static RSA_PKCS1_SHA1: RsaPkcs1Sha1 = RsaPkcs1Sha1;

/// sha1WithRSAEncryption (1.2.840.113549.1.1.5) with NULL parameters, DER without the outer SEQUENCE.
const RSA_PKCS1_SHA1_ALG_ID: AlgorithmIdentifier =
    AlgorithmIdentifier::from_slice(&[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00]);

impl SignatureVerificationAlgorithm for RsaPkcs1Sha1 {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        RSA_PKCS1_SHA1_ALG_ID
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SendGrid's own test vector (sendgrid-nodejs, `@sendgrid/eventwebhook`'s tests).
    const SENDGRID_KEY: &str =
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const SENDGRID_SIGNATURE: &str = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";

    #[test]
    fn sendgrid_signatures_verify_with_its_own_test_vector() {
        let payload = br#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
        assert!(sendgrid(SENDGRID_KEY, "1588788367", payload, SENDGRID_SIGNATURE));
        assert!(!sendgrid(SENDGRID_KEY, "1588788368", payload, SENDGRID_SIGNATURE), "another timestamp");
        assert!(!sendgrid(SENDGRID_KEY, "1588788367", b"{}", SENDGRID_SIGNATURE), "another body");
        assert!(!sendgrid("bm90IGEga2V5", "1588788367", payload, SENDGRID_SIGNATURE));
        assert!(is_sendgrid_key(SENDGRID_KEY) && !is_sendgrid_key("bm90IGEga2V5") && !is_sendgrid_key("not base64!"));
    }

    #[test]
    fn hmac_schemes_check_the_key_and_the_data() {
        // Mailgun's documented example: key "key-…" is not published, so sign with one here.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"signing-key").unwrap();
        mac.update(b"1529006854a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(mailgun("signing-key", "1529006854", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0", &hex));
        assert!(!mailgun("other-key", "1529006854", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0", &hex));
        assert!(!mailgun("signing-key", "1529006854", "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0", "zz"));
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"webhook-key");
        let signature = STANDARD.encode(ring::hmac::sign(&key, b"https://x.example/hookmandrill_events[]").as_ref());
        assert!(mandrill("webhook-key", "https://x.example/hookmandrill_events[]", &signature));
        assert!(!mandrill("webhook-key", "https://x.example/hook/mandrill_events[]", &signature));
    }
}
