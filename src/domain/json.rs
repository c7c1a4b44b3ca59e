//! JSON values as the API reads them.

use serde_json::Value;

/// A whole number given as `20` or `20.0` (JSON Schema's `integer` is any number without a
/// fractional part, so clients and generators may write either).
pub fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64).map(|f| f as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_numbers_may_carry_a_zero_fraction() {
        assert_eq!(whole_number(&json!(20)), Some(20));
        assert_eq!(whole_number(&json!(20.0)), Some(20));
        assert_eq!(whole_number(&json!(0)), Some(0));
        for not in [json!(2.5), json!(-1), json!(-1.0), json!("20"), json!(null), json!(1e300)] {
            assert_eq!(whole_number(&not), None, "{not}");
        }
    }
}
