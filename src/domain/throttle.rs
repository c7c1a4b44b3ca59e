//! Throttling: a target's optional rate limit, in attempts per second.
//!
//! A limit of N holds in a sliding window: no one-second stretch sees more than N attempts reach
//! the target, whichever nodes and workers make them. Switchyard cannot see when a receiver got a
//! request, only when it sent it and when the answer came back; so an attempt counts against its
//! target from its start until `RATE_WINDOW_MS` after its answer. Any two attempts that could
//! arrive within one second of each other are then counted together, whatever the delays on the
//! way, and the target's owner (`engine::lanes`) starts no more than the limit allows. The price:
//! against a receiver that answers in D, a limit of N gives at most N per (1 s + D).

use super::time::Millis;

/// The window a rate limit is stated over: N attempts per second.
pub const RATE_WINDOW_MS: Millis = 1000;

pub const MAX_RATE_LIMIT: u32 = 100_000;

/// Reads a `rate_limit` as sent: a whole number from 1 to `MAX_RATE_LIMIT`, or null for none.
pub fn parse_rate_limit(value: &serde_json::Value) -> Result<Option<u32>, String> {
    if value.is_null() {
        return Ok(None);
    }
    match super::json::whole_number(value) {
        Some(n) if (1..=u64::from(MAX_RATE_LIMIT)).contains(&n) => Ok(Some(n as u32)),
        _ => Err(format!("rate_limit is a whole number of deliveries per second from 1 to {MAX_RATE_LIMIT}, or null for no limit")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rate_limit_is_a_positive_whole_number_or_null() {
        assert_eq!(parse_rate_limit(&json!(null)), Ok(None));
        assert_eq!(parse_rate_limit(&json!(1)), Ok(Some(1)));
        assert_eq!(parse_rate_limit(&json!(20)), Ok(Some(20)));
        assert_eq!(parse_rate_limit(&json!(MAX_RATE_LIMIT)), Ok(Some(MAX_RATE_LIMIT)));
        for bad in [json!(0), json!(-1), json!(1.5), json!("20"), json!(true), json!([20]), json!(MAX_RATE_LIMIT + 1), json!(u64::MAX)] {
            let message = parse_rate_limit(&bad).unwrap_err();
            assert!(message.starts_with("rate_limit "), "the message names the field: {message}");
        }
    }
}
