//! Mailers: one adapter for the eight providers. HTTP providers share one request path
//! (`providers`), SES adds a SigV4 signature (`ses`), SMTP and the built-in relay speak SMTP
//! (`smtp`).

pub mod providers;
pub mod ses;
pub mod smtp;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use super::http::HttpClient;
use super::{MASKED, Sent, SentRequest, Target, data_object};
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy, explain};
use crate::domain::mailer::Mailer;
use crate::domain::mailer::{self, Content, DirectSend, Email, MailerProvider, MailerRule, SmtpSecurity};
use crate::domain::mapping::as_text;
use crate::domain::queue::ClaimedDelivery;
use crate::domain::suppression::normalized_address;
use crate::store::TargetSettings;
use providers::{Body, Credentials};

/// Where each provider lives; tests point these at local fakes.
#[derive(Clone, Debug)]
pub struct MailSettings {
    pub brevo_base_url: Url,
    pub mailgun_us_base_url: Url,
    pub mailgun_eu_base_url: Url,
    pub mailjet_base_url: Url,
    pub mandrill_base_url: Url,
    pub sendgrid_base_url: Url,
    /// SES endpoint; `None` means `https://email.<region>.amazonaws.com`.
    pub ses_endpoint: Option<Url>,
    /// Where SNS certificates and subscription confirmations of SES event webhooks may be
    /// fetched; `None` means Amazon's own hosts only (`domain::suppression::sns_url_allowed`).
    pub sns_base_url: Option<Url>,
    /// The built-in relay: the server's SMTP relay and the address it sends from.
    pub relay: Option<smtp::SmtpServer>,
    pub relay_from: String,
    pub smtp: smtp::SmtpSettings,
}

pub struct MailerTarget {
    mailer: Mailer,
    /// Where the account's suppressed addresses are looked up before each send.
    suppressions: Arc<dyn TargetSettings>,
    credentials: Credentials,
    http: HttpClient,
    settings: MailSettings,
    /// Sends when this mailer's provider fails (`mailer::fails_over`); has no fallback itself.
    fallback: Option<Box<MailerTarget>>,
}

fn refused(message: impl Into<String>) -> AttemptOutcome {
    AttemptOutcome::Error { kind: ErrorKind::Rejected, message: message.into() }
}

fn invalid(message: impl Into<String>) -> AttemptOutcome {
    AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: message.into() }
}

/// A credential as a description shows it: set ones masked, empty ones left empty.
fn masked(value: &Value) -> Value {
    match value {
        Value::String(s) if s.is_empty() => value.clone(),
        _ => Value::String(MASKED.to_owned()),
    }
}

impl MailerTarget {
    pub fn new(mailer: Mailer, credentials: Credentials, http: HttpClient, settings: MailSettings, suppressions: Arc<dyn TargetSettings>) -> Self {
        Self { mailer, suppressions, credentials, http, settings, fallback: None }
    }

    pub fn with_fallback(self, fallback: MailerTarget) -> Self {
        Self { fallback: Some(Box::new(fallback)), ..self }
    }

    /// Sends the "Send Test Email" message to `to`.
    pub async fn send_test(&self, to: &str) -> AttemptOutcome {
        self.send(self.email(to.to_owned(), mailer::test_content(&self.mailer.name))).await
    }

    fn email(&self, to: String, content: Content) -> Email {
        let m = &self.mailer;
        let from_email = match m.provider {
            MailerProvider::Internal => self.settings.relay_from.clone(),
            _ => m.sender_email.clone().unwrap_or_default(),
        };
        Email { from_name: m.sender_name.clone(), from_email, reply_to: m.reply_to.clone(), to, bcc: m.bcc.clone(), content }
    }

    /// The recipient and template of a delivery: its own parameters (direct send) or the rule
    /// for its event type among `rules` (the delivery's mailer's, also when its fallback sends).
    fn compose(&self, delivery: &ClaimedDelivery, data: &Map<String, Value>, rules: &[MailerRule]) -> Result<Email, AttemptOutcome> {
        let (to, template) = match &delivery.params {
            Some(params) => {
                let direct: DirectSend = serde_json::from_str(params).map_err(|e| invalid(format!("bad send parameters: {e}")))?;
                (direct.to.or_else(|| data.get("email").map(as_text)), direct.template)
            }
            None => {
                let rule = rules.iter().find(|r| r.event_type == delivery.event.event_type);
                let rule = rule.ok_or_else(|| invalid(format!("no rule for event type {}", delivery.event.event_type)))?;
                (data.get(&rule.recipient_field).map(as_text), rule.template.clone())
            }
        };
        let to = to.map(|t| t.trim().to_owned()).filter(|t| mailer::valid_address(t));
        let to = to.ok_or_else(|| invalid("the record has no valid recipient address"))?;
        Ok(self.email(to, mailer::content(self.mailer.provider, &template, &self.mailer.template_params, data)))
    }

    async fn send(&self, email: Email) -> AttemptOutcome {
        let provider = self.mailer.provider;
        match provider {
            MailerProvider::Smtp => smtp::send(&self.settings.smtp, &self.smtp_server(), &email).await,
            MailerProvider::Internal => match &self.settings.relay {
                Some(relay) => smtp::send(&self.settings.smtp, relay, &email).await,
                None => refused("this server has no relay configured (start it with --relay-smtp-url)"),
            },
            _ => providers::interpret(provider, self.send_http(email).await),
        }
    }

    fn smtp_server(&self) -> smtp::SmtpServer {
        let config = &self.mailer.config;
        let (host, port) = mailer::smtp_address(config);
        smtp::SmtpServer {
            host,
            port,
            security: config.get("security").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or(SmtpSecurity::for_port(port)),
            login: config.get("login").map(as_text),
            password: self.credentials.get("password").map(as_text),
        }
    }

    /// Where an HTTP provider is reached. SES's host is built from the region, which was
    /// checked when saved; a region stored before that check fails the attempt, never the process.
    fn base_url(&self) -> Result<Url, AttemptOutcome> {
        let s = &self.settings;
        Ok(match self.mailer.provider {
            MailerProvider::Brevo => s.brevo_base_url.clone(),
            MailerProvider::Mailgun if self.mailer.config.get("region").and_then(Value::as_str) == Some("eu") => s.mailgun_eu_base_url.clone(),
            MailerProvider::Mailgun => s.mailgun_us_base_url.clone(),
            MailerProvider::Mailjet => s.mailjet_base_url.clone(),
            MailerProvider::Mandrill => s.mandrill_base_url.clone(),
            MailerProvider::Sendgrid => s.sendgrid_base_url.clone(),
            MailerProvider::AmazonSes => match &s.ses_endpoint {
                Some(endpoint) => endpoint.clone(),
                None => {
                    let region = self.mailer.config.get("region").map(as_text).unwrap_or_default();
                    Url::parse(&format!("https://email.{region}.amazonaws.com")).map_err(|e| invalid(format!("bad SES region '{region}': {e}")))?
                }
            },
            MailerProvider::Smtp | MailerProvider::Internal => return Err(invalid("SMTP mailers have no base URL")),
        })
    }

    async fn send_http(&self, email: Email) -> AttemptOutcome {
        match self.http_request(&email, &self.credentials) {
            Ok((url, request)) => self.http.send(&url, request).await,
            Err(outcome) => outcome,
        }
    }

    /// The provider call that sends `email`, signed (SES) with `credentials`.
    fn http_request(&self, email: &Email, credentials: &Credentials) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome> {
        let request = providers::send_request(self.mailer.provider, &self.mailer.config, credentials, email)
            .ok_or_else(|| invalid("SMTP mailers do not send over HTTP"))?;
        let base = self.base_url()?;
        let url = Url::parse(&format!("{}{}", base.as_str().trim_end_matches('/'), request.path))
            .map_err(|_| invalid(format!("bad provider URL {base}")))?;
        let (content_type, body) = match &request.body {
            Body::Json(value) => ("application/json", value.to_string().into_bytes()),
            Body::Form(pairs) => {
                ("application/x-www-form-urlencoded", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish().into_bytes())
            }
        };
        let mut headers: Vec<(String, String)> = request.headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        headers.push(("content-type".into(), content_type.into()));
        if self.mailer.provider == MailerProvider::AmazonSes {
            let signature = self.ses_signature(&url, &headers, &body, credentials);
            headers.extend(signature.map_err(|e| invalid(format!("could not sign the SES request: {e}")))?);
        }
        let mut builder = self.http.request(request.method, url.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        Ok((url, builder.body(body)))
    }

    /// The message a delivery sends, as the log shows it. It is built with every credential
    /// replaced by [`MASKED`], so no secret can reach the description, wherever a provider
    /// carries it (a header, Mandrill's body, the SES signature).
    fn describe_email(&self, email: &Email) -> Result<SentRequest, AttemptOutcome> {
        match self.mailer.provider {
            MailerProvider::Smtp => smtp::describe(&self.smtp_server(), email),
            MailerProvider::Internal => match &self.settings.relay {
                Some(relay) => smtp::describe(relay, email),
                None => Err(refused("this server has no relay configured (start it with --relay-smtp-url)")),
            },
            _ => {
                let masked = self.credentials.iter().map(|(name, value)| (name.clone(), masked(value))).collect();
                SentRequest::of(self.http_request(email, &masked)?.1)
            }
        }
    }

    fn ses_signature(
        &self,
        url: &Url,
        headers: &[(String, String)],
        body: &[u8],
        credentials: &Credentials,
    ) -> Result<Vec<(String, String)>, String> {
        let host = url.host_str().unwrap_or_default();
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let mut signed: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        signed.push(("host", &host));
        let cred = |name: &str| credentials.get(name).and_then(Value::as_str).filter(|v| !v.is_empty());
        let region = self.mailer.config.get("region").map(as_text).unwrap_or_default();
        let keys = ses::AwsKeys {
            region: &region,
            access_key_id: cred("access_key_id").unwrap_or_default(),
            secret_access_key: cred("secret_access_key").unwrap_or_default(),
            session_token: cred("session_token"),
        };
        ses::signature_headers("POST", url.as_str(), &signed, body, &keys, SystemTime::now())
    }
}

#[async_trait]
impl Target for MailerTarget {
    fn failure_policy(&self) -> FailurePolicy {
        FailurePolicy::FailFastOn4xx
    }

    async fn deliver(&self, delivery: &ClaimedDelivery) -> AttemptOutcome {
        self.deliver_via(delivery).await.outcome
    }

    /// Sends through this mailer and, when its provider fails and a verified, active fallback is
    /// set, through the fallback: the same message (this mailer's rule, its template), from the
    /// fallback's sender with its template parameters. When both fail, the primary's outcome decides what happens next
    /// (a retry tries both again) and says how the fallback failed.
    async fn deliver_via(&self, delivery: &ClaimedDelivery) -> Sent {
        if !self.mailer.verified {
            let outcome = refused("mailers.not_verified: this mailer has not passed Send Test Email since its settings last changed");
            return Sent { outcome, by: None };
        }
        let outcome = self.send_delivery(delivery, &self.mailer.rules).await;
        let fallback = self.fallback.as_deref().filter(|f| f.mailer.usable());
        let Some(fallback) = fallback.filter(|_| mailer::fails_over(&outcome)) else {
            return Sent { outcome, by: None };
        };
        let second = fallback.send_delivery(delivery, &self.mailer.rules).await;
        if matches!(second, AttemptOutcome::Response { status: 200..=299, .. }) {
            return Sent { outcome: second, by: Some(fallback.mailer.id) };
        }
        let note = format!("the fallback mailer \"{}\" failed too: {}", fallback.mailer.name, explain(&second));
        Sent { outcome: with_note(outcome, &note), by: None }
    }
    /// The message this mailer sends for `delivery` (not its fallback's).
    fn describe(&self, delivery: &ClaimedDelivery) -> Result<SentRequest, AttemptOutcome> {
        data_object(delivery).and_then(|data| self.compose(delivery, &data, &self.mailer.rules)).and_then(|email| self.describe_email(&email))
    }
}

impl MailerTarget {
    async fn send_delivery(&self, delivery: &ClaimedDelivery, rules: &[MailerRule]) -> AttemptOutcome {
        let email = match data_object(delivery).and_then(|data| self.compose(delivery, &data, rules)) {
            Ok(email) => email,
            Err(outcome) => return outcome,
        };
        match self.suppressions.suppression(self.mailer.account_id, &normalized_address(&email.to)).await {
            Ok(None) => self.send(email).await,
            Ok(Some(suppressed)) => AttemptOutcome::Error { kind: ErrorKind::Recipient, message: suppressed.refusal() },
            Err(e) => AttemptOutcome::Error { kind: ErrorKind::Internal, message: format!("the suppression list could not be read: {e}") },
        }
    }
}

/// Adds `note` to what an outcome says: its message, or after the answer's excerpt.
fn with_note(outcome: AttemptOutcome, note: &str) -> AttemptOutcome {
    match outcome {
        AttemptOutcome::Error { kind, message } => AttemptOutcome::Error { kind, message: format!("{message}; {note}") },
        AttemptOutcome::Response { status, excerpt, headers, retry_after } => {
            AttemptOutcome::Response { status, excerpt: format!("{excerpt}\n[{note}]"), headers, retry_after }
        }
    }
}
