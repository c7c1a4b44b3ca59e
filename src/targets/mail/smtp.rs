//! SMTP mailers and the built-in relay, through lettre: STARTTLS (587), implicit TLS (465) or
//! plaintext for local relays; AUTH when a login is set.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::delivery::{AttemptOutcome, ErrorKind};
use crate::domain::mailer::{Content, Email, SmtpSecurity};
use crate::domain::url_policy::UrlPolicy;

#[derive(Clone, Debug)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub login: Option<String>,
    pub password: Option<String>,
}

/// Connection settings shared by every SMTP send of this process.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub policy: UrlPolicy,
    pub timeout: Duration,
    /// Extra trusted CA certificates (PEM), e.g. a private relay's.
    pub extra_ca_pem: Option<Vec<u8>>,
}

fn error(kind: ErrorKind, message: impl Into<String>) -> AttemptOutcome {
    AttemptOutcome::Error { kind, message: message.into() }
}

fn mailbox(name: &str, address: &str) -> Result<Mailbox, AttemptOutcome> {
    let address = address.parse().map_err(|e| error(ErrorKind::InvalidData, format!("'{address}' is not an e-mail address: {e}")))?;
    Ok(Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address))
}

fn message(email: &Email) -> Result<Message, AttemptOutcome> {
    let Content::Inline { subject, text, html } = &email.content else {
        return Err(error(ErrorKind::InvalidData, "SMTP has no stored templates: use an inline template"));
    };
    let mut builder = Message::builder().from(mailbox(&email.from_name, &email.from_email)?).to(mailbox("", &email.to)?).subject(subject);
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(mailbox("", reply_to)?);
    }
    if let Some(bcc) = &email.bcc {
        builder = builder.bcc(mailbox("", bcc)?);
    }
    let built = match (text, html) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(text.clone(), html.clone())),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.clone())),
        (text, None) => builder.singlepart(SinglePart::plain(text.clone().unwrap_or_default())),
    };
    built.map_err(|e| error(ErrorKind::InvalidData, format!("the message could not be built: {e}")))
}

/// Refuses servers that resolve only to internal addresses (same policy as HTTP targets).
async fn check_host(settings: &SmtpSettings, server: &SmtpServer) -> Result<(), AttemptOutcome> {
    if settings.policy.allow_private_networks {
        return Ok(());
    }
    let addrs: Vec<_> = tokio::net::lookup_host((server.host.as_str(), server.port))
        .await
        .map_err(|e| error(ErrorKind::Dns, format!("DNS lookup of {} failed: {e}", server.host)))?
        .collect();
    if addrs.iter().any(|a| !settings.policy.is_allowed_ip(a.ip())) {
        return Err(error(ErrorKind::BlockedAddress, format!("{} resolves to a loopback, private or link-local address", server.host)));
    }
    Ok(())
}

fn transport(settings: &SmtpSettings, server: &SmtpServer) -> Result<AsyncSmtpTransport<Tokio1Executor>, AttemptOutcome> {
    let tls = || {
        let mut builder = TlsParameters::builder(server.host.clone());
        if let Some(pem) = &settings.extra_ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| error(ErrorKind::Tls, format!("extra CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build_rustls().map_err(|e| error(ErrorKind::Tls, e.to_string()))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone()).port(server.port).timeout(Some(settings.timeout));
    builder = match server.security {
        // Required, not opportunistic: a server that does not offer STARTTLS gets no password.
        SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        SmtpSecurity::None => builder.tls(Tls::None),
    };
    if let Some(login) = server.login.as_deref().filter(|l| !l.is_empty()) {
        builder = builder.credentials(Credentials::new(login.to_owned(), server.password.clone().unwrap_or_default()));
    }
    Ok(builder.build())
}

/// Sends one message. A 2xx reply is reported as that code; 4xx replies are retried, 5xx fail.
pub async fn send(settings: &SmtpSettings, server: &SmtpServer, email: &Email) -> AttemptOutcome {
    let attempt = async {
        let message = message(email)?;
        check_host(settings, server).await?;
        let transport = transport(settings, server)?;
        transport.send(message).await.map_err(|e| classify(&e))
    };
    match attempt.await {
        Ok(response) => AttemptOutcome::Response {
            status: u16::from(response.code()),
            excerpt: response.message().collect::<Vec<_>>().join(" "),
            retry_after: None,
        },
        Err(outcome) => outcome,
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> AttemptOutcome {
    let message = match e.status() {
        Some(code) => format!("SMTP {code}: {e}"),
        None => e.to_string(),
    };
    let kind = if e.is_permanent() {
        ErrorKind::Rejected
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_tls() {
        ErrorKind::Tls
    } else if e.is_transient() {
        ErrorKind::Io
    } else {
        ErrorKind::Connect
    };
    error(kind, message)
}
