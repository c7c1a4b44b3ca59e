//! Who may make which call: the scopes of API tokens, and what each call needs.
//!
//! A call's needs follow from its name alone (`webhooks-list` reads, `webhooks-update` writes),
//! so a call added later is covered without a list to keep up to date: anything that is not a
//! known way of reading is a write.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time::Millis;

/// What an API token may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Every call of its account (tokens included).
    #[default]
    Full,
    /// Reading only: lists, gets, stats, the delivery log.
    ReadOnly,
    /// `events-send` and `events-send-batch` only: for the platform's backend.
    EventsSend,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ReadOnly => "read_only",
            Self::EventsSend => "events_send",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Full, Self::ReadOnly, Self::EventsSend].into_iter().find(|s| s.as_str() == text)
    }

    pub fn allows(self, need: Need) -> bool {
        match self {
            Self::Full => true,
            Self::ReadOnly => need == Need::Read,
            Self::EventsSend => need == Need::SendEvents,
        }
    }
}

/// What a call needs of its caller's token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    Read,
    SendEvents,
    /// Changes something, or acts outside (a test e-mail, a connection check).
    Write,
}

/// The verbs that only read (`<resource>-<verb>`; `deliveries-request` shows the request a
/// delivery sends).
const READ_VERBS: [&str; 7] = ["list", "get", "stats", "attempts", "records", "deliveries", "request"];

/// What the call named `call` (`webhooks-list`, `events.csv`) needs.
pub fn need_of(call: &str) -> Need {
    if call == "events-send" || call == "events-send-batch" {
        return Need::SendEvents;
    }
    if call.ends_with(".csv") {
        return Need::Read;
    }
    let verb = call.rsplit('-').next().unwrap_or(call);
    if READ_VERBS.contains(&verb) { Need::Read } else { Need::Write }
}

/// The shortest and longest life a token may be given, in seconds.
pub const MIN_TOKEN_LIFE_SECONDS: u64 = 60;
pub const MAX_TOKEN_LIFE_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A token's expiry from `expires_in` seconds after `now`; `None` never expires.
pub fn token_expiry(now: Millis, expires_in: Option<u64>) -> Result<Option<Millis>, String> {
    match expires_in {
        None => Ok(None),
        Some(s) if (MIN_TOKEN_LIFE_SECONDS..=MAX_TOKEN_LIFE_SECONDS).contains(&s) => Ok(Some(now + (s * 1000) as Millis)),
        Some(_) => Err(format!("expires_in must be from {MIN_TOKEN_LIFE_SECONDS} to {MAX_TOKEN_LIFE_SECONDS} seconds, or left out")),
    }
}

/// A token name: 1 to 100 characters, not only spaces.
pub fn check_token_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err("name must be 1 to 100 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}

/// An account's external id, the platform's own key for its customer: 1 to 200 characters of
/// letters, digits and `-_.:@`.
pub fn check_external_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:@".contains(c);
    if id.is_empty() || id.len() > 200 || !id.chars().all(allowed) {
        return Err("external_id must be 1 to 200 characters of letters, digits and - _ . : @".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_read_send_events_or_write_by_their_names() {
        for call in [
            "webhooks-list",
            "webhooks-get",
            "webhooks-stats",
            "webhooks-deliveries",
            "deliveries-attempts",
            "activations-records",
            "events.csv",
            "integration-kinds-list",
        ] {
            assert_eq!(need_of(call), Need::Read, "{call}");
        }
        for call in ["events-send", "events-send-batch"] {
            assert_eq!(need_of(call), Need::SendEvents, "{call}");
        }
        for call in
            ["webhooks-create", "webhooks-rotate-secret", "mailers-send", "mailers-test", "integrations-verify", "tokens-revoke", "something-new"]
        {
            assert_eq!(need_of(call), Need::Write, "{call}");
        }
    }

    #[test]
    fn each_scope_allows_only_its_calls() {
        assert!([Need::Read, Need::SendEvents, Need::Write].iter().all(|n| TokenScope::Full.allows(*n)));
        assert!(
            TokenScope::ReadOnly.allows(Need::Read) && !TokenScope::ReadOnly.allows(Need::Write) && !TokenScope::ReadOnly.allows(Need::SendEvents)
        );
        assert!(
            TokenScope::EventsSend.allows(Need::SendEvents)
                && !TokenScope::EventsSend.allows(Need::Read)
                && !TokenScope::EventsSend.allows(Need::Write)
        );
        for scope in [TokenScope::Full, TokenScope::ReadOnly, TokenScope::EventsSend] {
            assert_eq!(TokenScope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(TokenScope::parse("admin"), None);
    }

    #[test]
    fn expiries_names_and_external_ids_are_checked() {
        assert_eq!(token_expiry(1_000, None), Ok(None));
        assert_eq!(token_expiry(1_000, Some(3600)), Ok(Some(3_601_000)));
        assert!(token_expiry(0, Some(59)).is_err() && token_expiry(0, Some(MAX_TOKEN_LIFE_SECONDS + 1)).is_err());
        assert!(check_token_name("backend").is_ok() && check_token_name("  ").is_err() && check_token_name(&"x".repeat(101)).is_err());
        assert!(check_token_name("a\nb").is_err());
        assert!(check_external_id("cus_42:eu@acme.io").is_ok());
        assert!(check_external_id("").is_err() && check_external_id("a b").is_err() && check_external_id(&"x".repeat(201)).is_err());
    }
}
