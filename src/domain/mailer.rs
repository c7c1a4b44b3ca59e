//! Mailer integrations (seed 001, "Mailer Integrations"): providers, their settings and
//! credentials, template parameters, rules, and the e-mail a trigger produces.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::delivery::{AttemptOutcome, ErrorKind};
use super::fanout::WorkspaceScope;
use super::fields::is_source_field;
use super::ids::{AccountId, TargetId};
use super::integration::check_secret;
use super::mapping::{self, MappingRow};
use super::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MailerProvider {
    AmazonSes,
    Brevo,
    /// The built-in relay (seed 001's "Drimify" option): the server's own SMTP relay and address.
    Internal,
    Mailgun,
    Mailjet,
    Mandrill,
    Sendgrid,
    Smtp,
}

impl MailerProvider {
    pub const ALL: [Self; 8] =
        [Self::AmazonSes, Self::Brevo, Self::Internal, Self::Mailgun, Self::Mailjet, Self::Mandrill, Self::Sendgrid, Self::Smtp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmazonSes => "amazon_ses",
            Self::Brevo => "brevo",
            Self::Internal => "internal",
            Self::Mailgun => "mailgun",
            Self::Mailjet => "mailjet",
            Self::Mandrill => "mandrill",
            Self::Sendgrid => "sendgrid",
            Self::Smtp => "smtp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::AmazonSes => "Amazon SES",
            Self::Brevo => "Brevo",
            Self::Internal => "Built-in relay",
            Self::Mailgun => "Mailgun",
            Self::Mailjet => "Mailjet",
            Self::Mandrill => "Mandrill",
            Self::Sendgrid => "SendGrid",
            Self::Smtp => "Custom SMTP",
        }
    }

    /// Providers with dynamic templates take mapped template parameters.
    pub fn supports_template_params(self) -> bool {
        matches!(self, Self::Brevo | Self::Mailgun | Self::Mailjet | Self::Mandrill | Self::Sendgrid)
    }

    /// The built-in relay sends from the server's own address and takes a reply-to instead.
    pub fn has_sender_email(self) -> bool {
        self != Self::Internal
    }

    /// Settings that are not secret (returned by the API).
    pub fn config_fields(self) -> &'static [&'static str] {
        match self {
            Self::AmazonSes => &["region"],
            Self::Mailgun => &["domain", "region"],
            Self::Smtp => &["host", "port", "login", "security"],
            _ => &[],
        }
    }

    /// Credentials (write-only, encrypted). The last entry of SES is optional.
    pub fn credential_fields(self) -> &'static [&'static str] {
        match self {
            Self::AmazonSes => &["access_key_id", "secret_access_key", "session_token"],
            Self::Brevo | Self::Mandrill | Self::Sendgrid | Self::Mailgun => &["api_key"],
            Self::Mailjet => &["api_key", "secret_key"],
            Self::Smtp => &["password"],
            Self::Internal => &[],
        }
    }

    /// Whether the provider reports bounces and complaints to an event webhook (SES through SNS).
    pub fn has_event_webhook(self) -> bool {
        !matches!(self, Self::Smtp | Self::Internal)
    }

    /// The key the provider signs its event webhook with, as its settings name it; `None` where
    /// the webhook URL's own token is the authentication (Mailjet, Brevo) or SNS's certificate (SES).
    pub fn webhook_key_name(self) -> Option<&'static str> {
        match self {
            Self::Mailgun => Some("HTTP webhook signing key"),
            Self::Mandrill => Some("webhook key"),
            Self::Sendgrid => Some("signed event webhook verification key"),
            _ => None,
        }
    }

    fn optional_field(self, name: &str) -> bool {
        matches!((self, name), (Self::AmazonSes, "session_token") | (Self::Smtp, "security") | (Self::Smtp, "login") | (Self::Smtp, "password"))
    }
}

/// How an SMTP connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plaintext, then STARTTLS before authenticating (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption (local relays only).
    None,
}

impl SmtpSecurity {
    pub fn for_port(port: u16) -> Self {
        if port == 465 { Self::Tls } else { Self::Starttls }
    }
}

/// One template parameter: the provider's variable name ← a source field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateParam {
    pub parameter_name: String,
    pub source_field: String,
}

impl TemplateParam {
    fn as_row(&self) -> MappingRow {
        MappingRow { webhook_field: self.parameter_name.clone(), source_field: self.source_field.clone(), if_missing: Default::default() }
    }
}

/// What a mail carries: a provider template, or content given inline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Template {
    /// The provider's template id or name (Brevo and Mailjet: a number; SendGrid: `d-…`).
    Stored(String),
    /// Subject and body written here; `{{key}}` is replaced by the record's value.
    Inline { subject: String, text: Option<String>, html: Option<String> },
}

/// When an event of `event_type` arrives, send `template` to the address in `recipient_field`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailerRule {
    pub event_type: String,
    pub template: Template,
    #[serde(default = "default_recipient_field")]
    pub recipient_field: String,
}

fn default_recipient_field() -> String {
    "email".into()
}

/// Checks settings and credentials (`credentials_complete`: given now or stored) for a provider.
pub fn validate_settings(provider: MailerProvider, config: &Map<String, Value>, credentials: &Map<String, Value>) -> Result<(), String> {
    for key in config.keys() {
        if !provider.config_fields().contains(&key.as_str()) {
            return Err(format!("config.{key} is not a setting of {}", provider.title()));
        }
    }
    for key in credentials.keys() {
        if !provider.credential_fields().contains(&key.as_str()) {
            return Err(format!("credentials.{key} is not a credential of {}", provider.title()));
        }
    }
    for field in provider.config_fields() {
        if !provider.optional_field(field) && config.get(*field).is_none_or(blank) {
            return Err(format!("config.{field} is required for {}", provider.title()));
        }
    }
    for field in provider.credential_fields() {
        if !provider.optional_field(field) && credentials.get(*field).is_none_or(blank) {
            return Err(format!("credentials.{field} is required for {}", provider.title()));
        }
    }
    for (name, value) in config.iter().filter(|(_, v)| !blank(v)) {
        check_config_field(provider, name, value).map_err(|m| format!("config.{name} {m}"))?;
    }
    for (name, value) in credentials {
        let field = format!("credentials.{name}");
        match value.as_str() {
            Some(text) => check_secret(&field, text),
            None => Err(format!("{field} is a string")),
        }?;
    }
    Ok(())
}

/// One provider setting, already known to be a setting of `provider` and not blank: what it
/// must be, when it is not.
fn check_config_field(provider: MailerProvider, name: &str, value: &Value) -> Result<(), &'static str> {
    let text = value.as_str();
    let (ok, rule) = match (provider, name) {
        (MailerProvider::AmazonSes, "region") => (text.is_some_and(is_aws_region), "is an AWS region name such as \"eu-west-1\""),
        (MailerProvider::Mailgun, "domain") => (text.is_some_and(is_domain_name), "is a domain name such as \"mg.example.com\""),
        (MailerProvider::Mailgun, "region") => (matches!(text, Some("us" | "eu")), "is \"us\" or \"eu\""),
        // Syntax only: the caller applies the address policy, which resolves names.
        (MailerProvider::Smtp, "host") => (
            text.is_some_and(|h| h.len() <= MAX_DOMAIN_LEN && !h.contains(|c: char| c.is_whitespace() || c.is_control())),
            "is a host name or IP address",
        ),
        (MailerProvider::Smtp, "port") => {
            (value.as_u64().is_some_and(|p| (1..=65535).contains(&p)), "is a port number (587 for STARTTLS, 465 for TLS)")
        }
        (MailerProvider::Smtp, "login") => (text.is_some_and(|l| check_secret("login", l).is_ok()), "is a user name without control characters"),
        (MailerProvider::Smtp, "security") => (serde_json::from_value::<SmtpSecurity>(value.clone()).is_ok(), "is \"starttls\", \"tls\" or \"none\""),
        _ => (false, "is not a setting of this provider"),
    };
    if ok { Ok(()) } else { Err(rule) }
}

const MAX_DOMAIN_LEN: usize = 253;

/// `^[a-z]{2}(-[a-z]+)+-\d+$`: `eu-west-1`, `us-gov-west-1`, `ap-southeast-3`.
fn is_aws_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    match parts.as_slice() {
        [area, middle @ .., number] if !middle.is_empty() => {
            area.len() == 2
                && area.bytes().all(|b| b.is_ascii_lowercase())
                && middle.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// A DNS name of at least two labels (letters, digits, hyphens; no hyphen at either end).
pub fn is_domain_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= MAX_DOMAIN_LEN
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-') && !l.ends_with('-')
        })
}

fn blank(v: &Value) -> bool {
    match v {
        Value::String(s) => s.trim().is_empty(),
        Value::Null => true,
        _ => false,
    }
}

pub fn validate_template_params(provider: MailerProvider, params: &[TemplateParam]) -> Result<(), String> {
    if !params.is_empty() && !provider.supports_template_params() {
        return Err(format!("{} does not take template parameters (only Brevo, Mailgun, Mailjet, Mandrill and SendGrid do)", provider.title()));
    }
    let rows: Vec<MappingRow> = params.iter().map(TemplateParam::as_row).collect();
    mapping::validate(&rows).map_err(|m| m.replace("webhook field", "parameter name"))
}

/// An SMTP mailer's server: its host, and its port (587 when none is set).
pub fn smtp_address(config: &Map<String, Value>) -> (String, u16) {
    let port = config.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(587);
    (config.get("host").map(mapping::as_text).unwrap_or_default(), port)
}

/// A direct send's parameters (`mailers-send`), stored on its delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DirectSend {
    pub to: Option<String>,
    pub template: Template,
}

pub fn validate_template(provider: MailerProvider, template: &Template) -> Result<(), String> {
    match template {
        Template::Stored(id) if id.trim().is_empty() => Err("template is empty".into()),
        Template::Stored(_) if matches!(provider, MailerProvider::Smtp | MailerProvider::Internal) => {
            Err(format!("{} has no stored templates: give {{\"subject\", \"text\", \"html\"}}", provider.title()))
        }
        Template::Stored(id) if matches!(provider, MailerProvider::Brevo | MailerProvider::Mailjet) && id.parse::<u64>().is_err() => {
            Err(format!("{} template ids are numbers", provider.title()))
        }
        Template::Inline { subject, text: None, html: None } | Template::Inline { subject, .. } if subject.trim().is_empty() => {
            Err("an inline template needs a subject and a text or html body".into())
        }
        Template::Inline { text: None, html: None, .. } => Err("an inline template needs a text or html body".into()),
        _ => Ok(()),
    }
}

pub fn validate_rules(provider: MailerProvider, rules: &[MailerRule]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        if !seen.insert(rule.event_type.as_str()) {
            return Err(format!("rules[{i}]: one rule per event type ('{}' is used twice)", rule.event_type));
        }
        if !is_source_field(&rule.recipient_field) {
            return Err(format!("rules[{i}]: recipient_field '{}' is not a source field", rule.recipient_field));
        }
        validate_template(provider, &rule.template).map_err(|m| format!("rules[{i}]: {m}"))?;
    }
    Ok(())
}

/// How long a passed test of settings not saved yet vouches for them.
pub const TEST_PROOF_TTL_MS: Millis = 60 * 60 * 1000;

/// What a passed test of unsaved settings vouches for: those exact provider settings and
/// credentials, until `expires_at`. The API seals it and takes it back when the settings are
/// saved, so the test a user runs before saving (seed 001: "after entering your credentials")
/// verifies the mailer saved with them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestProof {
    pub digest: String,
    pub expires_at: Millis,
}

impl TestProof {
    pub fn new(digest: String, now: Millis) -> Self {
        Self { digest, expires_at: now + TEST_PROOF_TTL_MS }
    }

    pub fn vouches_for(&self, digest: &str, now: Millis) -> bool {
        self.digest == digest && now < self.expires_at
    }
}

/// A digest of what a test e-mail depends on (and what clears `verified` when it changes): the
/// provider, its settings and its credentials. `Map` keeps keys sorted, so equal settings always
/// give the same text.
pub fn settings_digest(provider: MailerProvider, config: &Map<String, Value>, credentials: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let canonical = serde_json::json!([provider.as_str(), config, credentials]).to_string();
    Sha256::digest(canonical.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A ready-to-send e-mail.
#[derive(Clone, Debug, PartialEq)]
pub struct Email {
    pub from_name: String,
    pub from_email: String,
    pub reply_to: Option<String>,
    pub to: String,
    pub bcc: Option<String>,
    pub content: Content,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    Template { id: String, params: Map<String, Value> },
    Inline { subject: String, text: Option<String>, html: Option<String> },
}

/// Fills the template: provider templates get the mapped parameters (providers without a
/// parameter mapping, i.e. SES, get the whole record), inline ones `{{key}}`.
pub fn content(provider: MailerProvider, template: &Template, params: &[TemplateParam], data: &Map<String, Value>) -> Content {
    match template {
        Template::Stored(id) if !provider.supports_template_params() => Content::Template { id: id.clone(), params: data.clone() },
        Template::Stored(id) => {
            let rows: Vec<MappingRow> = params.iter().map(TemplateParam::as_row).collect();
            Content::Template { id: id.clone(), params: mapping::apply(&rows, data) }
        }
        Template::Inline { subject, text, html } => Content::Inline {
            subject: render(subject, data),
            text: text.as_deref().map(|t| render(t, data)),
            html: html.as_deref().map(|h| render(h, data)),
        },
    }
}

/// Replaces `{{key}}` with the record's value (as text); unknown keys become empty.
pub fn render(text: &str, data: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                out.push_str(&data.get(key).map(mapping::as_text).unwrap_or_default());
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The test message of "Send Test Email".
pub fn test_content(mailer_name: &str) -> Content {
    Content::Inline {
        subject: "Switchyard test email".into(),
        text: Some(format!("This is a test e-mail from the mailer integration \"{mailer_name}\". It works.")),
        html: None,
    }
}

/// Light check of an address: one `@` between a local part and a dotted domain, and nothing that
/// could end a header or an SMTP command (spaces, control characters, brackets, separators).
pub fn valid_address(address: &str) -> bool {
    let address = address.trim();
    let forbidden = |c: char| c.is_whitespace() || c.is_control() || "<>,;:()[]\\\"".contains(c);
    match address.split_once('@') {
        Some((local, domain)) => {
            (1..=64).contains(&local.len())
                && address.len() <= 254
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !address.contains(forbidden)
        }
        None => false,
    }
}

/// A mailer integration. `credentials` is a sealed JSON object of secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Mailer {
    pub id: TargetId,
    pub account_id: AccountId,
    pub name: String,
    pub provider: MailerProvider,
    pub sender_name: String,
    pub sender_email: Option<String>,
    pub reply_to: Option<String>,
    pub bcc: Option<String>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub credentials: Option<Vec<u8>>,
    pub credential_hints: serde_json::Map<String, serde_json::Value>,
    pub template_params: Vec<TemplateParam>,
    pub rules: Vec<MailerRule>,
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    /// Set only by a successful test e-mail; cleared when provider settings or credentials change.
    pub verified: bool,
    pub verified_at: Option<Millis>,
    /// Another mailer of the account that sends when this one's provider fails (`fails_over`).
    pub fallback_mailer_id: Option<TargetId>,
    /// The sealed key that authenticates the provider's event webhook (`webhook_key_kind`).
    pub webhook_key: Option<Vec<u8>>,
    pub webhook_key_hint: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Mailer {
    /// A new mailer of `provider` with its defaults, not stored.
    pub fn draft(account_id: AccountId, provider: MailerProvider, now: Millis) -> Self {
        Self {
            id: TargetId::now_v7(),
            account_id,
            name: format!("{} Mailer", provider.title()),
            provider,
            sender_name: String::new(),
            sender_email: None,
            reply_to: None,
            bcc: None,
            config: Map::new(),
            credentials: None,
            credential_hints: Map::new(),
            template_params: Vec::new(),
            rules: Vec::new(),
            workspaces: WorkspaceScope::All,
            is_active: true,
            rate_limit: None,
            verified: false,
            verified_at: None,
            fallback_mailer_id: None,
            webhook_key: None,
            webhook_key_hint: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Sends go out: it passed Send Test Email for its current settings and is switched on.
    pub fn usable(&self) -> bool {
        self.verified && self.is_active
    }
}

/// Whether a failed send may go out through the fallback mailer instead: the provider or the way
/// to it failed (no connection, timeout, TLS, 5xx, 429, refused credentials), not the message or
/// its recipient, which another provider would refuse too.
pub fn fails_over(outcome: &AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Response { status, .. } => matches!(status, 401 | 403 | 408 | 429 | 500..),
        AttemptOutcome::Error { kind, .. } => !matches!(kind, ErrorKind::InvalidData | ErrorKind::Recipient | ErrorKind::TargetGone),
    }
}

/// Checks `fallback` (the mailer looked up by the id given, `None` when the account has none with
/// it) as the fallback of `mailer`: another mailer, not one falling back to it already (one hop
/// only, so a cycle would only hide which mailer is the backup), whose provider takes the
/// templates of `mailer`'s rules, which it sends when it stands in.
pub fn check_fallback(mailer: &Mailer, fallback_id: TargetId, fallback: Option<&Mailer>) -> Result<(), String> {
    let f = match fallback {
        _ if fallback_id == mailer.id => return Err("a mailer cannot be its own fallback".into()),
        None => return Err(format!("fallback_mailer_id: this account has no mailer {fallback_id}")),
        Some(f) => f,
    };
    if f.fallback_mailer_id == Some(mailer.id) {
        return Err(format!("fallback_mailer_id: \"{}\" already falls back to this mailer; a fallback is one hop, not a cycle", f.name));
    }
    validate_rules(f.provider, &mailer.rules)
        .map_err(|m| format!("fallback_mailer_id: \"{}\" sends this mailer's templates when it stands in, and {m}", f.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn settings_per_provider() {
        let none = Map::new();
        assert!(validate_settings(MailerProvider::Brevo, &none, &obj(json!({"api_key": "xkeysib-1"}))).is_ok());
        assert!(validate_settings(MailerProvider::Brevo, &none, &none).unwrap_err().contains("credentials.api_key is required"));
        assert!(
            validate_settings(MailerProvider::Mailgun, &obj(json!({"domain": "mg.example.com", "region": "mars"})), &obj(json!({"api_key": "k"})))
                .is_err()
        );
        assert!(
            validate_settings(MailerProvider::Mailgun, &obj(json!({"domain": "mg.example.com", "region": "eu"})), &obj(json!({"api_key": "k"})))
                .is_ok()
        );
        let ses = obj(json!({"access_key_id": "AKIA", "secret_access_key": "s"}));
        assert!(validate_settings(MailerProvider::AmazonSes, &obj(json!({"region": "eu-west-1"})), &ses).is_ok(), "session token optional");
        assert!(validate_settings(MailerProvider::Smtp, &obj(json!({"host": "smtp.example.com", "port": 587})), &none).is_ok());
        assert!(validate_settings(MailerProvider::Smtp, &obj(json!({"host": "smtp.example.com", "port": 0})), &none).is_err());
        assert!(validate_settings(MailerProvider::Internal, &none, &none).is_ok());
        assert!(
            validate_settings(MailerProvider::Smtp, &obj(json!({"host": "smtp.example.com", "port": 587, "security": "ssl"})), &none)
                .unwrap_err()
                .contains("config.security")
        );
        assert!(validate_settings(MailerProvider::Internal, &obj(json!({"host": "x"})), &none).unwrap_err().contains("not a setting"));
    }

    #[test]
    fn every_setting_is_checked_and_named() {
        let ses = obj(json!({"access_key_id": "AKIA", "secret_access_key": "s"}));
        for region in ["bad region/\"", "eu-west", "EU-WEST-1", "eu-west-1a", "e-west-1", "eu--1", "", "eu-west-1.evil.example"] {
            let err = validate_settings(MailerProvider::AmazonSes, &obj(json!({"region": region})), &ses).unwrap_err();
            assert!(err.contains("config.region"), "{region}: {err}");
        }
        for region in ["eu-west-1", "us-gov-west-1", "ap-southeast-3"] {
            assert!(validate_settings(MailerProvider::AmazonSes, &obj(json!({"region": region})), &ses).is_ok(), "{region}");
        }
        assert!(validate_settings(MailerProvider::AmazonSes, &obj(json!({"region": 5})), &ses).unwrap_err().contains("config.region"));
        let key = obj(json!({"api_key": "k"}));
        for domain in ["mg example.com", "../v2", "mg.example.com/x", "localhost", "-mg.example.com"] {
            let err = validate_settings(MailerProvider::Mailgun, &obj(json!({"domain": domain, "region": "us"})), &key).unwrap_err();
            assert!(err.contains("config.domain"), "{domain}: {err}");
        }
        let smtp = |config: Value| validate_settings(MailerProvider::Smtp, &obj(config), &Map::new());
        assert!(smtp(json!({"host": ["smtp.example.com"], "port": 587})).unwrap_err().contains("config.host"));
        assert!(smtp(json!({"host": "smtp.example.com\r\n", "port": 587})).unwrap_err().contains("config.host"));
        assert!(smtp(json!({"host": "smtp.example.com", "port": "587"})).unwrap_err().contains("config.port"));
        assert!(smtp(json!({"host": "smtp.example.com", "port": 70000})).unwrap_err().contains("config.port"));
        assert!(smtp(json!({"host": "smtp.example.com", "port": 587, "login": {"user": "x"}})).unwrap_err().contains("config.login"));
        assert!(smtp(json!({"host": "smtp.example.com", "port": 587, "login": ""})).is_ok(), "an empty optional setting is none");
        let creds = |c: Value| validate_settings(MailerProvider::Brevo, &Map::new(), &obj(c));
        assert!(creds(json!({"api_key": 42})).unwrap_err().contains("credentials.api_key"));
        assert!(creds(json!({"api_key": "k\r\nX-Injected: 1"})).unwrap_err().contains("credentials.api_key"));
        assert!(creds(json!({"api_key": "k".repeat(crate::domain::integration::MAX_SECRET_LEN + 1)})).unwrap_err().contains("credentials.api_key"));
    }

    #[test]
    fn template_params_only_where_supported() {
        let p = [TemplateParam { parameter_name: "FIRSTNAME".into(), source_field: "firstName".into() }];
        assert!(validate_template_params(MailerProvider::Brevo, &p).is_ok());
        assert!(validate_template_params(MailerProvider::Smtp, &p).unwrap_err().contains("does not take template parameters"));
        let bad = [TemplateParam { parameter_name: "X".into(), source_field: "shoe".into() }];
        assert!(validate_template_params(MailerProvider::Sendgrid, &bad).is_err());
    }

    #[test]
    fn templates_fit_their_provider() {
        assert!(validate_template(MailerProvider::Brevo, &Template::Stored("12".into())).is_ok());
        assert!(validate_template(MailerProvider::Brevo, &Template::Stored("welcome".into())).is_err());
        assert!(validate_template(MailerProvider::Sendgrid, &Template::Stored("d-abc".into())).is_ok());
        assert!(validate_template(MailerProvider::Smtp, &Template::Stored("welcome".into())).is_err());
        let inline = Template::Inline { subject: "Hi {{firstName}}".into(), text: Some("Score: {{score}}".into()), html: None };
        assert!(validate_template(MailerProvider::Smtp, &inline).is_ok());
        assert!(validate_template(MailerProvider::Smtp, &Template::Inline { subject: "s".into(), text: None, html: None }).is_err());
    }

    #[test]
    fn content_is_filled_from_the_record() {
        let data = obj(json!({"firstName": "Jane", "score": 17, "email": "jane@example.com"}));
        let params = [TemplateParam { parameter_name: "FNAME".into(), source_field: "firstName".into() }];
        let stored = Template::Stored("12".into());
        assert_eq!(
            content(MailerProvider::Brevo, &stored, &params, &data),
            Content::Template { id: "12".into(), params: obj(json!({"FNAME": "Jane"})) }
        );
        assert_eq!(content(MailerProvider::AmazonSes, &stored, &[], &data), Content::Template { id: "12".into(), params: data.clone() });
        let inline = Template::Inline { subject: "Hi {{ firstName }}".into(), text: Some("Score {{score}}{{missing}} {{".into()), html: None };
        assert_eq!(
            content(MailerProvider::Smtp, &inline, &[], &data),
            Content::Inline { subject: "Hi Jane".into(), text: Some("Score 17 {{".into()), html: None }
        );
    }

    #[test]
    fn test_proofs_vouch_for_the_same_settings_until_they_expire() {
        let key = |k: &str| obj(json!({"api_key": k}));
        let digest = settings_digest(MailerProvider::Sendgrid, &Map::new(), &key("SG.a"));
        let proof = TestProof::new(digest.clone(), 1_000);
        assert!(proof.vouches_for(&digest, 1_000 + TEST_PROOF_TTL_MS - 1));
        assert!(!proof.vouches_for(&digest, 1_000 + TEST_PROOF_TTL_MS), "expired");
        assert!(!proof.vouches_for(&settings_digest(MailerProvider::Sendgrid, &Map::new(), &key("SG.b")), 1_000), "other credentials");
        assert!(!proof.vouches_for(&settings_digest(MailerProvider::Brevo, &Map::new(), &key("SG.a")), 1_000), "other provider");
        let config = |region: &str| obj(json!({"region": region}));
        assert_ne!(
            settings_digest(MailerProvider::Mailgun, &config("us"), &key("k")),
            settings_digest(MailerProvider::Mailgun, &config("eu"), &key("k"))
        );
    }

    #[test]
    fn only_provider_failures_fail_over() {
        let answer = |status| AttemptOutcome::Response { status, excerpt: String::new(), headers: Vec::new(), retry_after: None };
        let error = |kind| AttemptOutcome::Error { kind, message: String::new() };
        for status in [401, 403, 408, 429, 500, 502, 503] {
            assert!(fails_over(&answer(status)), "{status}");
        }
        for status in [200, 202, 400, 404, 413, 422] {
            assert!(!fails_over(&answer(status)), "{status}");
        }
        for kind in [ErrorKind::Connect, ErrorKind::Dns, ErrorKind::Timeout, ErrorKind::Tls, ErrorKind::Io, ErrorKind::Rejected] {
            assert!(fails_over(&error(kind)), "{kind:?}");
        }
        for kind in [ErrorKind::InvalidData, ErrorKind::Recipient, ErrorKind::TargetGone] {
            assert!(!fails_over(&error(kind)), "{kind:?}");
        }
    }

    #[test]
    fn a_fallback_is_another_mailer_one_hop_away() {
        let (a, b) = (TargetId::now_v7(), TargetId::now_v7());
        let mailer = |id, fallback| Mailer {
            id,
            fallback_mailer_id: fallback,
            name: "B".into(),
            ..Mailer::draft(AccountId::now_v7(), MailerProvider::Sendgrid, 0)
        };
        let primary = mailer(a, None);
        assert!(check_fallback(&primary, b, Some(&mailer(b, None))).is_ok());
        assert!(check_fallback(&primary, a, Some(&primary)).unwrap_err().contains("own fallback"));
        assert!(check_fallback(&primary, b, None).unwrap_err().contains("no mailer"));
        assert!(check_fallback(&primary, b, Some(&mailer(b, Some(a)))).unwrap_err().contains("cycle"));
        let rule = MailerRule { event_type: "a.b".into(), template: Template::Stored("d-1".into()), recipient_field: "email".into() };
        let with_stored = Mailer { rules: vec![rule], ..mailer(a, None) };
        let smtp = Mailer { provider: MailerProvider::Smtp, ..mailer(b, None) };
        assert!(check_fallback(&with_stored, b, Some(&smtp)).unwrap_err().contains("no stored templates"));
    }

    #[test]
    fn rules_and_addresses() {
        let rule =
            |t: &str, field: &str| MailerRule { event_type: t.into(), template: Template::Stored("d-1".into()), recipient_field: field.into() };
        assert!(validate_rules(MailerProvider::Sendgrid, &[rule("participant.completed", "email")]).is_ok());
        assert!(validate_rules(MailerProvider::Sendgrid, &[rule("a.b", "email"), rule("a.b", "email")]).is_err());
        assert!(validate_rules(MailerProvider::Sendgrid, &[rule("a.b", "mail")]).is_err());
        assert!(valid_address("jane@example.com") && !valid_address("jane") && !valid_address("a b@example.com"));
        for bad in [
            "a@b@example.com",
            "jane@example.com\r\nBcc: x@example.com",
            "jane@example.",
            "jane@.example.com",
            "<jane@example.com>",
            "\"j\"@example.com",
        ] {
            assert!(!valid_address(bad), "{bad:?}");
        }
        let parsed: MailerRule = serde_json::from_value(json!({"event_type": "x.y", "template": "d-1"})).unwrap();
        assert_eq!(parsed.recipient_field, "email");
    }
}
