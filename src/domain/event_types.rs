//! The event-type catalog every account starts with, and the naming rule for new types.

use super::time::Millis;

/// Seed 003's twelve types plus the two participant milestones of seeds 000/001.
pub const DEFAULT_EVENT_TYPES: &[(&str, &str)] = &[
    ("contact.created", "A contact was created"),
    ("contact.updated", "A contact was updated"),
    ("contact.deleted", "A contact was deleted"),
    ("company.created", "A company was created"),
    ("company.updated", "A company was updated"),
    ("company.deleted", "A company was deleted"),
    ("activity.created", "An activity was created"),
    ("activity.updated", "An activity was updated"),
    ("activity.deleted", "An activity was deleted"),
    ("project.created", "A project was created"),
    ("project.updated", "A project was updated"),
    ("project.deleted", "A project was deleted"),
    ("participant.registered", "A participant registered for an experience"),
    ("participant.completed", "A participant completed an experience"),
];

pub const MAX_EVENT_TYPE_LEN: usize = 100;

/// Names are dot-separated lowercase segments (`contact.created`, `order.line_item.added`).
pub fn validate_event_type_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_EVENT_TYPE_LEN {
        return Err(format!("event type names are 1 to {MAX_EVENT_TYPE_LEN} characters"));
    }
    let segment_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if name.split('.').count() < 2 || !name.split('.').all(segment_ok) {
        return Err(format!("'{name}' is not a valid event type: use dot-separated lowercase words such as 'contact.created'"));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_fourteen_valid_unique_types() {
        assert_eq!(DEFAULT_EVENT_TYPES.len(), 14);
        let mut names: Vec<_> = DEFAULT_EVENT_TYPES.iter().map(|(n, _)| *n).collect();
        names.iter().for_each(|n| validate_event_type_name(n).unwrap());
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 14);
    }

    #[test]
    fn refuses_malformed_names() {
        for bad in ["", "contact", "Contact.created", "contact..created", "contact.created.", "a b.c"] {
            assert!(validate_event_type_name(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(validate_event_type_name("order.line_item.added").is_ok());
    }
}
