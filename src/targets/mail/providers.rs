//! Request shapes of the HTTP mail providers (../shared/reference/providers.md §3), as pure
//! functions, and how to read their answers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::domain::delivery::{AttemptOutcome, ErrorKind};
use crate::domain::mailer::{Content, Email, MailerProvider};

/// A request to a provider, before the base URL and transport are applied.
#[derive(Debug, PartialEq)]
pub struct ProviderRequest {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

#[derive(Debug, PartialEq)]
pub enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

/// The credentials of a mailer, decrypted.
pub type Credentials = Map<String, Value>;

fn cred<'a>(credentials: &'a Credentials, name: &str) -> &'a str {
    credentials.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

fn mailbox(name: &str, email: &str) -> String {
    if name.is_empty() { email.to_owned() } else { format!("{name} <{email}>") }
}

/// The request that sends `email` through `provider` (SES is signed afterwards); `None` for the
/// SMTP providers, which speak their own protocol. `config` holds the non-secret settings.
pub fn send_request(provider: MailerProvider, config: &Map<String, Value>, credentials: &Credentials, email: &Email) -> Option<ProviderRequest> {
    Some(match provider {
        MailerProvider::Brevo => brevo(credentials, email),
        MailerProvider::Mailgun => mailgun(config, credentials, email),
        MailerProvider::Mailjet => mailjet(credentials, email),
        MailerProvider::Mandrill => mandrill(credentials, email),
        MailerProvider::Sendgrid => sendgrid(credentials, email),
        MailerProvider::AmazonSes => ses(email),
        MailerProvider::Smtp | MailerProvider::Internal => return None,
    })
}

fn brevo(credentials: &Credentials, email: &Email) -> ProviderRequest {
    let mut body = json!({"to": [{"email": email.to}], "sender": {"email": email.from_email, "name": email.from_name}});
    if let Some(bcc) = &email.bcc {
        body["bcc"] = json!([{"email": bcc}]);
    }
    if let Some(reply_to) = &email.reply_to {
        body["replyTo"] = json!({"email": reply_to});
    }
    match &email.content {
        Content::Template { id, params } => {
            body["templateId"] = json!(id.parse::<u64>().unwrap_or_default());
            if !params.is_empty() {
                body["params"] = Value::Object(params.clone());
            }
        }
        Content::Inline { subject, text, html } => {
            body["subject"] = json!(subject);
            if let Some(text) = text {
                body["textContent"] = json!(text);
            }
            if let Some(html) = html {
                body["htmlContent"] = json!(html);
            }
        }
    }
    ProviderRequest {
        method: reqwest::Method::POST,
        path: "/v3/smtp/email".into(),
        headers: vec![("api-key", cred(credentials, "api_key").into()), ("accept", "application/json".into())],
        body: Body::Json(body),
    }
}

fn mailgun(config: &Map<String, Value>, credentials: &Credentials, email: &Email) -> ProviderRequest {
    let domain = config.get("domain").and_then(Value::as_str).unwrap_or_default();
    let mut form = vec![("from".to_owned(), mailbox(&email.from_name, &email.from_email)), ("to".to_owned(), email.to.clone())];
    if let Some(bcc) = &email.bcc {
        form.push(("bcc".into(), bcc.clone()));
    }
    if let Some(reply_to) = &email.reply_to {
        form.push(("h:Reply-To".into(), reply_to.clone()));
    }
    match &email.content {
        Content::Template { id, params } => {
            form.push(("template".into(), id.clone()));
            form.push(("t:variables".into(), Value::Object(params.clone()).to_string()));
        }
        Content::Inline { subject, text, html } => {
            form.push(("subject".into(), subject.clone()));
            form.extend(text.iter().map(|t| ("text".to_owned(), t.clone())));
            form.extend(html.iter().map(|h| ("html".to_owned(), h.clone())));
        }
    }
    ProviderRequest {
        method: reqwest::Method::POST,
        path: format!("/v3/{domain}/messages"),
        headers: vec![("authorization", basic("api", cred(credentials, "api_key")))],
        body: Body::Form(form),
    }
}

fn mailjet(credentials: &Credentials, email: &Email) -> ProviderRequest {
    let mut message = json!({"From": {"Email": email.from_email, "Name": email.from_name}, "To": [{"Email": email.to}]});
    if let Some(bcc) = &email.bcc {
        message["Bcc"] = json!([{"Email": bcc}]);
    }
    if let Some(reply_to) = &email.reply_to {
        message["ReplyTo"] = json!({"Email": reply_to});
    }
    match &email.content {
        Content::Template { id, params } => {
            message["TemplateID"] = json!(id.parse::<u64>().unwrap_or_default());
            message["TemplateLanguage"] = json!(true);
            message["Variables"] = Value::Object(params.clone());
        }
        Content::Inline { subject, text, html } => {
            message["Subject"] = json!(subject);
            if let Some(text) = text {
                message["TextPart"] = json!(text);
            }
            if let Some(html) = html {
                message["HTMLPart"] = json!(html);
            }
        }
    }
    ProviderRequest {
        method: reqwest::Method::POST,
        path: "/v3.1/send".into(),
        headers: vec![("authorization", basic(cred(credentials, "api_key"), cred(credentials, "secret_key")))],
        body: Body::Json(json!({"Messages": [message]})),
    }
}

fn mandrill(credentials: &Credentials, email: &Email) -> ProviderRequest {
    let mut to = vec![json!({"email": email.to, "type": "to"})];
    if let Some(bcc) = &email.bcc {
        to.push(json!({"email": bcc, "type": "bcc"}));
    }
    let mut message = json!({"to": to, "from_email": email.from_email, "from_name": email.from_name});
    if let Some(reply_to) = &email.reply_to {
        message["headers"] = json!({"Reply-To": reply_to});
    }
    let (path, mut body) = match &email.content {
        Content::Template { id, params } => {
            let vars: Vec<Value> = params.iter().map(|(name, content)| json!({"name": name, "content": content})).collect();
            message["merge_language"] = json!("handlebars");
            message["global_merge_vars"] = json!(vars);
            ("/messages/send-template.json", json!({"template_name": id, "template_content": []}))
        }
        Content::Inline { subject, text, html } => {
            message["subject"] = json!(subject);
            if let Some(text) = text {
                message["text"] = json!(text);
            }
            if let Some(html) = html {
                message["html"] = json!(html);
            }
            ("/messages/send.json", json!({}))
        }
    };
    body["key"] = json!(cred(credentials, "api_key"));
    body["message"] = message;
    body["async"] = json!(false);
    ProviderRequest { method: reqwest::Method::POST, path: path.into(), headers: Vec::new(), body: Body::Json(body) }
}

fn sendgrid(credentials: &Credentials, email: &Email) -> ProviderRequest {
    let mut personalization = json!({"to": [{"email": email.to}]});
    if let Some(bcc) = &email.bcc {
        personalization["bcc"] = json!([{"email": bcc}]);
    }
    let mut body = json!({"from": {"email": email.from_email, "name": email.from_name}});
    if let Some(reply_to) = &email.reply_to {
        body["reply_to"] = json!({"email": reply_to});
    }
    match &email.content {
        Content::Template { id, params } => {
            personalization["dynamic_template_data"] = Value::Object(params.clone());
            body["template_id"] = json!(id);
        }
        Content::Inline { subject, text, html } => {
            body["subject"] = json!(subject);
            let parts: Vec<Value> = text
                .iter()
                .map(|t| json!({"type": "text/plain", "value": t}))
                .chain(html.iter().map(|h| json!({"type": "text/html", "value": h})))
                .collect();
            body["content"] = json!(parts);
        }
    }
    body["personalizations"] = json!([personalization]);
    ProviderRequest {
        method: reqwest::Method::POST,
        path: "/v3/mail/send".into(),
        headers: vec![("authorization", format!("Bearer {}", cred(credentials, "api_key")))],
        body: Body::Json(body),
    }
}

fn ses(email: &Email) -> ProviderRequest {
    let mut destination = json!({"ToAddresses": [email.to]});
    if let Some(bcc) = &email.bcc {
        destination["BccAddresses"] = json!([bcc]);
    }
    let content = match &email.content {
        Content::Template { id, params } => {
            json!({"Template": {"TemplateName": id, "TemplateData": Value::Object(params.clone()).to_string()}})
        }
        Content::Inline { subject, text, html } => {
            let mut body = Map::new();
            if let Some(text) = text {
                body.insert("Text".into(), json!({"Data": text}));
            }
            if let Some(html) = html {
                body.insert("Html".into(), json!({"Data": html}));
            }
            json!({"Simple": {"Subject": {"Data": subject}, "Body": body}})
        }
    };
    let mut body = json!({"FromEmailAddress": mailbox(&email.from_name, &email.from_email), "Destination": destination, "Content": content});
    if let Some(reply_to) = &email.reply_to {
        body["ReplyToAddresses"] = json!([reply_to]);
    }
    ProviderRequest { method: reqwest::Method::POST, path: "/v2/email/outbound-emails".into(), headers: Vec::new(), body: Body::Json(body) }
}

/// Some providers answer 200 while refusing the message, or 500 for a bad key: read the body.
pub fn interpret(provider: MailerProvider, outcome: AttemptOutcome) -> AttemptOutcome {
    let AttemptOutcome::Response { status, excerpt, .. } = &outcome else { return outcome };
    let body: Value = serde_json::from_str(excerpt).unwrap_or_default();
    let refused = |why: String| AttemptOutcome::Error { kind: ErrorKind::Rejected, message: why };
    match provider {
        MailerProvider::Mailjet if (200..300).contains(status) => {
            let failed = body["Messages"].as_array().is_some_and(|m| m.iter().any(|m| m["Status"] != "success"));
            if failed { refused(format!("Mailjet refused the message: {excerpt}")) } else { outcome }
        }
        MailerProvider::Mandrill if body["status"] == "error" => match body["name"].as_str() {
            Some("GeneralError") | None => outcome,
            Some(name) => refused(format!("Mandrill refused the message ({name}): {}", body["message"].as_str().unwrap_or(excerpt))),
        },
        MailerProvider::Mandrill if (200..300).contains(status) => {
            let rejected = body.as_array().and_then(|r| r.iter().find(|r| matches!(r["status"].as_str(), Some("rejected" | "invalid"))).cloned());
            match rejected {
                Some(r) => AttemptOutcome::Error {
                    kind: ErrorKind::Recipient,
                    message: format!("Mandrill rejected {} ({})", r["email"], r["reject_reason"]),
                },
                None => outcome,
            }
        }
        _ => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(content: Content) -> Email {
        Email {
            from_name: "Brand".into(),
            from_email: "noreply@example.com".into(),
            reply_to: None,
            to: "jane@example.com".into(),
            bcc: Some("archive@example.com".into()),
            content,
        }
    }

    fn template() -> Content {
        Content::Template { id: "12".into(), params: json!({"FIRSTNAME": "Jane"}).as_object().unwrap().clone() }
    }

    fn creds(v: Value) -> Credentials {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn brevo_template_send() {
        let req = send_request(MailerProvider::Brevo, &Map::new(), &creds(json!({"api_key": "xkeysib-1"})), &email(template())).unwrap();
        assert_eq!(req.path, "/v3/smtp/email");
        assert!(req.headers.contains(&("api-key", "xkeysib-1".into())));
        assert_eq!(
            req.body,
            Body::Json(json!({"to": [{"email": "jane@example.com"}], "sender": {"email": "noreply@example.com", "name": "Brand"},
                "bcc": [{"email": "archive@example.com"}], "templateId": 12, "params": {"FIRSTNAME": "Jane"}}))
        );
    }

    #[test]
    fn mailgun_is_a_form_with_template_variables() {
        let config = json!({"domain": "mg.example.com", "region": "eu"}).as_object().unwrap().clone();
        let req = send_request(MailerProvider::Mailgun, &config, &creds(json!({"api_key": "key-1"})), &email(template())).unwrap();
        assert_eq!(req.path, "/v3/mg.example.com/messages");
        assert!(req.headers.contains(&("authorization", format!("Basic {}", STANDARD.encode("api:key-1")))));
        let Body::Form(form) = req.body else { panic!("form expected") };
        assert!(form.contains(&("t:variables".into(), r#"{"FIRSTNAME":"Jane"}"#.into())));
        assert!(form.contains(&("bcc".into(), "archive@example.com".into())));
        assert!(form.contains(&("from".into(), "Brand <noreply@example.com>".into())));
    }

    #[test]
    fn sendgrid_puts_template_data_per_personalization() {
        let req = send_request(MailerProvider::Sendgrid, &Map::new(), &creds(json!({"api_key": "SG.x"})), &email(template())).unwrap();
        let Body::Json(body) = req.body else { panic!() };
        assert_eq!(body["personalizations"][0]["dynamic_template_data"], json!({"FIRSTNAME": "Jane"}));
        assert_eq!(body["personalizations"][0]["bcc"], json!([{"email": "archive@example.com"}]));
        assert_eq!(body["template_id"], "12");
    }

    #[test]
    fn mandrill_key_travels_in_the_body() {
        let req = send_request(MailerProvider::Mandrill, &Map::new(), &creds(json!({"api_key": "md-1"})), &email(template())).unwrap();
        assert_eq!(req.path, "/messages/send-template.json");
        let Body::Json(body) = req.body else { panic!() };
        assert_eq!(body["key"], "md-1");
        assert_eq!(body["template_content"], json!([]));
        assert_eq!(body["message"]["global_merge_vars"], json!([{"name": "FIRSTNAME", "content": "Jane"}]));
    }

    #[test]
    fn ses_template_data_is_a_json_string() {
        let req = send_request(MailerProvider::AmazonSes, &Map::new(), &Map::new(), &email(template())).unwrap();
        let Body::Json(body) = req.body else { panic!() };
        assert_eq!(body["Content"]["Template"]["TemplateData"], r#"{"FIRSTNAME":"Jane"}"#);
        assert_eq!(body["Destination"]["BccAddresses"], json!(["archive@example.com"]));
    }

    #[test]
    fn refusals_hidden_in_successful_answers_are_found() {
        let ok = |status, body: Value| AttemptOutcome::Response { status, excerpt: body.to_string(), headers: Vec::new(), retry_after: None };
        let mailjet = interpret(MailerProvider::Mailjet, ok(200, json!({"Messages": [{"Status": "error"}]})));
        assert!(matches!(mailjet, AttemptOutcome::Error { kind: ErrorKind::Rejected, .. }));
        let key = interpret(MailerProvider::Mandrill, ok(500, json!({"status": "error", "name": "Invalid_Key", "message": "Invalid API key"})));
        assert!(matches!(key, AttemptOutcome::Error { kind: ErrorKind::Rejected, ref message } if message.contains("Invalid_Key")));
        let general = interpret(MailerProvider::Mandrill, ok(500, json!({"status": "error", "name": "GeneralError"})));
        assert!(matches!(general, AttemptOutcome::Response { status: 500, .. }), "retried");
        let rejected =
            interpret(MailerProvider::Mandrill, ok(200, json!([{"email": "a@b.c", "status": "rejected", "reject_reason": "hard-bounce"}])));
        assert!(matches!(rejected, AttemptOutcome::Error { kind: ErrorKind::Recipient, .. }));
        assert!(matches!(interpret(MailerProvider::Brevo, ok(201, json!({}))), AttemptOutcome::Response { status: 201, .. }));
    }
}
