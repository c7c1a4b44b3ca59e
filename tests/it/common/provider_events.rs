//! The mail providers' event webhooks as they post them: each provider's real payload shape
//! (from its documentation), signed its own way with keys made here, and Amazon SNS's side (a
//! signing certificate and subscription confirmations served on loopback).

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::Sha256;

/// A SendGrid signed-event-webhook key pair, as its Mail Settings make one.
pub struct SendgridKey(EcdsaKeyPair);

impl SendgridKey {
    pub fn generate() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Self(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap())
    }

    /// The verification key SendGrid shows: base64 DER SubjectPublicKeyInfo of the P-256 key.
    pub fn public_key(&self) -> String {
        const P256_SPKI_PREFIX: [u8; 26] = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
            0x03, 0x42, 0x00,
        ];
        STANDARD.encode([P256_SPKI_PREFIX.as_slice(), self.0.public_key().as_ref()].concat())
    }

    /// The two headers of a signed event webhook request carrying `body`, signed at `timestamp`.
    pub fn headers(&self, timestamp: i64, body: &str) -> Vec<(&'static str, String)> {
        let signed = format!("{timestamp}{body}");
        let signature = self.0.sign(&ring::rand::SystemRandom::new(), signed.as_bytes()).unwrap();
        vec![
            ("x-twilio-email-event-webhook-signature", STANDARD.encode(signature.as_ref())),
            ("x-twilio-email-event-webhook-timestamp", timestamp.to_string()),
        ]
    }
}

/// SendGrid's event webhook body: a JSON array of events.
pub fn sendgrid_events(address: &str) -> Value {
    json!([
        {"email": address, "timestamp": 1764700000, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>", "event": "bounce",
         "category": ["prizes"], "sg_event_id": "6g4ZI7SA-xmRDv57GoPIPw==", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
         "reason": "550 5.1.1 The email account that you tried to reach does not exist", "status": "5.1.1", "type": "bounce"},
        {"email": "soft@example.com", "timestamp": 1764700000, "event": "bounce", "type": "blocked", "reason": "421 try again later", "status": "4.0.0"},
        {"email": "complainer@example.com", "timestamp": 1764700001, "event": "spamreport", "sg_event_id": "x", "sg_message_id": "y"},
        {"email": "reader@example.com", "timestamp": 1764700002, "event": "open", "useragent": "Mozilla/5.0", "ip": "255.255.255.255"}
    ])
}

/// Mailgun's webhook body for one event, signed with `signing_key` at `timestamp`.
pub fn mailgun_event(signing_key: &str, timestamp: i64, event_data: Value) -> Value {
    let token = format!("{:x}", rand_u128());
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    json!({"signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature}, "event-data": event_data})
}

/// Mailgun's "failed" event: `severity` permanent (a hard bounce) or temporary.
pub fn mailgun_failed(address: &str, severity: &str) -> Value {
    json!({"event": "failed", "severity": severity, "reason": "bounce", "recipient": address, "recipient-domain": "example.com",
           "timestamp": 1764700000.123, "id": "G9Bn5sl1TC6nu79C8C0bwg", "log-level": "error",
           "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist",
                               "description": "No such user", "attempt-no": 1, "session-seconds": 0.4},
           "message": {"headers": {"to": address, "message-id": "20261203.1@mg.example.com", "from": "noreply@mg.example.com", "subject": "You won"}}})
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    u128::from_le_bytes(bytes)
}

/// Mandrill's webhook request: the form body (`mandrill_events`) and its `X-Mandrill-Signature`
/// for `url`, the webhook's URL as configured at Mandrill.
pub fn mandrill_request(webhook_key: &str, url: &str, events: &Value) -> (String, String) {
    let events = events.to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, webhook_key.as_bytes());
    let signature = STANDARD.encode(ring::hmac::sign(&key, format!("{url}mandrill_events{events}").as_bytes()).as_ref());
    (url::form_urlencoded::Serializer::new(String::new()).append_pair("mandrill_events", &events).finish(), signature)
}

pub fn mandrill_events(address: &str) -> Value {
    json!([
        {"event": "hard_bounce", "_id": "7761629", "ts": 1764700000,
         "msg": {"ts": 1764699000, "_id": "7761629", "state": "bounced", "subject": "You won", "email": address, "sender": "noreply@example.com",
                 "tags": [], "bounce_description": "bad_mailbox", "diag": "smtp;550 5.1.1 The email account that you tried to reach does not exist"}},
        {"event": "soft_bounce", "_id": "7761630", "ts": 1764700001, "msg": {"email": "soft@example.com", "state": "soft-bounced", "bounce_description": "mailbox_full"}}
    ])
}

/// Mailjet's event (one object; grouped events come as an array of them).
pub fn mailjet_bounce(address: &str, hard: bool) -> Value {
    json!({"event": "bounce", "time": 1764700000, "MessageID": 1234, "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
           "email": address, "mj_campaign_id": 0, "mj_contact_id": 5678, "customcampaign": "", "CustomID": "", "Payload": "",
           "blocked": false, "hard_bounce": hard, "error_related_to": "recipient", "error": "user unknown"})
}

/// Brevo's transactional webhook event.
pub fn brevo_event(event: &str, address: &str) -> Value {
    json!({"event": event, "email": address, "id": 123456, "date": "2026-12-03 10:00:00", "ts": 1764700000,
           "message-id": "<202612031000.12345@smtp-relay.mailin.fr>", "ts_event": 1764700000, "subject": "You won",
           "sending_ip": "185.41.28.109", "ts_epoch": 1764700000123_i64, "reason": "550 5.1.1 unknown user", "tags": []})
}

/// SES's bounce notification, as the `Message` of an SNS notification.
pub fn ses_bounce(address: &str, bounce_type: &str) -> Value {
    json!({"notificationType": "Bounce",
           "bounce": {"feedbackId": "0100018c-abcd", "bounceType": bounce_type, "bounceSubType": "General", "timestamp": "2026-12-03T10:00:00.000Z",
                      "bouncedRecipients": [{"emailAddress": address, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
           "mail": {"timestamp": "2026-12-03T09:59:58.000Z", "source": "noreply@example.com", "messageId": "0100018c-1234-5678", "destination": [address]}})
}

/// Amazon SNS on loopback: its signing certificate and the subscription confirmations it is sent.
pub struct FakeSns {
    /// `--sns-base-url` for the server under test.
    pub base: String,
    key: PathBuf,
    pub confirmed: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

async fn confirm(State(confirmed): State<Arc<Mutex<Vec<String>>>>, Query(query): Query<Vec<(String, String)>>) -> &'static str {
    let token = query.into_iter().find(|(k, _)| k == "Token").map(|(_, v)| v).unwrap_or_default();
    confirmed.lock().unwrap().push(token);
    "<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn:aws:sns:eu-west-1:123456789012:ses-events:1</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
}

impl FakeSns {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=sns.amazonaws.com"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl makes the SNS signing certificate");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pem = std::fs::read_to_string(&cert).unwrap();
        let confirmed = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/sns/SimpleNotificationService-test.pem", get(move || std::future::ready(pem.clone())))
            .route("/sns/confirm", get(confirm))
            .with_state(confirmed.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/sns/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, key, confirmed, dir }
    }

    pub fn cert_url(&self) -> String {
        format!("{}SimpleNotificationService-test.pem", self.base)
    }

    /// Signs the SNS message (its string to sign, as SNS builds it) with SignatureVersion
    /// `version` (1: SHA1, 2: SHA256), as `openssl dgst` does.
    pub fn sign(&self, message: &mut Value, version: &str) {
        let fields: &[&str] = if message["Type"] == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        };
        let text: String = fields.iter().filter_map(|f| message[*f].as_str().map(|v| format!("{f}\n{v}\n"))).collect();
        let data = self.dir.path().join("string-to-sign");
        std::fs::write(&data, text).unwrap();
        let digest = if version == "1" { "-sha1" } else { "-sha256" };
        let out = Command::new("openssl").args(["dgst", digest, "-sign"]).arg(&self.key).arg(&data).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        message["SignatureVersion"] = json!(version);
        message["Signature"] = json!(STANDARD.encode(out.stdout));
    }

    /// An SNS notification carrying `ses_message`, signed.
    pub fn notification(&self, ses_message: &Value, version: &str) -> Value {
        let mut message = json!({"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events", "Message": ses_message.to_string(),
            "Timestamp": "2026-12-03T10:00:01.000Z", "SigningCertURL": self.cert_url(),
            "UnsubscribeURL": format!("{}unsubscribe?SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:ses-events:1", self.base)});
        self.sign(&mut message, version);
        message
    }

    /// The subscription confirmation SNS posts first, signed.
    pub fn subscription_confirmation(&self, token: &str) -> Value {
        let mut message = json!({"Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "Token": token,
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
            "Message": "You have chosen to subscribe to the topic arn:aws:sns:eu-west-1:123456789012:ses-events.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": format!("{}confirm?Action=ConfirmSubscription&TopicArn=arn:aws:sns:eu-west-1:123456789012:ses-events&Token={token}", self.base),
            "Timestamp": "2026-12-03T10:00:00.000Z", "SigningCertURL": self.cert_url()});
        self.sign(&mut message, "2");
        message
    }
}
