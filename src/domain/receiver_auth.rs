//! Receiver authentication (issue 18): how a webhook endpoint, a Custom API integration or a query
//! destination proves itself to its receiver. Any of: static headers (a value marked `sensitive`
//! is a secret), OAuth 2.0 client credentials, a client certificate (mutual TLS), and a CA of its
//! own to trust the receiver's certificate with. The settings (`ReceiverAuth`) are stored and
//! answered in the clear; the secrets (`AuthSecrets`: sensitive header values, the client secret,
//! the private key) travel apart, sealed at rest, and are never answered.

use std::collections::BTreeMap;

use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::integration::{check_secret, is_header_name, is_reserved_header, secret_hint};
use super::time::Millis;

pub const MAX_HEADERS: usize = 20;
/// Bound of a PEM field (a certificate chain, a key, a CA bundle).
pub const MAX_PEM_LEN: usize = 64 * 1024;
/// A token is renewed this long before its stated expiry (at most half its lifetime), so a
/// request on its way near the end never carries an expired one.
pub const TOKEN_EXPIRY_MARGIN_MS: Millis = 30_000;

/// Receiver authentication as sent: secrets in the clear, each of them optional on update
/// (omitted: the stored one is kept).
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiverAuthInput {
    /// Headers sent with every request.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub headers: Vec<HeaderInput>,
    /// OAuth 2.0 client credentials: each request carries `Authorization: Bearer <token>`.
    pub oauth2: Option<OAuth2Input>,
    /// Mutual TLS: the certificate this target presents.
    pub client_certificate: Option<ClientCertificateInput>,
    /// PEM: CA certificates trusted for this receiver only (besides the public ones), e.g. for
    /// a receiver with a certificate of a private CA.
    pub ca_certificate_pem: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderInput {
    pub name: String,
    /// Required, except for a sensitive header stored under this name (omit it to keep that).
    pub value: Option<String>,
    /// A secret: stored encrypted, never answered (`value_hint` instead), masked in the
    /// delivery log and the audit trail.
    #[serde(default)]
    pub sensitive: bool,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Input {
    /// Where tokens are asked for (`grant_type=client_credentials`, form-encoded).
    pub token_url: String,
    pub client_id: String,
    /// Write-only. On update: omit to keep the stored one (unless `token_url` changes).
    pub client_secret: Option<String>,
    /// Sent as `scope` when given.
    pub scope: Option<String>,
    /// Sent as `audience` when given.
    pub audience: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCertificateInput {
    /// PEM: the client certificate, then any intermediates.
    pub certificate_pem: String,
    /// Write-only PEM of its unencrypted private key (PKCS#8, PKCS#1 or SEC1). On update: omit to
    /// keep the stored one.
    pub private_key_pem: Option<String>,
}

/// Receiver authentication as stored and answered: no secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiverAuth {
    pub headers: Vec<StaticHeader>,
    pub oauth2: Option<OAuth2Settings>,
    /// The private key is stored encrypted and never answered.
    pub client_certificate: Option<ClientCertificate>,
    pub ca_certificate_pem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StaticHeader {
    pub name: String,
    /// The value of a header that is not sensitive; null for a sensitive one.
    pub value: Option<String>,
    pub sensitive: bool,
    /// A sensitive value's first characters (nothing of a short one).
    pub value_hint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OAuth2Settings {
    pub token_url: String,
    pub client_id: String,
    pub scope: Option<String>,
    pub audience: Option<String>,
    /// The stored client secret's first characters (nothing of a short one).
    pub client_secret_hint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientCertificate {
    pub certificate_pem: String,
}

/// The secrets of a target's receiver authentication, sealed together (as JSON) with its row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSecrets {
    /// Sensitive header values, by lowercase name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub client_secret: Option<String>,
    pub private_key_pem: Option<String>,
}

/// Receiver authentication as stored with its target: the settings, and the secrets sealed
/// (`crypto::secret_box::receiver_auth_binding`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReceiverAuth {
    pub settings: ReceiverAuth,
    pub sealed_secrets: Vec<u8>,
}

/// A refused receiver authentication; `reason` is the second half of the error code.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("receiver_auth: {0}")]
    Invalid(String),
    #[error("receiver_auth: {0}")]
    SecretRequired(String),
    #[error("receiver_auth: {0}")]
    InvalidCertificate(String),
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_auth",
            Self::SecretRequired(_) => "secret_required",
            Self::InvalidCertificate(_) => "invalid_certificate",
        }
    }
}

impl ReceiverAuth {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.oauth2.is_none() && self.client_certificate.is_none() && self.ca_certificate_pem.is_none()
    }

    /// Whether requests need a client of their own (a client certificate, or a CA of its own).
    pub fn needs_own_tls(&self) -> bool {
        self.client_certificate.is_some() || self.ca_certificate_pem.is_some()
    }

    /// Refuses headers the target sets itself (`own`: e.g. a Custom API's API-key header), and
    /// OAuth 2.0 where the target already sends an `Authorization` header.
    pub fn check_against(&self, own: Option<&str>) -> Result<(), AuthError> {
        let Some(own) = own else { return Ok(()) };
        if let Some(h) = self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(own)) {
            return Err(AuthError::Invalid(format!("the header {} is already set by the integration's auth_type", h.name)));
        }
        if self.oauth2.is_some() && own.eq_ignore_ascii_case("authorization") {
            return Err(AuthError::Invalid("oauth2 sends an Authorization header: set auth_type to none or api_key to use it".into()));
        }
        Ok(())
    }
}

/// Checks `input` and makes it the settings and secrets to store. A secret it omits is kept
/// from `stored` (the target's current settings and secrets), where there is one to keep.
pub fn resolve(input: ReceiverAuthInput, stored: Option<(&ReceiverAuth, &AuthSecrets)>) -> Result<(ReceiverAuth, AuthSecrets), AuthError> {
    let kept = stored.map(|(_, secrets)| secrets.clone()).unwrap_or_default();
    let mut secrets = AuthSecrets::default();
    let headers = resolve_headers(input.headers, &kept, &mut secrets)?;
    let stored_oauth = stored.and_then(|(settings, _)| settings.oauth2.as_ref());
    let oauth2 = input.oauth2.map(|o| resolve_oauth2(o, stored_oauth, kept.client_secret.as_deref(), &mut secrets)).transpose()?;
    if oauth2.is_some() && headers.iter().any(|h| h.name.eq_ignore_ascii_case("authorization")) {
        return Err(AuthError::Invalid("oauth2 sends the Authorization header: remove the static one".into()));
    }
    let client_certificate = input.client_certificate.map(|c| resolve_certificate(c, kept.private_key_pem.as_deref(), &mut secrets)).transpose()?;
    let ca_certificate_pem = input.ca_certificate_pem.map(|pem| check_ca(&pem).map(|_| pem)).transpose()?;
    Ok((ReceiverAuth { headers, oauth2, client_certificate, ca_certificate_pem }, secrets))
}

fn resolve_headers(input: Vec<HeaderInput>, kept: &AuthSecrets, secrets: &mut AuthSecrets) -> Result<Vec<StaticHeader>, AuthError> {
    if input.len() > MAX_HEADERS {
        return Err(AuthError::Invalid(format!("at most {MAX_HEADERS} headers")));
    }
    let mut headers: Vec<StaticHeader> = Vec::with_capacity(input.len());
    for (i, header) in input.into_iter().enumerate() {
        let name = header.name.trim().to_owned();
        let key = name.to_ascii_lowercase();
        if !is_header_name(&name) {
            return Err(AuthError::Invalid(format!("headers[{i}]: '{name}' is not a valid HTTP header name")));
        }
        if is_reserved_header(&name) {
            return Err(AuthError::Invalid(format!("headers[{i}]: {name} is a header Switchyard sets itself; choose another name")));
        }
        if headers.iter().any(|h| h.name.eq_ignore_ascii_case(&name)) {
            return Err(AuthError::Invalid(format!("headers[{i}]: {name} is given twice")));
        }
        let value = match (header.value, header.sensitive) {
            (Some(value), _) => value,
            (None, true) => kept.headers.get(&key).cloned().ok_or_else(|| AuthError::SecretRequired(format!("headers[{i}].value is required")))?,
            (None, false) => return Err(AuthError::Invalid(format!("headers[{i}].value is required"))),
        };
        check_secret(&format!("headers[{i}].value"), &value).map_err(AuthError::Invalid)?;
        // What HTTP carries in a header value as text (RFC 9110 §5.5).
        if !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return Err(AuthError::Invalid(format!("headers[{i}].value may hold only printable ASCII characters")));
        }
        headers.push(if header.sensitive {
            let value_hint = Some(secret_hint(&value));
            secrets.headers.insert(key, value);
            StaticHeader { name, value: None, sensitive: true, value_hint }
        } else {
            StaticHeader { name, value: Some(value), sensitive: false, value_hint: None }
        });
    }
    Ok(headers)
}

fn resolve_oauth2(
    input: OAuth2Input,
    stored: Option<&OAuth2Settings>,
    kept_secret: Option<&str>,
    secrets: &mut AuthSecrets,
) -> Result<OAuth2Settings, AuthError> {
    let token_url = input.token_url.trim().to_owned();
    let client_id = input.client_id.trim().to_owned();
    if token_url.is_empty() || client_id.is_empty() {
        return Err(AuthError::Invalid("oauth2.token_url and oauth2.client_id are required".into()));
    }
    // A stored secret goes only where it went before: a new token URL needs it given again.
    let keepable = kept_secret.filter(|_| stored.is_some_and(|s| s.token_url == token_url));
    let client_secret = match input.client_secret.as_deref().or(keepable) {
        Some(secret) if !secret.is_empty() => secret.to_owned(),
        _ => return Err(AuthError::SecretRequired("oauth2.client_secret is required (again when token_url changes)".into())),
    };
    for (field, value) in [("oauth2.client_id", Some(&client_id)), ("oauth2.client_secret", Some(&client_secret))]
        .into_iter()
        .chain([("oauth2.scope", input.scope.as_ref()), ("oauth2.audience", input.audience.as_ref())])
    {
        if let Some(value) = value {
            check_secret(field, value).map_err(AuthError::Invalid)?;
        }
    }
    let client_secret_hint = secret_hint(&client_secret);
    secrets.client_secret = Some(client_secret);
    let given = |v: Option<String>| v.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(OAuth2Settings { token_url, client_id, scope: given(input.scope), audience: given(input.audience), client_secret_hint })
}

fn resolve_certificate(input: ClientCertificateInput, kept_key: Option<&str>, secrets: &mut AuthSecrets) -> Result<ClientCertificate, AuthError> {
    let key = input
        .private_key_pem
        .or_else(|| kept_key.map(str::to_owned))
        .ok_or_else(|| AuthError::SecretRequired("client_certificate.private_key_pem is required".into()))?;
    check_client_certificate(&input.certificate_pem, &key)?;
    secrets.private_key_pem = Some(key);
    Ok(ClientCertificate { certificate_pem: input.certificate_pem })
}

fn bounded_pem<'a>(field: &str, pem: &'a str) -> Result<&'a [u8], AuthError> {
    if pem.len() > MAX_PEM_LEN {
        return Err(AuthError::InvalidCertificate(format!("{field} is longer than {MAX_PEM_LEN} bytes")));
    }
    Ok(pem.as_bytes())
}

/// The sections of a PEM text (kinds rustls knows; others are skipped, as the client skips them).
fn sections(field: &str, pem: &str) -> Result<Vec<(SectionKind, Vec<u8>)>, AuthError> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(bounded_pem(field, pem)?)
        .collect::<Result<_, _>>()
        .map_err(|e| AuthError::InvalidCertificate(format!("{field} is not valid PEM: {e}")))
}

/// The certificates of a PEM text: at least one, and nothing else (a private key there would be
/// stored and answered in the clear).
fn certificates(field: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let mut certs = Vec::new();
    for (kind, der) in sections(field, pem)? {
        match kind {
            SectionKind::Certificate => certs.push(CertificateDer::from(der)),
            SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey => {
                return Err(AuthError::InvalidCertificate(format!(
                    "{field} holds a private key: give only certificates there (a client key goes in client_certificate.private_key_pem, stored encrypted)"
                )));
            }
            other => return Err(AuthError::InvalidCertificate(format!("{field} holds a {other:?} section; give only certificates"))),
        }
    }
    if certs.is_empty() {
        return Err(AuthError::InvalidCertificate(format!("{field} holds no certificate (-----BEGIN CERTIFICATE-----)")));
    }
    Ok(certs)
}

/// The one unencrypted private key of a PEM text.
fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>, AuthError> {
    const FIELD: &str = "client_certificate.private_key_pem";
    let keys: Vec<PrivateKeyDer<'static>> = sections(FIELD, pem)?
        .into_iter()
        .map(|(kind, der)| match kind {
            SectionKind::PrivateKey => Ok(PrivateKeyDer::Pkcs8(der.into())),
            SectionKind::RsaPrivateKey => Ok(PrivateKeyDer::Pkcs1(der.into())),
            SectionKind::EcPrivateKey => Ok(PrivateKeyDer::Sec1(der.into())),
            other => Err(AuthError::InvalidCertificate(format!("{FIELD} holds a {other:?} section; give only the key"))),
        })
        .collect::<Result<_, _>>()?;
    match <[_; 1]>::try_from(keys) {
        Ok([key]) => Ok(key),
        Err(_) => Err(AuthError::InvalidCertificate(format!("{FIELD} must hold one unencrypted private key (PKCS#8, PKCS#1 or SEC1 PEM)"))),
    }
}

/// A client certificate and its key: both readable, the key of a supported type and the one the
/// certificate is for.
pub fn check_client_certificate(certificate_pem: &str, private_key_pem: &str) -> Result<(), AuthError> {
    let certs = certificates("client_certificate.certificate_pem", certificate_pem)?;
    let key = private_key(private_key_pem)?;
    let key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| AuthError::InvalidCertificate(format!("client_certificate.private_key_pem is not a usable key: {e}")))?;
    match rustls::sign::CertifiedKey::new(certs, key).keys_match() {
        // Key types whose public half rustls cannot derive are taken on trust, as rustls does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(e) => Err(AuthError::InvalidCertificate(format!("client_certificate: the key does not fit the certificate: {e}"))),
    }
}

/// A CA bundle: every certificate in it usable as a trust anchor.
pub fn check_ca(pem: &str) -> Result<(), AuthError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates("ca_certificate_pem", pem)? {
        roots.add(cert).map_err(|e| AuthError::InvalidCertificate(format!("ca_certificate_pem: {e}")))?;
    }
    Ok(())
}

/// The form of a client-credentials token request (client authentication in the body, as
/// RFC 6749 §2.3.1 allows and Salesforce requires).
pub fn token_form(client_id: &str, client_secret: &str, scope: Option<&str>, audience: Option<&str>) -> Vec<(&'static str, String)> {
    let mut form =
        vec![("grant_type", "client_credentials".to_owned()), ("client_id", client_id.to_owned()), ("client_secret", client_secret.to_owned())];
    form.extend(scope.map(|s| ("scope", s.to_owned())));
    form.extend(audience.map(|a| ("audience", a.to_owned())));
    form
}

/// Until when a token issued at `now` is used: its `expires_in` (seconds, a number or a numeric
/// string) less the margin; `None` (until a 401 says otherwise) when it states no lifetime.
pub fn token_expires_at(now: Millis, expires_in: Option<&serde_json::Value>) -> Option<Millis> {
    let seconds = expires_in.and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))?;
    let lifetime = Millis::try_from(seconds).unwrap_or(Millis::MAX / 2_000).saturating_mul(1000);
    Some(now.saturating_add(lifetime - TOKEN_EXPIRY_MARGIN_MS.min(lifetime / 2)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(value: serde_json::Value) -> ReceiverAuthInput {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn sensitive_header_values_go_to_the_secrets_and_are_kept_when_omitted() {
        let (auth, secrets) = resolve(
            input(
                json!({"headers": [{"name": "X-Tenant", "value": "acme"}, {"name": "X-Api-Key", "value": "k-0123456789abcdef", "sensitive": true}]}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(auth.headers[0], StaticHeader { name: "X-Tenant".into(), value: Some("acme".into()), sensitive: false, value_hint: None });
        assert_eq!((auth.headers[1].value.as_deref(), auth.headers[1].value_hint.as_deref()), (None, Some("k-…")));
        assert_eq!(secrets.headers.get("x-api-key").map(String::as_str), Some("k-0123456789abcdef"));
        let again = input(json!({"headers": [{"name": "x-api-key", "sensitive": true}]}));
        let (_, kept) = resolve(again.clone(), Some((&auth, &secrets))).unwrap();
        assert_eq!(kept.headers, secrets.headers);
        assert!(matches!(resolve(again, None), Err(AuthError::SecretRequired(_))));
    }

    #[test]
    fn bad_headers_are_refused() {
        for headers in [
            json!([{"name": "X Bad", "value": "v"}]),
            json!([{"name": "Content-Type", "value": "v"}]),
            json!([{"name": "webhook-signature", "value": "v"}]),
            json!([{"name": "X-A", "value": "v"}, {"name": "x-a", "value": "w"}]),
            json!([{"name": "X-A", "value": "v\r\nX-Injected: 1"}]),
            json!([{"name": "X-A", "value": "café"}]),
            json!([{"name": "X-A"}]),
        ] {
            assert!(matches!(resolve(input(json!({"headers": headers})), None), Err(AuthError::Invalid(_))), "{headers}");
        }
    }

    #[test]
    fn oauth2_needs_its_secret_again_for_a_new_token_url() {
        let first =
            json!({"oauth2": {"token_url": "https://id.example/token", "client_id": "c", "client_secret": "s", "scope": "a b", "audience": " "}});
        let (auth, secrets) = resolve(input(first), None).unwrap();
        let oauth = auth.oauth2.clone().unwrap();
        assert_eq!((oauth.scope.as_deref(), oauth.audience.as_deref(), secrets.client_secret.as_deref()), (Some("a b"), None, Some("s")));
        let same = json!({"oauth2": {"token_url": "https://id.example/token", "client_id": "c2"}});
        assert_eq!(resolve(input(same), Some((&auth, &secrets))).unwrap().1.client_secret.as_deref(), Some("s"));
        let moved = json!({"oauth2": {"token_url": "https://evil.example/token", "client_id": "c"}});
        assert!(matches!(resolve(input(moved), Some((&auth, &secrets))), Err(AuthError::SecretRequired(_))));
        let clash = json!({"headers": [{"name": "Authorization", "value": "x"}], "oauth2": {"token_url": "https://id.example/t", "client_id": "c", "client_secret": "s"}});
        assert!(matches!(resolve(input(clash), None), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn certificates_that_cannot_be_read_are_refused() {
        let not_pem = json!({"ca_certificate_pem": "hello"});
        assert!(matches!(resolve(input(not_pem), None), Err(AuthError::InvalidCertificate(m)) if m.contains("no certificate")));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(resolve(input(json!({"ca_certificate_pem": garbage})), None), Err(AuthError::InvalidCertificate(_))));
        let keyless = json!({"client_certificate": {"certificate_pem": garbage}});
        assert!(matches!(resolve(input(keyless), None), Err(AuthError::SecretRequired(_))));
        let bad_key = json!({"client_certificate": {"certificate_pem": garbage, "private_key_pem": "nope"}});
        assert!(matches!(resolve(input(bad_key), None), Err(AuthError::InvalidCertificate(_))));
        let bundled = format!("{garbage}-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n");
        let in_the_clear = json!({"client_certificate": {"certificate_pem": bundled, "private_key_pem": "k"}});
        assert!(matches!(resolve(input(in_the_clear), None), Err(AuthError::InvalidCertificate(m)) if m.contains("holds a private key")));
    }

    #[test]
    fn targets_own_headers_are_not_repeated() {
        let (auth, _) = resolve(input(json!({"headers": [{"name": "X-API-KEY", "value": "k"}]})), None).unwrap();
        assert!(auth.check_against(Some("x-api-key")).is_err());
        assert!(auth.check_against(None).is_ok());
        let (oauth, _) =
            resolve(input(json!({"oauth2": {"token_url": "https://i.example/t", "client_id": "c", "client_secret": "s"}})), None).unwrap();
        assert!(oauth.check_against(Some("Authorization")).is_err());
        assert!(oauth.check_against(Some("X-API-KEY")).is_ok());
    }

    #[test]
    fn token_lifetimes_keep_a_margin() {
        assert_eq!(token_expires_at(1_000, Some(&json!(3600))), Some(1_000 + 3_600_000 - 30_000));
        assert_eq!(token_expires_at(1_000, Some(&json!("60"))), Some(1_000 + 60_000 - 30_000));
        assert_eq!(token_expires_at(1_000, Some(&json!(1))), Some(1_500), "a short lifetime keeps half of itself");
        assert_eq!(token_expires_at(1_000, Some(&json!(0))), Some(1_000));
        assert_eq!(token_expires_at(1_000, None), None);
        assert_eq!(token_expires_at(1_000, Some(&json!("soon"))), None);
        assert!(token_expires_at(0, Some(&json!(u64::MAX))).is_some());
    }

    #[test]
    fn token_forms_carry_scope_and_audience_when_given() {
        let form = token_form("c", "s", Some("read write"), None);
        assert_eq!(form.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["grant_type", "client_id", "client_secret", "scope"]);
        assert_eq!(token_form("c", "s", None, Some("https://api")).last(), Some(&("audience", "https://api".to_owned())));
    }
}
