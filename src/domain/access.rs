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
    /// A portal session (`domain::portal`), not a token: the account's configuration and log,
    /// but not its tokens, its own settings or sending events.
    #[serde(skip)]
    Portal,
}

/// Calls a portal session may not make, by prefix: its account's tokens and settings, and
/// minting more portal sessions.
const NOT_IN_PORTAL: [&str; 4] = ["tokens-", "portal-sessions-", "account-", "accounts-"];

/// Calls a session confined to one workspace may not make either: changes to what the whole
/// account shares (its workspaces, its event types), and what tells of every workspace (the
/// audit trail, the suppression list of the account's recipients).
const NOT_IN_ONE_WORKSPACE: [&str; 6] =
    ["workspaces-create", "workspaces-update", "workspaces-delete", "event-types-create", "audit-", "suppressions-"];

/// Whether a caller confined to one workspace may make the call named `call` (if its scope does).
pub fn allowed_in_one_workspace(call: &str) -> bool {
    !NOT_IN_ONE_WORKSPACE.iter().any(|prefix| call.starts_with(prefix))
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ReadOnly => "read_only",
            Self::EventsSend => "events_send",
            Self::Portal => "portal",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Full, Self::ReadOnly, Self::EventsSend].into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a caller of this scope may make the call named `call`.
    pub fn allows(self, call: &str) -> bool {
        let need = need_of(call);
        match self {
            Self::Full => true,
            Self::ReadOnly => need == Need::Read,
            Self::EventsSend => need == Need::SendEvents,
            Self::Portal => need != Need::SendEvents && !NOT_IN_PORTAL.iter().any(|prefix| call.starts_with(prefix)),
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
        let calls = ["webhooks-list", "events-send", "webhooks-create", "tokens-list", "account-update", "portal-sessions-create"];
        let allowed = |scope: TokenScope| calls.iter().map(|c| scope.allows(c)).collect::<Vec<_>>();
        assert_eq!(allowed(TokenScope::Full), [true; 6]);
        assert_eq!(allowed(TokenScope::ReadOnly), [true, false, false, true, false, false]);
        assert_eq!(allowed(TokenScope::EventsSend), [false, true, false, false, false, false]);
        assert_eq!(allowed(TokenScope::Portal), [true, false, true, false, false, false]);
        for scope in [TokenScope::Full, TokenScope::ReadOnly, TokenScope::EventsSend] {
            assert_eq!(TokenScope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(TokenScope::parse("portal"), None, "no token has the portal's scope");
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
