//! Deliveries, attempts, and the verdict on each attempt.

use std::time::Duration;

use uuid::Uuid;

use super::fanout::{TargetKind, TargetRef};
use super::ids::{AccountId, DeliveryId, EventId, TargetId};
use super::retry::RetrySchedule;
use super::time::Millis;
use super::window::Window;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Why an attempt got no HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    BlockedAddress,
    InvalidUrl,
    Io,
    TargetGone,
    /// The event lacks what the target needs (e.g. no e-mail for a HubSpot contact): retrying cannot help.
    InvalidData,
    /// The provider refused the message for good (e.g. SMTP 5xx, a bad key).
    Rejected,
    /// The recipient cannot be sent to: refused by the provider (SMTP 550, Mandrill "rejected"),
    /// or on the account's suppression list. Neither a retry nor another provider can help.
    Recipient,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Timeout => "timeout",
            Self::BlockedAddress => "blocked_address",
            Self::InvalidUrl => "invalid_url",
            Self::Io => "io",
            Self::TargetGone => "target_gone",
            Self::InvalidData => "invalid_data",
            Self::Rejected => "rejected",
            Self::Recipient => "recipient",
            Self::Internal => "internal",
        }
    }

    pub const ALL: [Self; 12] = [
        Self::Dns,
        Self::Connect,
        Self::Tls,
        Self::Timeout,
        Self::BlockedAddress,
        Self::InvalidUrl,
        Self::Io,
        Self::TargetGone,
        Self::InvalidData,
        Self::Rejected,
        Self::Recipient,
        Self::Internal,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// What the kind means, in plain words.
    pub fn plain_words(self) -> &'static str {
        match self {
            Self::Dns => "The host name could not be resolved (DNS)",
            Self::Connect => "No connection could be made",
            Self::Tls => "The TLS (HTTPS) handshake failed",
            Self::Timeout => "The request timed out",
            Self::BlockedAddress => "The address is not allowed (loopback, private or metadata network)",
            Self::InvalidUrl => "The URL is not valid",
            Self::Io => "The connection failed",
            Self::TargetGone => "The target no longer exists",
            Self::InvalidData => "The data was refused",
            Self::Rejected => "The provider refused it",
            Self::Recipient => "The recipient address cannot be sent to",
            Self::Internal => "An internal error occurred",
        }
    }
}

/// Longest response excerpt kept per attempt.
pub const MAX_EXCERPT_BYTES: usize = 4096;

/// Most response headers kept per attempt, and the longest value kept of each.
pub const MAX_HEADERS: usize = 24;
pub const MAX_HEADER_VALUE: usize = 256;
/// Headers whose values are credentials: kept by name only.
const SECRET_HEADERS: [&str; 4] = ["set-cookie", "authorization", "proxy-authorization", "cookie"];

/// The response headers an attempt keeps, for the delivery log: the first `MAX_HEADERS`, each
/// value cut to `MAX_HEADER_VALUE` characters, credentials masked.
pub fn kept_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .take(MAX_HEADERS)
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let value = if SECRET_HEADERS.contains(&name.as_str()) { "[masked]".to_owned() } else { value.chars().take(MAX_HEADER_VALUE).collect() };
            (name, value)
        })
        .collect()
}

/// What one attempt produced.
#[derive(Clone, Debug, PartialEq)]
pub enum AttemptOutcome {
    /// `headers`: as `kept_headers` keeps them.
    Response {
        status: u16,
        excerpt: String,
        headers: Vec<(String, String)>,
        retry_after: Option<Duration>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl AttemptOutcome {
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Response { status, .. } => Some(*status),
            Self::Error { .. } => None,
        }
    }
}

/// How a kind of target treats failures (DESIGN.md, "Delivery guarantees").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Webhook endpoints, Custom APIs, query destinations: receivers misconfigure and then fix
    /// things, so every non-2xx outcome is retried.
    RetryAll,
    /// SaaS APIs: a 4xx other than 408/429 is a data or configuration error and fails at once.
    FailFastOn4xx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    RetryAt(Millis),
    Failed,
}

impl Verdict {
    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::Delivered => DeliveryStatus::Delivered,
            Self::RetryAt(_) => DeliveryStatus::Pending,
            Self::Failed => DeliveryStatus::Failed,
        }
    }
}

/// Decides what happens after an attempt. `attempts_made` includes the one just judged.
pub fn judge(
    outcome: &AttemptOutcome,
    policy: FailurePolicy,
    attempts_made: u32,
    schedule: &RetrySchedule,
    now: Millis,
    unit_random: f64,
) -> Verdict {
    let retry_after = match outcome {
        AttemptOutcome::Response { status, .. } if (200..300).contains(status) => return Verdict::Delivered,
        // Gone is the receiver saying it will never accept again (the target is switched off too).
        AttemptOutcome::Response { status: 410, .. } => return Verdict::Failed,
        AttemptOutcome::Response { status, .. }
            if policy == FailurePolicy::FailFastOn4xx && (400..500).contains(status) && *status != 408 && *status != 429 =>
        {
            return Verdict::Failed;
        }
        AttemptOutcome::Error { kind: ErrorKind::TargetGone | ErrorKind::InvalidData | ErrorKind::Rejected | ErrorKind::Recipient, .. } => {
            return Verdict::Failed;
        }
        AttemptOutcome::Response { retry_after, .. } => *retry_after,
        AttemptOutcome::Error { .. } => None,
    };
    match schedule.next_delay(attempts_made, retry_after, unit_random) {
        Some(wait) => Verdict::RetryAt(now + wait.as_millis() as Millis),
        None => Verdict::Failed,
    }
}

/// Says in plain words what an outcome means, for Verify Connection.
pub fn explain(outcome: &AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Response { status, .. } if (200..300).contains(status) => format!("Connected: the endpoint answered HTTP {status}."),
        AttemptOutcome::Response { status: 401, .. } => "HTTP 401 Unauthorized: the credentials were refused.".into(),
        AttemptOutcome::Response { status: 403, .. } => "HTTP 403 Forbidden: the credentials lack a permission.".into(),
        AttemptOutcome::Response { status: 404, .. } => "HTTP 404 Not Found: check the URL.".into(),
        AttemptOutcome::Response { status, .. } if (300..400).contains(status) => {
            format!("HTTP {status}: the endpoint redirects, and redirects are not followed; use the final URL.")
        }
        AttemptOutcome::Response { status, .. } => format!("The endpoint answered HTTP {status}."),
        AttemptOutcome::Error { kind, message } => format!("{}: {message}", kind.plain_words()),
    }
}

/// Parses `Retry-After` as delta-seconds or an HTTP date, relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Cuts a response body to at most `MAX_EXCERPT_BYTES`, on a character boundary.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_EXCERPT_BYTES)]);
    let mut end = text.len().min(MAX_EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub account_id: AccountId,
    pub event_id: EventId,
    pub target: TargetRef,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Millis,
    pub http_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub completed_at: Option<Millis>,
    /// When retention deleted its payload (the event's data, its params, its response excerpts).
    pub payload_expired_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: Uuid,
    pub delivery_id: DeliveryId,
    pub attempt_number: u32,
    pub started_at: Millis,
    pub duration_ms: i64,
    pub http_status_code: Option<u16>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub response_excerpt: String,
    /// The answer's headers (`kept_headers`); empty without an answer, or once retention ran.
    pub response_headers: Vec<(String, String)>,
    pub manual: bool,
    /// The target that sent it when not the delivery's own: the mailer's fallback.
    pub sent_by: Option<TargetId>,
}

/// Where a page of the delivery log (newest first) ends: the next page starts after it. Created
/// time first, then the id, so deliveries created in the same millisecond are neither skipped nor
/// repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    pub created_at: Millis,
    pub id: DeliveryId,
}

impl LogPosition {
    const PREFIX: &'static str = "log:";

    /// An opaque cursor for the API.
    pub fn encode(self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}{}:{}", Self::PREFIX, self.created_at, self.id))
    }

    pub fn decode(cursor: &str) -> Option<Self> {
        use base64::Engine;
        let text = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
        let (created_at, id) = text.strip_prefix(Self::PREFIX)?.split_once(':')?;
        Some(Self { created_at: created_at.parse().ok()?, id: id.parse().ok()? })
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub target_id: Option<TargetId>,
    /// Only deliveries to these targets (a caller confined to a workspace sees no others).
    pub within: Option<Vec<TargetId>>,
    pub target_kind: Option<TargetKind>,
    pub event_type: Option<String>,
    /// Only deliveries after this position (older, in the log's newest-first order).
    pub after: Option<LogPosition>,
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RetryRequest {
    Requeued(Delivery),
    InFlight,
    /// Retention deleted what it would send.
    PayloadExpired,
    NotFound,
}

/// One target's deliveries in a window, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// Which failed deliveries a recovery re-queues: those of `target` created in `window` that had
/// failed by `as_of` (when the recovery started, so a delivery that fails again is not re-picked).
/// Records of a cancelled activation are not among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedSet {
    pub target: TargetId,
    pub window: Window,
    pub as_of: Millis,
}

#[cfg(test)]
mod header_tests {
    use super::*;

    #[test]
    fn kept_headers_are_bounded_lowercased_and_mask_credentials() {
        let long = "x".repeat(1000);
        let many: Vec<(String, String)> = (0..40).map(|i| (format!("X-N{i}"), "v".to_owned())).collect();
        let kept = kept_headers([("Content-Type", "application/json"), ("Set-Cookie", "session=abc"), ("X-Long", long.as_str())]);
        assert_eq!(kept[0], ("content-type".into(), "application/json".into()));
        assert_eq!(kept[1], ("set-cookie".into(), "[masked]".into()));
        assert_eq!(kept[2].1.chars().count(), MAX_HEADER_VALUE);
        assert_eq!(kept_headers(many.iter().map(|(n, v)| (n.as_str(), v.as_str()))).len(), MAX_HEADERS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16) -> AttemptOutcome {
        AttemptOutcome::Response { status, excerpt: String::new(), headers: Vec::new(), retry_after: None }
    }

    #[test]
    fn log_positions_round_trip_and_refuse_what_they_did_not_make() {
        let position = LogPosition { created_at: 1_764_700_000_123, id: DeliveryId::now_v7() };
        assert_eq!(LogPosition::decode(&position.encode()), Some(position));
        for bad in ["", "bG9nOg", "not base64!", "c2VxOjEy"] {
            assert_eq!(LogPosition::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn error_kinds_read_back_from_their_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::parse("nope"), None);
    }

    #[test]
    fn two_hundreds_deliver_and_everything_else_retries_for_webhooks() {
        let s = RetrySchedule::parse("0s,1s,2s").unwrap();
        assert_eq!(judge(&response(204), FailurePolicy::RetryAll, 1, &s, 0, 0.5), Verdict::Delivered);
        assert_eq!(judge(&response(500), FailurePolicy::RetryAll, 1, &s, 0, 0.5), Verdict::RetryAt(1000));
        assert_eq!(judge(&response(404), FailurePolicy::RetryAll, 2, &s, 0, 0.5), Verdict::RetryAt(2000));
        assert_eq!(judge(&response(301), FailurePolicy::RetryAll, 1, &s, 0, 0.5), Verdict::RetryAt(1000));
        assert_eq!(judge(&response(500), FailurePolicy::RetryAll, 3, &s, 0, 0.5), Verdict::Failed);
        assert_eq!(judge(&response(410), FailurePolicy::RetryAll, 1, &s, 0, 0.5), Verdict::Failed, "gone is final");
        let timeout = AttemptOutcome::Error { kind: ErrorKind::Timeout, message: "t".into() };
        assert_eq!(judge(&timeout, FailurePolicy::RetryAll, 1, &s, 10, 0.5), Verdict::RetryAt(1010));
    }

    #[test]
    fn saas_policy_fails_fast_on_client_errors_except_408_and_429() {
        let s = RetrySchedule::parse("0s,1s,2s").unwrap();
        assert_eq!(judge(&response(400), FailurePolicy::FailFastOn4xx, 1, &s, 0, 0.5), Verdict::Failed);
        assert_eq!(judge(&response(429), FailurePolicy::FailFastOn4xx, 1, &s, 0, 0.5), Verdict::RetryAt(1000));
        assert_eq!(judge(&response(408), FailurePolicy::FailFastOn4xx, 1, &s, 0, 0.5), Verdict::RetryAt(1000));
    }

    #[test]
    fn retry_after_is_honoured() {
        let s = RetrySchedule::parse("0s,1s,2s").unwrap();
        let busy = AttemptOutcome::Response { status: 503, excerpt: String::new(), headers: Vec::new(), retry_after: Some(Duration::from_secs(30)) };
        assert_eq!(judge(&busy, FailurePolicy::RetryAll, 1, &s, 0, 0.5), Verdict::RetryAt(30_000));
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Mon, 12 Jan 1970 13:46:50 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn explanations_are_plain_words() {
        assert!(explain(&response(204)).starts_with("Connected"));
        assert!(explain(&response(401)).contains("credentials were refused"));
        assert!(explain(&response(404)).contains("check the URL"));
        let dns = AttemptOutcome::Error { kind: ErrorKind::Dns, message: "no such host".into() };
        assert_eq!(explain(&dns), "The host name could not be resolved (DNS): no such host");
    }

    #[test]
    fn excerpts_are_bounded_on_char_boundaries() {
        assert_eq!(excerpt(b"ok"), "ok");
        let long = "é".repeat(3000);
        let cut = excerpt(long.as_bytes());
        assert!(cut.len() <= MAX_EXCERPT_BYTES);
        assert!(cut.chars().all(|c| c == 'é' || c == '\u{fffd}'));
    }
}
