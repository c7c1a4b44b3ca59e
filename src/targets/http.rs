//! The one outbound HTTP client: keep-alive pools per host, no proxies, no redirects, bounded
//! timeouts, and a resolver that only ever hands out addresses the URL policy allows.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::domain::delivery::{AttemptOutcome, ErrorKind, MAX_EXCERPT_BYTES, excerpt, kept_headers, parse_retry_after};
use crate::domain::url_policy::{UrlError, UrlPolicy};

#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub policy: UrlPolicy,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_idle_per_host: usize,
    /// Extra trusted CA certificates (PEM bundle).
    pub extra_ca_pem: Option<Vec<u8>>,
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: std::sync::Arc<HttpSettings>,
}

/// What one target adds to the TLS of its requests (receiver authentication): a client
/// certificate with its key (PEM) and CA certificates trusted for it alone (PEM).
#[derive(Clone, Default)]
pub struct TargetTls {
    pub identity_pem: Option<Vec<u8>>,
    pub ca_pem: Option<Vec<u8>>,
}

/// Why a host name gave no address to connect to.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("DNS lookup of {0} failed: {1}")]
    Dns(String, std::io::Error),
    /// The name, and the first of its addresses (all refused).
    #[error("{0} resolves only to addresses that are not globally reachable (loopback, private, link-local, metadata or reserved)")]
    Blocked(String, IpAddr),
}

impl LookupError {
    pub fn outcome(&self) -> AttemptOutcome {
        let kind = match self {
            Self::Dns(..) => ErrorKind::Dns,
            Self::Blocked(..) => ErrorKind::BlockedAddress,
        };
        AttemptOutcome::Error { kind, message: self.to_string() }
    }
}

/// Resolves `host` with the system resolver and keeps only the addresses the policy allows.
/// Every outbound connection, HTTP or SMTP, is made to an address this returned.
pub async fn resolve_allowed(policy: UrlPolicy, host: &str, port: u16) -> Result<Vec<SocketAddr>, LookupError> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(|e| LookupError::Dns(host.to_owned(), e))?.collect();
    let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| policy.is_allowed_ip(a.ip())).collect();
    match (allowed.is_empty(), found.first()) {
        (true, Some(first)) => Err(LookupError::Blocked(host.to_owned(), first.ip())),
        _ => Ok(allowed),
    }
}

/// Hands the HTTP client only addresses the policy allows.
struct GuardedResolver(UrlPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let allowed = resolve_allowed(policy, name.as_str(), 0).await.map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl HttpClient {
    pub fn new(settings: &HttpSettings) -> anyhow::Result<Self> {
        Self::build(settings, &TargetTls::default())
    }

    /// A client of one target's own, with its TLS additions and every protection of this one
    /// (the guarded resolver, no proxies, no redirects, the timeouts, the answer's cap).
    pub fn for_target(&self, tls: &TargetTls) -> anyhow::Result<Self> {
        Self::build(&self.settings, tls)
    }

    fn build(settings: &HttpSettings, tls: &TargetTls) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder();
        for pem in settings.extra_ca_pem.iter().chain(&tls.ca_pem) {
            for cert in reqwest::Certificate::from_pem_bundle(pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &tls.identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem)?);
        }
        let client = builder
            .user_agent(concat!("Switchyard/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(std::sync::Arc::new(GuardedResolver(settings.policy)))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { client, settings: std::sync::Arc::new(settings.clone()) })
    }

    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }

    /// Re-checks the URL (the policy may be stricter than when it was saved), sends, and
    /// reads at most an excerpt of the answer.
    pub async fn send(&self, url: &Url, request: reqwest::RequestBuilder) -> AttemptOutcome {
        match self.settings.policy.check_url(url.as_str()) {
            Err(e @ UrlError::BlockedAddress(_)) => AttemptOutcome::Error { kind: ErrorKind::BlockedAddress, message: e.to_string() },
            Err(e) => AttemptOutcome::Error { kind: ErrorKind::InvalidUrl, message: e.to_string() },
            Ok(_) => match request.send().await {
                Ok(response) => read_response(response).await,
                Err(e) => classify_error(&e),
            },
        }
    }
}

/// `base` with `path` in place of its path; an attempt error for a base that cannot take one
/// (such a URL comes only from outside: a flag, or a provider's answer).
pub fn with_path(base: &Url, path: &str) -> Result<Url, AttemptOutcome> {
    base.join(path).map_err(|e| AttemptOutcome::Error { kind: ErrorKind::InvalidUrl, message: format!("{base} cannot take the path {path}: {e}") })
}

async fn read_response(mut response: reqwest::Response) -> AttemptOutcome {
    let status = response.status().as_u16();
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| parse_retry_after(v, SystemTime::now()));
    let headers = kept_headers(response.headers().iter().map(|(name, value)| (name.as_str(), value.to_str().unwrap_or("(not text)"))));
    let mut body = Vec::new();
    while body.len() < MAX_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            // The status line decides the outcome; a body cut short only shortens the excerpt.
            Ok(None) | Err(_) => break,
        }
    }
    AttemptOutcome::Response { status, excerpt: excerpt(&body), headers, retry_after }
}

fn classify_error(error: &reqwest::Error) -> AttemptOutcome {
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(lookup) = e.downcast_ref::<LookupError>() {
            return lookup.outcome();
        }
        chain.push(e.to_string());
        source = e.source();
    }
    let message = chain.join(": ");
    let lower = message.to_ascii_lowercase();
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        ErrorKind::Tls
    } else if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Io
    };
    AttemptOutcome::Error { kind, message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn client(policy: UrlPolicy) -> HttpClient {
        HttpClient::new(&HttpSettings {
            policy,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(2),
            max_idle_per_host: 1,
            extra_ca_pem: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_resolver_drops_internal_addresses() {
        let strict = GuardedResolver(UrlPolicy { allow_http: true, allow_private_networks: false });
        let err = strict.resolve(Name::from_str("localhost").unwrap()).await.err().expect("loopback only: refused");
        assert!(matches!(err.downcast_ref::<LookupError>(), Some(LookupError::Blocked(..))), "{err}");
        let relaxed = GuardedResolver(UrlPolicy { allow_http: true, allow_private_networks: true });
        let addrs: Vec<_> = relaxed.resolve(Name::from_str("localhost").unwrap()).await.ok().unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[tokio::test]
    async fn blocked_literals_are_never_contacted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        let strict = client(UrlPolicy { allow_http: true, allow_private_networks: false });
        let outcome = strict.send(&url, strict.request(reqwest::Method::POST, url.clone())).await;
        assert!(matches!(outcome, AttemptOutcome::Error { kind: ErrorKind::BlockedAddress, .. }), "{outcome:?}");
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "no connection was made");
    }

    #[tokio::test]
    async fn connection_failures_are_classified() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        drop(listener); // nothing listens there now
        let relaxed = client(UrlPolicy { allow_http: true, allow_private_networks: true });
        let outcome = relaxed.send(&url, relaxed.request(reqwest::Method::POST, url.clone())).await;
        assert!(matches!(outcome, AttemptOutcome::Error { kind: ErrorKind::Connect, .. }), "{outcome:?}");
        let unresolvable = Url::parse("http://no-such-host.invalid/hook").unwrap();
        let outcome = relaxed.send(&unresolvable, relaxed.request(reqwest::Method::POST, unresolvable.clone())).await;
        assert!(matches!(outcome, AttemptOutcome::Error { kind: ErrorKind::Dns, .. }), "{outcome:?}");
    }
}
