//! API tokens: `sy_` + 32 random bytes (base64url). Only a SHA-256 digest is stored; tokens carry
//! 256 bits of entropy, so a slow password hash would add cost without adding safety.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::access::TokenScope;
use crate::domain::account::Token;
use crate::domain::ids::AccountId;
use crate::domain::time::Millis;

const PREFIX: &str = "sy_";
/// Portal sessions' tokens, and the one-time codes of portal links.
const PORTAL_PREFIX: &str = "syp_";
const CODE_PREFIX: &str = "sypc_";
/// Characters of a token kept to show in lists (`sy_` and 5 more): enough to tell tokens apart.
const SHOWN: usize = 8;

pub fn generate() -> String {
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()))
}

/// A new token for the account, and its record to store (its digest and shown prefix, never the
/// token itself).
pub fn issue(account: AccountId, name: &str, scope: TokenScope, now: Millis, expires_at: Option<Millis>) -> (String, Token) {
    let token = generate();
    let record = Token::new(account, name, scope, &format!("{}…", &token[..SHOWN]), &digest(&token), now, expires_at);
    (token, record)
}

/// A portal session's token (`syp_…`).
pub fn generate_portal_session() -> String {
    format!("{PORTAL_PREFIX}{}", URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()))
}

/// A portal link's one-time code (`sypc_…`).
pub fn generate_portal_code() -> String {
    format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()))
}

pub fn is_portal_session(token: &str) -> bool {
    token.starts_with(PORTAL_PREFIX)
}

/// The digest stored and looked up in place of the token.
pub fn digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_digests_stable() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with("sy_") && a.len() == 46);
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), digest(&b));
        assert!(!digest(&a).contains(&a[3..]));
    }

    #[test]
    fn an_issued_token_is_stored_as_its_digest_and_a_short_prefix() {
        let (token, record) = issue(AccountId::now_v7(), "ci", TokenScope::ReadOnly, 5, Some(10));
        assert_eq!(record.digest, digest(&token));
        assert_eq!(record.prefix, format!("{}…", &token[..8]));
        assert!(!record.prefix.contains(&token[8..]));
        assert_eq!((record.scope, record.created_at, record.expires_at), (TokenScope::ReadOnly, 5, Some(10)));
    }
}
