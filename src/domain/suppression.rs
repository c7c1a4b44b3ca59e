//! Suppressions (issue 18): addresses of an account that mail is never sent to again, because
//! they bounced for good or their owner complained; and what the providers' event webhooks say,
//! read from their payloads (Amazon SES through SNS, SendGrid, Mailgun, Mailjet, Brevo, Mandrill).
//! Soft bounces, deliveries, opens and clicks are read as nothing.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ids::{AccountId, TargetId};
use super::mailer::{MailerProvider, valid_address};
use super::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The receiving server refused the address for good (no such mailbox, domain).
    HardBounce,
    /// The recipient marked a message as spam.
    Complaint,
    /// Added through the API (`suppressions-create`).
    Manual,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::HardBounce, Self::Complaint, Self::Manual].into_iter().find(|r| r.as_str() == s)
    }

    fn plain_words(self) -> &'static str {
        match self {
            Self::HardBounce => "it bounced for good",
            Self::Complaint => "its owner reported a message as spam",
            Self::Manual => "it was added by hand",
        }
    }
}

/// One suppressed address of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub account_id: AccountId,
    /// Lowercased (`normalized_address`).
    pub address: String,
    pub reason: SuppressionReason,
    /// The provider that reported it; `None` for manual entries.
    pub provider: Option<MailerProvider>,
    /// The mailer whose event webhook reported it.
    pub mailer_id: Option<TargetId>,
    /// What the provider said (a bounce's diagnostic), or the note of a manual entry.
    pub detail: Option<String>,
    pub first_seen: Millis,
    pub last_event: Millis,
}

impl Suppression {
    /// Why a delivery to this address ends without sending, for the delivery log.
    pub fn refusal(&self) -> String {
        let by = self.provider.map(|p| format!(" (reported by {})", p.title())).unwrap_or_default();
        format!(
            "{} is on the suppression list: {}{by}; remove it with suppressions-delete to send to it again",
            self.address,
            self.reason.plain_words()
        )
    }
}

/// Which suppressions a list shows: those whose address contains `address_contains` (compared
/// lowercased), after the address `after` (the last of the previous page), at most `limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SuppressionFilter {
    pub address_contains: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

/// Addresses are compared lowercased: providers report them in any case.
pub fn normalized_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// Longest detail kept of an event.
pub const MAX_DETAIL_CHARS: usize = 500;

/// A hard bounce or complaint a provider reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailEvent {
    pub address: String,
    pub reason: SuppressionReason,
    pub detail: Option<String>,
}

impl MailEvent {
    fn new(address: &Value, reason: SuppressionReason, detail: &Value) -> Option<Self> {
        let address = normalized_address(address.as_str()?);
        let detail = match detail {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        valid_address(&address).then(|| Self { address, reason, detail: detail.map(|d| d.chars().take(MAX_DETAIL_CHARS).collect()) })
    }
}

/// The events of one webhook body that call for a suppression, read from `provider`'s payload
/// (already authenticated). `Err` when the body is not that provider's shape at all.
pub fn mail_events(provider: MailerProvider, body: &Value) -> Result<Vec<MailEvent>, String> {
    let events = match provider {
        MailerProvider::Sendgrid | MailerProvider::Mandrill => body.as_array().ok_or("expected a JSON array of events")?.iter().collect(),
        // Mailjet sends one event, or an array of them when grouping is on.
        MailerProvider::Mailjet => body.as_array().map_or_else(|| vec![body], |all| all.iter().collect()),
        MailerProvider::Brevo | MailerProvider::Mailgun | MailerProvider::AmazonSes => vec![body],
        MailerProvider::Smtp | MailerProvider::Internal => return Err(format!("{} has no event webhook", provider.title())),
    };
    if events.iter().any(|e| !e.is_object()) {
        return Err("expected event objects".into());
    }
    Ok(events.into_iter().flat_map(|e| events_of(provider, e)).collect())
}

fn events_of(provider: MailerProvider, e: &Value) -> Vec<MailEvent> {
    use SuppressionReason::{Complaint, HardBounce};
    let one = |address: &Value, reason, detail: &Value| MailEvent::new(address, reason, detail).into_iter().collect();
    match provider {
        // SendGrid: "bounce" (its type "blocked" is a temporary refusal) and "spamreport".
        MailerProvider::Sendgrid => match e["event"].as_str() {
            Some("bounce") if e["type"] != "blocked" => one(&e["email"], HardBounce, &e["reason"]),
            Some("spamreport") => one(&e["email"], Complaint, &Value::Null),
            _ => Vec::new(),
        },
        // Mailgun: the signed envelope's "event-data"; a permanent "failed" is a hard bounce.
        MailerProvider::Mailgun => {
            let data = &e["event-data"];
            match data["event"].as_str() {
                Some("failed") if data["severity"] == "permanent" => one(&data["recipient"], HardBounce, &data["delivery-status"]["description"]),
                Some("complained") => one(&data["recipient"], Complaint, &Value::Null),
                _ => Vec::new(),
            }
        }
        MailerProvider::Mailjet => match e["event"].as_str() {
            Some("bounce") if e["hard_bounce"] == true => one(&e["email"], HardBounce, &e["error"]),
            Some("spam") => one(&e["email"], Complaint, &e["source"]),
            _ => Vec::new(),
        },
        MailerProvider::Brevo => match e["event"].as_str() {
            Some("hard_bounce") => one(&e["email"], HardBounce, &e["reason"]),
            Some("spam") => one(&e["email"], Complaint, &Value::Null),
            _ => Vec::new(),
        },
        MailerProvider::Mandrill => match e["event"].as_str() {
            Some("hard_bounce") => one(&e["msg"]["email"], HardBounce, &e["msg"]["diag"]),
            Some("spam") => one(&e["msg"]["email"], Complaint, &Value::Null),
            _ => Vec::new(),
        },
        MailerProvider::AmazonSes => ses_events(e),
        MailerProvider::Smtp | MailerProvider::Internal => Vec::new(),
    }
}

/// An SES notification (`notificationType`) or event (`eventType`): a permanent bounce names its
/// recipients, a complaint its complainers. Transient and undetermined bounces are soft.
fn ses_events(e: &Value) -> Vec<MailEvent> {
    let kind = e["notificationType"].as_str().or(e["eventType"].as_str());
    let (recipients, reason) = match kind {
        Some("Bounce") if e["bounce"]["bounceType"] == "Permanent" => (&e["bounce"]["bouncedRecipients"], SuppressionReason::HardBounce),
        Some("Complaint") => (&e["complaint"]["complainedRecipients"], SuppressionReason::Complaint),
        _ => return Vec::new(),
    };
    let recipients = recipients.as_array().map(Vec::as_slice).unwrap_or_default();
    recipients.iter().filter_map(|r| MailEvent::new(&r["emailAddress"], reason, &r["diagnosticCode"])).collect()
}

/// How far a signed webhook's own timestamp may be from now (Mailgun, SendGrid): older ones are
/// replays, and a provider's retries sign anew.
pub const MAX_WEBHOOK_AGE_MS: Millis = 10 * 60 * 1000;

/// Whether a webhook signed at `timestamp` (Unix seconds, as text) is fresh at `now`.
pub fn fresh(timestamp: &str, now: Millis) -> bool {
    timestamp.trim().parse::<i64>().is_ok_and(|t| (now - t.saturating_mul(1000)).abs() <= MAX_WEBHOOK_AGE_MS)
}

/// What Mandrill signs: the webhook's URL as configured, then each POST parameter's name and
/// value, sorted by name, with no separator.
pub fn mandrill_signed_data(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.iter().fold(url.to_owned(), |mut data, (k, v)| {
        data.push_str(k);
        data.push_str(v);
        data
    })
}

/// What SNS signs: the message's fields in order, each as its name and value on lines of their own
/// (`Subject` only when present). `None` when a field it needs is missing.
pub fn sns_string_to_sign(message: &Value) -> Option<String> {
    let fields: &[&str] = match message["Type"].as_str()? {
        "Notification" => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
        _ => return None,
    };
    let mut text = String::new();
    for field in fields {
        match message[*field].as_str() {
            Some(value) => text.push_str(&format!("{field}\n{value}\n")),
            None if *field == "Subject" => {}
            None => return None,
        }
    }
    Some(text)
}

/// Whether an SNS URL (`SigningCertURL`, `SubscribeURL`) is Amazon's: HTTPS on
/// `sns.<region>.amazonaws.com` (`.com.cn` in China), or under `allowed_base` when one is
/// configured (tests serve their certificate locally).
pub fn sns_url_allowed(url: &url::Url, allowed_base: Option<&url::Url>) -> bool {
    if let Some(base) = allowed_base {
        return url.as_str().starts_with(base.as_str());
    }
    let host = url.host_str().unwrap_or_default();
    let region = host.strip_prefix("sns.").and_then(|h| h.strip_suffix(".amazonaws.com").or_else(|| h.strip_suffix(".amazonaws.com.cn")));
    url.scheme() == "https"
        && url.port().is_none()
        && region.is_some_and(|r| !r.is_empty() && r.split('-').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addresses(provider: MailerProvider, body: Value) -> Vec<(String, SuppressionReason)> {
        mail_events(provider, &body).unwrap().into_iter().map(|e| (e.address, e.reason)).collect()
    }

    #[test]
    fn hard_bounces_and_complaints_are_read_and_soft_bounces_are_not() {
        use SuppressionReason::{Complaint, HardBounce};
        let jane = || "jane@example.com".to_owned();
        let sendgrid = json!([
            {"email": "Jane@Example.com", "event": "bounce", "type": "bounce", "reason": "550 5.1.1 unknown"},
            {"email": "joe@example.com", "event": "bounce", "type": "blocked"},
            {"email": "jane@example.com", "event": "spamreport"},
            {"email": "joe@example.com", "event": "delivered"}
        ]);
        assert_eq!(addresses(MailerProvider::Sendgrid, sendgrid), [(jane(), HardBounce), (jane(), Complaint)]);
        let mailgun =
            |severity: &str| json!({"signature": {}, "event-data": {"event": "failed", "severity": severity, "recipient": "jane@example.com"}});
        assert_eq!(addresses(MailerProvider::Mailgun, mailgun("permanent")), [(jane(), HardBounce)]);
        assert!(addresses(MailerProvider::Mailgun, mailgun("temporary")).is_empty());
        let mailjet = json!([{"event": "bounce", "email": "jane@example.com", "hard_bounce": true}, {"event": "bounce", "email": "joe@example.com", "hard_bounce": false}]);
        assert_eq!(addresses(MailerProvider::Mailjet, mailjet), [(jane(), HardBounce)]);
        assert_eq!(addresses(MailerProvider::Mailjet, json!({"event": "spam", "email": "jane@example.com"})), [(jane(), Complaint)]);
        assert_eq!(addresses(MailerProvider::Brevo, json!({"event": "hard_bounce", "email": "jane@example.com"})), [(jane(), HardBounce)]);
        assert!(addresses(MailerProvider::Brevo, json!({"event": "soft_bounce", "email": "jane@example.com"})).is_empty());
        let mandrill = json!([{"event": "hard_bounce", "msg": {"email": "jane@example.com", "diag": "smtp;550"}}, {"event": "soft_bounce", "msg": {"email": "joe@example.com"}}]);
        assert_eq!(addresses(MailerProvider::Mandrill, mandrill), [(jane(), HardBounce)]);
        let ses =
            json!({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "jane@example.com"}]}});
        assert_eq!(addresses(MailerProvider::AmazonSes, ses), [(jane(), HardBounce)]);
        let soft = json!({"eventType": "Bounce", "bounce": {"bounceType": "Transient", "bouncedRecipients": [{"emailAddress": "jane@example.com"}]}});
        assert!(addresses(MailerProvider::AmazonSes, soft).is_empty());
        assert!(mail_events(MailerProvider::Sendgrid, &json!({"event": "bounce"})).is_err(), "SendGrid posts arrays");
        assert!(addresses(MailerProvider::Brevo, json!({"event": "hard_bounce", "email": "not an address"})).is_empty());
    }

    #[test]
    fn signed_material_is_built_as_each_provider_signs() {
        let params = vec![("mandrill_events".to_owned(), "[]".to_owned()), ("a".to_owned(), "1".to_owned())];
        assert_eq!(mandrill_signed_data("https://x.example/hook", &params), "https://x.example/hooka1mandrill_events[]");
        let message = json!({"Type": "Notification", "Message": "m", "MessageId": "1", "Timestamp": "t", "TopicArn": "arn", "Signature": "s"});
        assert_eq!(sns_string_to_sign(&message).unwrap(), "Message\nm\nMessageId\n1\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n");
        assert_eq!(sns_string_to_sign(&json!({"Type": "SubscriptionConfirmation", "Message": "m"})), None);
        assert!(fresh("1700000000", 1_700_000_000_000 + MAX_WEBHOOK_AGE_MS));
        assert!(!fresh("1700000000", 1_700_000_000_000 + MAX_WEBHOOK_AGE_MS + 1));
        assert!(!fresh("soon", 0));
    }

    #[test]
    fn only_amazons_sns_urls_are_followed() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        assert!(sns_url_allowed(&url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"), None));
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/cert.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
            "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
            "https://sns..amazonaws.com/cert.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        ] {
            assert!(!sns_url_allowed(&url(bad), None), "{bad}");
        }
        let base = url("http://127.0.0.1:9000/sns/");
        assert!(sns_url_allowed(&url("http://127.0.0.1:9000/sns/cert.pem"), Some(&base)));
        assert!(!sns_url_allowed(&url("https://sns.eu-west-1.amazonaws.com/cert.pem"), Some(&base)), "only the configured base");
    }
}
