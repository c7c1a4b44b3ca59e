//! The way from a target to its receiver (webhook endpoints, Custom APIs, query destinations):
//! the HTTP client (one of the target's own when it presents a client certificate or trusts a CA
//! of its own), the static headers of its receiver authentication, and its OAuth token client.

use reqwest::header::{HeaderName, HeaderValue};
use url::Url;

use super::http::{HttpClient, TargetTls};
use super::oauth::{TokenCache, TokenClient};
use super::{MASKED, ResolveError, SentRequest};
use crate::domain::delivery::AttemptOutcome;
use crate::domain::ids::TargetId;
use crate::domain::receiver_auth::{AuthSecrets, OAuth2Settings, ReceiverAuth, token_form};
use crate::traces;

#[derive(Clone)]
pub struct Receiver {
    http: HttpClient,
    headers: Vec<(HeaderName, HeaderValue)>,
    oauth: Option<TokenClient>,
    /// Requests made within an attempt carry its span's `traceparent`.
    propagate_trace: bool,
}

impl Receiver {
    /// A receiver that asks for no authentication.
    pub fn open(http: HttpClient) -> Self {
        Self { http, headers: Vec::new(), oauth: None, propagate_trace: false }
    }

    /// The receiver of `target` with its authentication (settings and opened secrets).
    pub fn new(target: TargetId, auth: &ReceiverAuth, secrets: &AuthSecrets, http: &HttpClient, tokens: &TokenCache) -> Result<Self, ResolveError> {
        let http = if auth.needs_own_tls() { http.for_target(&tls(auth, secrets)).map_err(|e| config(e.to_string()))? } else { http.clone() };
        let oauth = auth.oauth2.as_ref().map(|o| token_client(target, o, secrets, &http, tokens)).transpose()?;
        Ok(Self { headers: static_headers(auth, secrets)?, http, oauth, propagate_trace: false })
    }

    /// The same receiver, its requests carrying the attempt's trace context when `on`.
    pub fn propagating_trace(self, on: bool) -> Self {
        Self { propagate_trace: on, ..self }
    }

    /// A request with the static headers, and the attempt's `traceparent` when the target
    /// propagates it and the attempt is traced.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self.headers.iter().fold(self.http.request(method, url), |request, (name, value)| request.header(name.clone(), value.clone()));
        match self.propagate_trace.then(traces::current_traceparent).flatten() {
            Some(traceparent) => request.header(traces::TRACEPARENT, traceparent),
            None => request,
        }
    }

    /// Sends what `build` makes (`request` plus its body), with a token when the receiver asks
    /// for OAuth 2.0 (renewed once on a 401).
    pub async fn send(&self, build: impl Fn() -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome>) -> AttemptOutcome {
        match &self.oauth {
            Some(tokens) => tokens.send(&self.http, |_| build()).await,
            None => match build() {
                Ok((url, request)) => self.http.send(&url, request).await,
                Err(outcome) => outcome,
            },
        }
    }

    /// The request as the delivery log shows it: the token it would carry masked like every
    /// credential, and the `traceparent` of a traced event's attempts (`traces::shown_traceparent`)
    /// when the target propagates it.
    pub fn describe(&self, request: reqwest::RequestBuilder, event_traceparent: Option<&str>) -> Result<SentRequest, AttemptOutcome> {
        let request = if self.oauth.is_some() { request.bearer_auth(MASKED) } else { request };
        SentRequest::of(match event_traceparent.filter(|_| self.propagate_trace).and_then(traces::shown_traceparent) {
            Some(shown) => request.header(traces::TRACEPARENT, shown),
            None => request,
        })
    }
}

fn config(what: String) -> ResolveError {
    ResolveError::Config(format!("receiver authentication: {what}"))
}

/// The static headers, sensitive values marked so (the delivery log masks them).
fn static_headers(auth: &ReceiverAuth, secrets: &AuthSecrets) -> Result<Vec<(HeaderName, HeaderValue)>, ResolveError> {
    auth.headers
        .iter()
        .map(|h| {
            let value = if h.sensitive { secrets.headers.get(&h.name.to_ascii_lowercase()) } else { h.value.as_ref() };
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| config(e.to_string()))?;
            let mut value = HeaderValue::from_str(value.map(String::as_str).unwrap_or_default()).map_err(|e| config(e.to_string()))?;
            value.set_sensitive(h.sensitive);
            Ok((name, value))
        })
        .collect()
}

/// The target's token client, asking over the target's own client (a token endpoint may want its
/// client certificate too).
fn token_client(
    target: TargetId,
    o: &OAuth2Settings,
    secrets: &AuthSecrets,
    http: &HttpClient,
    tokens: &TokenCache,
) -> Result<TokenClient, ResolveError> {
    let url = Url::parse(&o.token_url).map_err(|e| config(format!("token_url: {e}")))?;
    let form = token_form(&o.client_id, secrets.client_secret.as_deref().unwrap_or_default(), o.scope.as_deref(), o.audience.as_deref());
    Ok(TokenClient::new(target, url, form, http.clone(), tokens.clone()))
}

/// The client certificate (certificate then key, one PEM) and CAs of a receiver's authentication.
fn tls(auth: &ReceiverAuth, secrets: &AuthSecrets) -> TargetTls {
    let identity =
        auth.client_certificate.as_ref().map(|c| format!("{}\n{}", c.certificate_pem, secrets.private_key_pem.as_deref().unwrap_or_default()));
    TargetTls { identity_pem: identity.map(String::into_bytes), ca_pem: auth.ca_certificate_pem.clone().map(String::into_bytes) }
}
