//! API tokens: `sy_` + 32 random bytes (base64url). Only a SHA-256 digest is stored; tokens carry
//! 256 bits of entropy, so a slow password hash would add cost without adding safety.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sy_";

pub fn generate() -> String {
    format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()))
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
}
