//! SMTP mailers and the built-in relay, through lettre: STARTTLS (587), implicit TLS (465) or
//! plaintext for local relays; AUTH when a login is set.

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::domain::delivery::{AttemptOutcome, ErrorKind};
use crate::domain::mailer::{Content, Email, SmtpSecurity};
use crate::domain::url_policy::{UrlError, UrlPolicy};
use crate::targets::http::resolve_allowed;
use crate::targets::{Header, SentRequest};
use url::Host;

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

/// The addresses the server may be reached at: its literal address, or what its name resolves
/// to, minus what the policy refuses (the rule of every outbound connection).
async fn allowed_addrs(settings: &SmtpSettings, server: &SmtpServer) -> Result<Vec<IpAddr>, AttemptOutcome> {
    let host = settings.policy.check_host(&server.host).map_err(|e| match e {
        UrlError::BlockedAddress(_) => error(ErrorKind::BlockedAddress, format!("SMTP host: {e}")),
        other => error(ErrorKind::InvalidUrl, format!("SMTP host: {other}")),
    })?;
    Ok(match host {
        Host::Ipv4(ip) => vec![ip.into()],
        Host::Ipv6(ip) => vec![ip.into()],
        Host::Domain(name) => resolve_allowed(settings.policy, &name, server.port).await.map_err(|e| e.outcome())?.iter().map(|a| a.ip()).collect(),
    })
}

/// A transport to `address`: lettre connects to the address given, never resolving the name
/// again, while TLS still verifies the certificate against the server's name.
fn transport(settings: &SmtpSettings, server: &SmtpServer, address: IpAddr) -> Result<AsyncSmtpTransport<Tokio1Executor>, AttemptOutcome> {
    let tls = || {
        let mut builder = TlsParameters::builder(server.host.clone());
        if let Some(pem) = &settings.extra_ca_pem {
            let cert = Certificate::from_pem(pem).map_err(|e| error(ErrorKind::Tls, format!("extra CA certificate: {e}")))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build_rustls().map_err(|e| error(ErrorKind::Tls, e.to_string()))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.to_string()).port(server.port).timeout(Some(settings.timeout));
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

/// Sends one message through the first allowed address that takes a connection. A 2xx reply is
/// reported as that code; 4xx replies are retried, 5xx fail.
pub async fn send(settings: &SmtpSettings, server: &SmtpServer, email: &Email) -> AttemptOutcome {
    let attempt = async {
        let message = message(email)?;
        let mut refused = None;
        for address in allowed_addrs(settings, server).await? {
            match transport(settings, server, address)?.send(message.clone()).await {
                Err(e) if connection_refused(&e) => refused = Some(e),
                sent => return sent.map_err(|e| classify(&e)),
            }
        }
        Err(refused.map_or_else(|| error(ErrorKind::Connect, "no address to connect to"), |e| classify(&e)))
    };
    match attempt.await {
        Ok(response) => AttemptOutcome::Response {
            status: u16::from(response.code()),
            excerpt: response.message().collect::<Vec<_>>().join(" "),
            headers: Vec::new(),
            retry_after: None,
        },
        Err(outcome) => outcome,
    }
}

/// The SMTP transaction that sends `email`, as the delivery log shows it: the envelope's sender
/// and recipients (the BCC is one of them) as headers, the message as its body. The password
/// is never part of it.
pub fn describe(server: &SmtpServer, email: &Email) -> Result<SentRequest, AttemptOutcome> {
    let message = message(email)?;
    let envelope = message.envelope();
    let scheme = if server.security == SmtpSecurity::Tls { "smtps" } else { "smtp" };
    let sender = envelope.from().map(ToString::to_string).unwrap_or_default();
    let headers = std::iter::once(("MAIL FROM", sender))
        .chain(envelope.to().iter().map(|to| ("RCPT TO", to.to_string())))
        .map(|(name, value)| Header { name: name.to_owned(), value })
        .collect();
    Ok(SentRequest {
        method: "SMTP".into(),
        url: format!("{scheme}://{}:{}", server.host, server.port),
        headers,
        body: String::from_utf8_lossy(&message.formatted()).into_owned(),
    })
}

/// Whether no connection could be opened (so nothing was sent and the next address may be tried).
fn connection_refused(e: &lettre::transport::smtp::Error) -> bool {
    use std::io::ErrorKind::{AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable};
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return matches!(io.kind(), ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable);
        }
        source = inner.source();
    }
    false
}

fn classify(e: &lettre::transport::smtp::Error) -> AttemptOutcome {
    let message = match e.status() {
        Some(code) => format!("SMTP {code}: {e}"),
        None => e.to_string(),
    };
    // 550, 551 and 553: the mailbox is refused, which no other server would accept either.
    let mailbox_refused = e.status().is_some_and(|code| matches!(code.to_string().as_str(), "550" | "551" | "553"));
    let kind = if e.is_permanent() && mailbox_refused {
        ErrorKind::Recipient
    } else if e.is_permanent() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        Email {
            from_name: String::new(),
            from_email: "noreply@example.com".into(),
            reply_to: None,
            to: "jane@example.com".into(),
            bcc: None,
            content: Content::Inline { subject: "s".into(), text: Some("t".into()), html: None },
        }
    }

    #[tokio::test]
    async fn internal_addresses_are_never_connected_to() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let settings = SmtpSettings { policy: UrlPolicy::default(), timeout: Duration::from_secs(2), extra_ca_pem: None };
        for host in ["127.0.0.1", "0x7f.1", "::ffff:127.0.0.1", "[::127.0.0.1]", "localhost", "localhost."] {
            let server = SmtpServer { host: host.into(), port, security: SmtpSecurity::None, login: None, password: None };
            let outcome = send(&settings, &server, &email()).await;
            assert!(matches!(outcome, AttemptOutcome::Error { kind: ErrorKind::BlockedAddress, .. }), "{host}: {outcome:?}");
        }
        let accepted = listener.accept();
        assert!(matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "a connection was made: {accepted:?}");
    }

    #[tokio::test]
    async fn names_are_resolved_once_and_the_allowed_addresses_tried_in_turn() {
        let relaxed = SmtpSettings {
            policy: UrlPolicy { allow_http: false, allow_private_networks: true },
            timeout: Duration::from_secs(2),
            extra_ca_pem: None,
        };
        let server = SmtpServer { host: "localhost".into(), port: 25, security: SmtpSecurity::None, login: None, password: None };
        let addrs = allowed_addrs(&relaxed, &server).await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback), "{addrs:?}");
        let strict = SmtpSettings { policy: UrlPolicy::default(), ..relaxed };
        assert!(allowed_addrs(&strict, &server).await.is_err());
    }

    #[test]
    fn a_described_transaction_names_every_recipient_and_no_password() {
        let server = SmtpServer {
            host: "smtp.example.com".into(),
            port: 465,
            security: SmtpSecurity::Tls,
            login: Some("u".into()),
            password: Some("pw-42".into()),
        };
        let described = describe(&server, &Email { bcc: Some("archive@example.com".into()), ..email() }).unwrap();
        assert_eq!((described.method.as_str(), described.url.as_str()), ("SMTP", "smtps://smtp.example.com:465"));
        let headers: Vec<(&str, &str)> = described.headers.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(headers, [("MAIL FROM", "noreply@example.com"), ("RCPT TO", "jane@example.com"), ("RCPT TO", "archive@example.com")]);
        assert!(described.body.contains("Subject: s") && !described.body.contains("pw-42"), "{}", described.body);
    }
}
