//! Field mapping: ordered rows `webhook_field ← source_field` that build an outgoing object
//! from an event's data.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::fields::is_source_field;

pub const MAX_ROWS: usize = 200;
pub const MAX_FIELD_NAME_LEN: usize = 200;

/// What to send when the source field is absent or null.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IfMissing {
    /// Leave the field out (the default).
    #[default]
    Omit,
    /// Send an empty string.
    EmptyString,
    /// Send JSON null.
    Null,
}

/// One mapping row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRow {
    /// The key in the outgoing payload.
    pub webhook_field: String,
    /// One of the 43 source field keys (see integrations-fields-list).
    pub source_field: String,
    #[serde(default, skip_serializing_if = "is_omit")]
    pub if_missing: IfMissing,
}

fn is_omit(v: &IfMissing) -> bool {
    *v == IfMissing::Omit
}

/// Refuses unknown source keys and empty or duplicate output keys, naming the row.
pub fn validate(rows: &[MappingRow]) -> Result<(), String> {
    if rows.len() > MAX_ROWS {
        return Err(format!("a mapping has at most {MAX_ROWS} rows"));
    }
    let mut outputs = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i + 1;
        let output = row.webhook_field.trim();
        if output.is_empty() {
            return Err(format!("mapping row {n}: the webhook field is empty"));
        }
        if output.len() > MAX_FIELD_NAME_LEN {
            return Err(format!("mapping row {n}: the webhook field is longer than {MAX_FIELD_NAME_LEN} characters"));
        }
        if !is_source_field(&row.source_field) {
            return Err(format!("mapping row {n}: '{}' is not a source field; see integrations-fields-list", row.source_field));
        }
        if !outputs.insert(output) {
            return Err(format!("mapping row {n}: the webhook field '{output}' is mapped twice"));
        }
    }
    Ok(())
}

/// Builds the outgoing object. Missing (absent or null) values follow the row's `if_missing`.
pub fn apply(rows: &[MappingRow], data: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(rows.len());
    for row in rows {
        let value = match data.get(&row.source_field) {
            Some(Value::Null) | None => match row.if_missing {
                IfMissing::Omit => continue,
                IfMissing::EmptyString => Value::String(String::new()),
                IfMissing::Null => Value::Null,
            },
            Some(value) => value.clone(),
        };
        out.insert(row.webhook_field.trim().to_owned(), value);
    }
    out
}

/// A value as text, for APIs whose properties are all strings (HubSpot, URLs).
pub fn as_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(as_text).collect::<Vec<_>>().join(";"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(out: &str, src: &str) -> MappingRow {
        MappingRow { webhook_field: out.into(), source_field: src.into(), if_missing: IfMissing::Omit }
    }

    #[test]
    fn validation_names_the_bad_row() {
        assert!(validate(&[row("email", "email"), row("LastName", "lastName")]).is_ok());
        assert!(validate(&[row("email", "email"), row(" ", "lastName")]).unwrap_err().contains("row 2"));
        assert!(validate(&[row("x", "last_name")]).unwrap_err().contains("'last_name' is not a source field"));
        assert!(validate(&[row("x", "email"), row("x", "lastName")]).unwrap_err().contains("mapped twice"));
    }

    #[test]
    fn missing_values_are_omitted_unless_the_row_says_otherwise() {
        let data = json!({"email": "a@example.com", "score": 12, "town": null}).as_object().unwrap().clone();
        let mut rows = vec![row("Email", "email"), row("points", "score"), row("city", "town"), row("zip", "cp")];
        assert_eq!(Value::Object(apply(&rows, &data)), json!({"Email": "a@example.com", "points": 12}));
        rows[2].if_missing = IfMissing::EmptyString;
        rows[3].if_missing = IfMissing::Null;
        assert_eq!(Value::Object(apply(&rows, &data)), json!({"Email": "a@example.com", "points": 12, "city": "", "zip": null}));
    }

    #[test]
    fn text_form_of_values() {
        assert_eq!(as_text(&json!("x")), "x");
        assert_eq!(as_text(&json!(17)), "17");
        assert_eq!(as_text(&json!(false)), "false");
        assert_eq!(as_text(&json!(["a", "b"])), "a;b");
    }
}
