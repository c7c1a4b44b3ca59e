//! OAuth 2.0 client credentials, the one token client of every target that needs a token
//! (receiver authentication's `oauth2`, Salesforce): tokens cached per target until their stated
//! expiry (less a margin) or, when they state none, until a 401; one refresh at a time per target;
//! a request refused with 401 is sent once more with a fresh token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::http::HttpClient;
use crate::domain::delivery::{AttemptOutcome, ErrorKind};
use crate::domain::ids::TargetId;
use crate::domain::receiver_auth::token_expires_at;
use crate::domain::time::{Millis, now_ms};

/// A token, with the rest of the answer it came in (Salesforce's `instance_url`).
#[derive(Clone, Debug)]
pub struct Token {
    pub access_token: String,
    /// `None`: used until a 401 says it expired.
    expires_at: Option<Millis>,
    pub answer: Arc<Map<String, Value>>,
    /// Which token request it answered: changed credentials must not reuse it.
    credentials: [u8; 32],
}

/// Tokens by target; one refresh at a time per target.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<HashMap<TargetId, TokenSlot>>>);

/// One target's token; its lock is held while the token is refreshed.
type TokenSlot = Arc<tokio::sync::Mutex<Option<Token>>>;

impl TokenCache {
    fn slot(&self, target: TargetId) -> TokenSlot {
        self.0.lock().expect("lock is never poisoned").entry(target).or_default().clone()
    }
}

/// The token requests of one target.
#[derive(Clone)]
pub struct TokenClient {
    target: TargetId,
    url: Url,
    form: Vec<(&'static str, String)>,
    credentials: [u8; 32],
    http: HttpClient,
    cache: TokenCache,
}

impl TokenClient {
    /// Tokens for `target` from `url`, asked for with `form` (`domain::receiver_auth::token_form`).
    pub fn new(target: TargetId, url: Url, form: Vec<(&'static str, String)>, http: HttpClient, cache: TokenCache) -> Self {
        let mut digest = Sha256::new();
        digest.update(url.as_str());
        for (name, value) in &form {
            digest.update(format!("\n{name}={value}"));
        }
        Self { target, url, form, credentials: digest.finalize().into(), http, cache }
    }

    /// The cached token, or a new one when there is none, it expired, or it is `stale` (the one
    /// a receiver just refused).
    pub async fn token(&self, stale: Option<&str>) -> Result<Token, AttemptOutcome> {
        let slot = self.cache.slot(self.target);
        let mut cached = slot.lock().await;
        let now = now_ms();
        if let Some(token) = cached.as_ref()
            && token.credentials == self.credentials
            && Some(token.access_token.as_str()) != stale
            && token.expires_at.is_none_or(|at| now < at)
        {
            return Ok(token.clone());
        }
        let token = self.fetch().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Asks for a new token (not cached: see `remember`). Any answer but a 200 with an
    /// `access_token` is the outcome to report.
    pub async fn fetch(&self) -> Result<Token, AttemptOutcome> {
        let request = self.http.request(reqwest::Method::POST, self.url.clone()).form(&self.form);
        match self.http.send(&self.url, request).await {
            AttemptOutcome::Response { status: 200, excerpt, .. } => {
                let answer: Map<String, Value> = serde_json::from_str(&excerpt).unwrap_or_default();
                let access_token = answer.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
                    AttemptOutcome::Error { kind: ErrorKind::InvalidData, message: format!("the token response lacks access_token: {excerpt}") }
                })?;
                Ok(Token {
                    access_token: access_token.to_owned(),
                    expires_at: token_expires_at(now_ms(), answer.get("expires_in")),
                    credentials: self.credentials,
                    answer: Arc::new(answer),
                })
            }
            other => Err(other),
        }
    }

    /// The token cached now for these credentials, if any (and not being refreshed), expired
    /// or not: what the delivery log shows requests with.
    pub fn cached(&self) -> Option<Token> {
        let slot = self.cache.slot(self.target);
        let cached = slot.try_lock().ok()?;
        cached.as_ref().filter(|token| token.credentials == self.credentials).cloned()
    }

    /// Caches a token fetched outside `token` (a verification's).
    pub async fn remember(&self, token: Token) {
        *self.cache.slot(self.target).lock().await = Some(token);
    }

    /// Sends the request `build` makes with a token; on a 401, renews the token once and sends
    /// once more.
    pub async fn send(&self, http: &HttpClient, build: impl Fn(&Token) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome>) -> AttemptOutcome {
        let token = match self.token(None).await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        match send_with(http, &build, &token).await {
            AttemptOutcome::Response { status: 401, .. } => match self.token(Some(&token.access_token)).await {
                Ok(fresh) => send_with(http, &build, &fresh).await,
                Err(outcome) => outcome,
            },
            other => other,
        }
    }
}

async fn send_with(
    http: &HttpClient,
    build: &impl Fn(&Token) -> Result<(Url, reqwest::RequestBuilder), AttemptOutcome>,
    token: &Token,
) -> AttemptOutcome {
    match build(token) {
        Ok((url, request)) => http.send(&url, request.bearer_auth(&token.access_token)).await,
        Err(outcome) => outcome,
    }
}
