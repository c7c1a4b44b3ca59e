//! Integrations (seeds 000/001): Custom API, HubSpot and Salesforce settings and their rules.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fanout::WorkspaceScope;
use super::fields::is_source_field;
use super::ids::{AccountId, TargetId};
use super::mapping::MappingRow;
use super::ownership::Ordering;
use super::receiver_auth::StoredReceiverAuth;
use super::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntegrationKind {
    CustomApi,
    Hubspot,
    Salesforce,
}

impl IntegrationKind {
    pub const ALL: [Self; 3] = [Self::CustomApi, Self::Hubspot, Self::Salesforce];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CustomApi => "custom_api",
            Self::Hubspot => "hubspot",
            Self::Salesforce => "salesforce",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The tile title in the "Select Webhook Integration" modal.
    pub fn title(self) -> &'static str {
        match self {
            Self::CustomApi => "Custom API",
            Self::Hubspot => "HubSpot",
            Self::Salesforce => "Salesforce",
        }
    }

    pub fn default_name(self) -> &'static str {
        match self {
            Self::CustomApi => "Custom API Integration",
            Self::Hubspot => "HubSpot Integration",
            Self::Salesforce => "Salesforce Integration",
        }
    }

    pub fn category(self) -> &'static str {
        match self {
            Self::CustomApi => "Custom/Developer",
            Self::Hubspot | Self::Salesforce => "CRM & Marketing",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::CustomApi => "For any REST API endpoint you control",
            Self::Hubspot => "For CRM & Marketing automation via HubSpot",
            Self::Salesforce => "For Salesforce CRM",
        }
    }

    /// What the write-only `secret` holds for this kind.
    pub fn secret_label(self) -> &'static str {
        match self {
            Self::CustomApi => "API key",
            Self::Hubspot => "private app access token",
            Self::Salesforce => "consumer secret",
        }
    }
}

pub const DEFAULT_EVENT: &str = "participant.completed";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CustomApiMethod {
    #[default]
    Post,
    Put,
    Patch,
}

impl CustomApiMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// Seed 001's "API Key Type".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// No authentication header is sent.
    #[default]
    None,
    /// `X-API-KEY: <key>`.
    ApiKey,
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// `Authorization: Basic base64(<username:password>)`.
    Basic,
    /// `<custom_header_name>: <key>`.
    CustomHeader,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomApiConfig {
    /// The receiver's HTTPS URL.
    pub endpoint: String,
    #[serde(default)]
    pub method: CustomApiMethod,
    #[serde(default)]
    pub auth_type: AuthType,
    /// Required when `auth_type` is `custom_header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_header_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HubspotConfig {}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SalesforceObject {
    Lead,
    #[default]
    Contact,
}

impl SalesforceObject {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "Lead",
            Self::Contact => "Contact",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// Your instance, e.g. `yourcompany.my.salesforce.com` (or a full `https://` URL).
    pub domain: String,
    /// The Connected App's consumer key (client id).
    pub consumer_key: String,
    #[serde(default)]
    pub object: SalesforceObject,
    /// API name of the External ID field used to match records, e.g. `Email_External_Id__c`.
    pub external_id_field: String,
    /// The source field whose value is the external ID, e.g. `email`.
    pub external_id_source: String,
}

impl SalesforceConfig {
    /// The instance's address (where the token endpoint is): `https://<domain>/`, or the URL given.
    pub fn login_url(&self) -> Result<url::Url, String> {
        let domain = self.domain.trim().trim_end_matches('/');
        let text = if domain.contains("://") { domain.to_owned() } else { format!("https://{domain}") };
        url::Url::parse(&text).map_err(|e| format!("'{domain}' is not a Salesforce domain: {e}"))
    }
}

/// Kind-specific settings (never secrets: those travel in the write-only `secret`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntegrationConfig {
    CustomApi(CustomApiConfig),
    Hubspot(HubspotConfig),
    Salesforce(SalesforceConfig),
}

impl IntegrationConfig {
    pub fn kind(&self) -> IntegrationKind {
        match self {
            Self::CustomApi(_) => IntegrationKind::CustomApi,
            Self::Hubspot(_) => IntegrationKind::Hubspot,
            Self::Salesforce(_) => IntegrationKind::Salesforce,
        }
    }

    /// Reads the settings of `kind` from JSON; unknown or missing fields are errors.
    pub fn from_json(kind: IntegrationKind, value: serde_json::Value) -> Result<Self, String> {
        let describe = |e: serde_json::Error| format!("config for {}: {e}", kind.as_str());
        Ok(match kind {
            IntegrationKind::CustomApi => Self::CustomApi(serde_json::from_value(value).map_err(describe)?),
            IntegrationKind::Hubspot => Self::Hubspot(serde_json::from_value(value).map_err(describe)?),
            IntegrationKind::Salesforce => Self::Salesforce(serde_json::from_value(value).map_err(describe)?),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::CustomApi(c) => serde_json::to_value(c),
            Self::Hubspot(c) => serde_json::to_value(c),
            Self::Salesforce(c) => serde_json::to_value(c),
        }
        .expect("settings serialize")
    }
}

/// A refused save: which field, and what to do.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    SecretRequired(String),
    #[error("{0}")]
    MissingRequiredMapping(String),
}

/// Checks the settings, the secret (`has_secret`: given now or already stored) and the mapping
/// together, as seed 001's rules tie them (Salesforce needs Last Name mapped).
pub fn validate(config: &IntegrationConfig, has_secret: bool, secret: Option<&str>, mapping: &[MappingRow]) -> Result<(), ConfigError> {
    let invalid = |m: String| Err(ConfigError::Invalid(m));
    if let Some(secret) = secret {
        check_secret("secret", secret).map_err(ConfigError::Invalid)?;
    }
    match config {
        IntegrationConfig::CustomApi(c) => {
            if c.auth_type == AuthType::CustomHeader {
                match c.custom_header_name.as_deref().map(str::trim) {
                    None | Some("") => return invalid("custom_header_name is required when auth_type is custom_header".into()),
                    Some(name) if !is_header_name(name) => return invalid(format!("'{name}' is not a valid HTTP header name")),
                    Some(name) if is_reserved_header(name) => {
                        return invalid(format!("custom_header_name '{name}' is a header Switchyard sets itself; choose another name"));
                    }
                    Some(_) => {}
                }
            }
            if c.auth_type != AuthType::None && !has_secret {
                return Err(ConfigError::SecretRequired("secret (the API key) is required for this auth_type".into()));
            }
            if let (AuthType::Basic, Some(secret)) = (c.auth_type, secret)
                && !secret.contains(':')
            {
                return invalid("for basic auth the secret is 'username:password'".into());
            }
        }
        IntegrationConfig::Hubspot(_) => {
            if !has_secret {
                return Err(ConfigError::SecretRequired("secret (the HubSpot private app access token) is required".into()));
            }
        }
        IntegrationConfig::Salesforce(c) => {
            for (name, value) in [("domain", &c.domain), ("consumer_key", &c.consumer_key), ("external_id_field", &c.external_id_field)] {
                if value.trim().is_empty() {
                    return invalid(format!("{name} is required"));
                }
            }
            if !c.external_id_field.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                return invalid(format!("'{}' is not a Salesforce field API name", c.external_id_field));
            }
            if !is_source_field(&c.external_id_source) {
                return Err(ConfigError::MissingRequiredMapping(format!(
                    "external_id_source '{}' is not a source field: choose the field whose value matches records (usually email)",
                    c.external_id_source
                )));
            }
            if !has_secret {
                return Err(ConfigError::SecretRequired("secret (the consumer secret) is required".into()));
            }
            if !mapping.iter().any(|row| row.source_field == "lastName") {
                return Err(ConfigError::MissingRequiredMapping(format!(
                    "add a mapping row for Last Name (lastName → LastName): Salesforce requires it to create a {}",
                    c.object.as_str()
                )));
            }
        }
    }
    Ok(())
}

pub const MAX_SECRET_LEN: usize = 4096;

/// A credential (an integration's secret, a mailer's credentials and SMTP login) travels in an
/// HTTP header, a form or an SMTP command: bounded, and without control characters (a line break
/// would end the header or command it is put in). `field` names it in the message.
pub fn check_secret(field: &str, secret: &str) -> Result<(), String> {
    if secret.chars().count() > MAX_SECRET_LEN {
        return Err(format!("{field} is longer than {MAX_SECRET_LEN} characters"));
    }
    if secret.contains(char::is_control) {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

/// Headers that frame or sign the request: a credential sent under one of these names would
/// corrupt the request or forge its signature.
pub fn is_reserved_header(name: &str) -> bool {
    const RESERVED: [&str; 13] = [
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-switchyard-test",
    ];
    let name = name.to_ascii_lowercase();
    RESERVED.contains(&name.as_str()) || name.starts_with("proxy-")
}

/// RFC 7230 token characters.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The authentication header a Custom API request carries.
pub fn auth_header(config: &CustomApiConfig, secret: &str) -> Option<(String, String)> {
    match config.auth_type {
        AuthType::None => None,
        AuthType::ApiKey => Some(("X-API-KEY".into(), secret.into())),
        AuthType::Bearer => Some(("Authorization".into(), format!("Bearer {secret}"))),
        AuthType::Basic => Some(("Authorization".into(), format!("Basic {}", STANDARD.encode(secret)))),
        AuthType::CustomHeader => Some((config.custom_header_name.clone().unwrap_or_default().trim().to_owned(), secret.into())),
    }
}

/// Secrets shorter than this show nothing of themselves in their hint.
pub const MIN_HINTED_SECRET_LEN: usize = 16;

/// The hint answers show for a stored secret (integrations' `secret_hint`, mailers'
/// `credential_hints`): its first characters, at most an eighth of it and never more than four,
/// so a long secret can be recognised and no secret can be guessed from its hint; nothing of a
/// secret under `MIN_HINTED_SECRET_LEN` characters.
pub fn secret_hint(secret: &str) -> String {
    let length = secret.chars().count();
    let shown = if length < MIN_HINTED_SECRET_LEN { 0 } else { (length / 8).min(4) };
    format!("{}…", secret.chars().take(shown).collect::<String>())
}

/// A Custom API, HubSpot or Salesforce integration. `secret` is sealed by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: TargetId,
    pub account_id: AccountId,
    pub name: String,
    pub config: IntegrationConfig,
    pub mapping: Vec<MappingRow>,
    pub events: Vec<String>,
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub secret: Option<Vec<u8>>,
    pub secret_hint: Option<String>,
    pub signing_secret_prefix: Option<String>,
    /// Custom API only.
    pub receiver_auth: Option<StoredReceiverAuth>,
    /// Custom API only: attempts' requests carry their span's `traceparent` (when tracing is on).
    pub propagate_trace: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_domains_become_login_urls() {
        let login = |domain: &str| {
            SalesforceConfig {
                domain: domain.into(),
                consumer_key: String::new(),
                object: SalesforceObject::default(),
                external_id_field: String::new(),
                external_id_source: String::new(),
            }
            .login_url()
        };
        assert_eq!(login("acme.my.salesforce.com").unwrap().as_str(), "https://acme.my.salesforce.com/");
        assert_eq!(login("http://127.0.0.1:9000/").unwrap().as_str(), "http://127.0.0.1:9000/");
        assert!(login("not a domain").is_err());
    }
    use crate::domain::mapping::IfMissing;

    fn custom(auth_type: AuthType, header: Option<&str>) -> IntegrationConfig {
        IntegrationConfig::CustomApi(CustomApiConfig {
            endpoint: "https://api.example.com/webhook".into(),
            method: CustomApiMethod::Post,
            auth_type,
            custom_header_name: header.map(Into::into),
        })
    }

    fn salesforce(source: &str) -> IntegrationConfig {
        IntegrationConfig::Salesforce(SalesforceConfig {
            domain: "acme.my.salesforce.com".into(),
            consumer_key: "3MVG9".into(),
            object: SalesforceObject::Lead,
            external_id_field: "Email_External_Id__c".into(),
            external_id_source: source.into(),
        })
    }

    fn row(out: &str, src: &str) -> MappingRow {
        MappingRow { webhook_field: out.into(), source_field: src.into(), if_missing: IfMissing::Omit }
    }

    #[test]
    fn custom_api_rules() {
        assert!(validate(&custom(AuthType::None, None), false, None, &[]).is_ok());
        assert!(matches!(validate(&custom(AuthType::Bearer, None), false, None, &[]), Err(ConfigError::SecretRequired(_))));
        assert!(validate(&custom(AuthType::CustomHeader, None), true, Some("k"), &[]).unwrap_err().to_string().contains("custom_header_name"));
        assert!(validate(&custom(AuthType::CustomHeader, Some("X Bad")), true, Some("k"), &[]).is_err());
        assert!(validate(&custom(AuthType::CustomHeader, Some("X-Custom-Auth")), true, Some("k"), &[]).is_ok());
        assert!(validate(&custom(AuthType::Basic, None), true, Some("no-colon"), &[]).is_err());
        assert!(validate(&custom(AuthType::Basic, None), true, None, &[]).is_ok(), "a stored secret was checked when saved");
        for reserved in ["Content-Length", "host", "Transfer-Encoding", "webhook-signature", "Proxy-Authorization"] {
            assert!(validate(&custom(AuthType::CustomHeader, Some(reserved)), true, Some("k"), &[]).is_err(), "{reserved}");
        }
        assert!(validate(&custom(AuthType::Bearer, None), true, Some("k\r\nX-Injected: 1"), &[]).unwrap_err().to_string().contains("control"));
        assert!(validate(&custom(AuthType::Bearer, None), true, Some(&"k".repeat(MAX_SECRET_LEN + 1)), &[]).is_err());
    }

    #[test]
    fn salesforce_needs_last_name_and_an_external_id_source() {
        let mapping = [row("LastName", "lastName"), row("Email", "email")];
        assert!(validate(&salesforce("email"), true, None, &mapping).is_ok());
        let err = validate(&salesforce("email"), true, None, &mapping[1..]).unwrap_err();
        assert!(matches!(err, ConfigError::MissingRequiredMapping(_)));
        assert!(err.to_string().contains("Last Name") && err.to_string().contains("Lead"));
        assert!(matches!(validate(&salesforce(""), true, None, &mapping), Err(ConfigError::MissingRequiredMapping(_))));
        assert!(matches!(validate(&salesforce("email"), false, None, &mapping), Err(ConfigError::SecretRequired(_))));
    }

    #[test]
    fn auth_headers_for_each_mode() {
        let cfg = |t, h: Option<&str>| match custom(t, h) {
            IntegrationConfig::CustomApi(c) => c,
            _ => unreachable!(),
        };
        assert_eq!(auth_header(&cfg(AuthType::None, None), "k"), None);
        assert_eq!(auth_header(&cfg(AuthType::ApiKey, None), "k"), Some(("X-API-KEY".into(), "k".into())));
        assert_eq!(auth_header(&cfg(AuthType::Bearer, None), "k"), Some(("Authorization".into(), "Bearer k".into())));
        assert_eq!(auth_header(&cfg(AuthType::Basic, None), "user:pass"), Some(("Authorization".into(), "Basic dXNlcjpwYXNz".into())));
        assert_eq!(auth_header(&cfg(AuthType::CustomHeader, Some("X-Custom-Auth")), "k"), Some(("X-Custom-Auth".into(), "k".into())));
    }

    #[test]
    fn config_json_round_trips_and_refuses_strangers() {
        let json = serde_json::json!({"endpoint": "https://x.example/", "method": "PATCH", "auth_type": "api_key"});
        let config = IntegrationConfig::from_json(IntegrationKind::CustomApi, json).unwrap();
        assert_eq!(IntegrationConfig::from_json(IntegrationKind::CustomApi, config.to_json()).unwrap(), config);
        assert!(IntegrationConfig::from_json(IntegrationKind::Hubspot, serde_json::json!({"token": "x"})).is_err());
        assert!(IntegrationConfig::from_json(IntegrationKind::CustomApi, serde_json::json!({"endpoint": "x", "method": "GET"})).is_err());
        assert_eq!(IntegrationKind::parse("salesforce"), Some(IntegrationKind::Salesforce));
    }

    #[test]
    fn hints_reveal_nothing_of_short_secrets_and_little_of_long_ones() {
        for short in ["", "sk", "s3cr3t-key", "pat-na1-abcdef", "fifteen-chars!!"] {
            assert_eq!(secret_hint(short), "…", "{short}");
        }
        assert_eq!(secret_hint("sixteen-chars!!!"), "si…");
        assert_eq!(secret_hint("pat-na1-0123456789abcdef"), "pat…");
        assert_eq!(secret_hint("SG.abcdefghijklmnopqrstuvwxyz0123456789"), "SG.a…");
        for length in 0..200 {
            let secret: String = "é".repeat(length);
            let shown = secret_hint(&secret).chars().count() - 1;
            assert!(shown <= 4 && shown * 8 <= length, "{length}: {shown}");
        }
    }
}
