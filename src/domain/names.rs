//! Names people give things — workspaces, integrations, mailers, destinations, a mailer's sender:
//! shown in lists and in mail headers, so bounded and on one line.

pub const MAX_NAME_LEN: usize = 200;

/// The name trimmed, or why it cannot be one. An empty name passes: each caller decides whether
/// it takes a default or is refused. The bound holds for what was sent, as the API document says.
pub fn check_name(field: &str, raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if raw.chars().count() > MAX_NAME_LEN {
        return Err(format!("{field} is at most {MAX_NAME_LEN} characters"));
    }
    if name.contains(char::is_control) {
        return Err(format!("{field} must be one line, without control characters"));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_on_one_line() {
        assert_eq!(check_name("name", "  Main  ").unwrap(), "Main");
        assert_eq!(check_name("name", "   ").unwrap(), "");
        assert_eq!(check_name("name", &"é".repeat(MAX_NAME_LEN)).unwrap().chars().count(), MAX_NAME_LEN);
        assert!(check_name("name", &"x".repeat(MAX_NAME_LEN + 1)).unwrap_err().contains("at most 200"));
        assert!(check_name("name", &format!(" {} ", "x".repeat(MAX_NAME_LEN - 1))).is_err(), "what was sent counts");
        for bad in ["Brand\r\nBcc: x@example.com", "a\tb", "nul\0"] {
            assert!(check_name("sender_name", bad).unwrap_err().starts_with("sender_name must be one line"), "{bad:?}");
        }
    }
}
