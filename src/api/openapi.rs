//! The OpenAPI document served at `/api/openapi.json`: generated from the handlers' annotations,
//! then completed where utoipa cannot say what the server does. Each step is a rule of the
//! HTTP layer, applied to every call, so a new call cannot be documented wrongly.

use serde_json::{Map, Value, json};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorDetail};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchyard API", description = "Every call is `POST /api/<resource>-<verb>` with a JSON body and `Authorization: Bearer <token>`."),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The document as served: utoipa's, completed by the rules below.
pub fn document(generated: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(generated).expect("the generated document is JSON");
    merge_flattened(&mut doc);
    document_bodies(&mut doc);
    document_errors(&mut doc);
    doc
}

/// utoipa writes a struct with a `#[serde(flatten)]` part as an `allOf` of the part and the
/// other fields; with the part's `additionalProperties: false` no body could satisfy both. serde
/// reads one object holding the fields of all parts, so the schema becomes that object; every
/// part of a request denies unknown fields, and so does the whole.
fn merge_flattened(doc: &mut Value) {
    let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    let original = schemas.clone();
    for schema in schemas.values_mut() {
        if let Some(merged) = schema.get("allOf").and_then(Value::as_array).and_then(|parts| merge_parts(parts, &original)) {
            *schema = merged;
        }
    }
}

/// One object with the properties and required fields of every part; `None` when a part is not
/// an object (left as utoipa wrote it).
fn merge_parts(parts: &[Value], schemas: &Map<String, Value>) -> Option<Value> {
    let (mut properties, mut required, mut closed) = (Map::new(), Vec::new(), false);
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(reference) => schemas.get(reference.strip_prefix("#/components/schemas/")?)?,
            None => part,
        };
        properties.extend(part.get("properties")?.as_object()?.clone());
        required.extend(part.get("required").and_then(Value::as_array).into_iter().flatten().cloned());
        closed |= part.get("additionalProperties") == Some(&Value::Bool(false));
    }
    let mut merged = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        merged["required"] = Value::Array(required);
    }
    if closed {
        merged["additionalProperties"] = Value::Bool(false);
    }
    Some(merged)
}

/// `ApiJson` reads an empty body as `{}`: a body is required only when `{}` would not do (its
/// schema requires a field). A call without parameters takes any JSON object, or nothing.
fn document_bodies(doc: &mut Value) {
    let schemas = doc.pointer("/components/schemas").cloned().unwrap_or_default();
    for (method, operation) in operations(doc) {
        if method != "post" {
            continue; // GET calls take their parameters in the query string, and no body
        }
        if operation.get("requestBody").is_none() {
            operation["requestBody"] = json!({"content": {"application/json": {"schema": {"type": "object"}}}});
        }
        let body = &mut operation["requestBody"];
        let schema = body.pointer("/content/application~1json/schema").map(|s| resolve(s, &schemas));
        let needs_fields = schema.and_then(|s| s.get("required")).and_then(Value::as_array).is_some_and(|r| !r.is_empty());
        body["required"] = Value::Bool(needs_fields);
    }
}

/// Every call can fail: `4XX` (refused, named by the error code) and `5XX` (`internal`,
/// `unavailable`), always with the envelope.
fn document_errors(doc: &mut Value) {
    let envelope = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}});
    for (_, operation) in operations(doc) {
        let responses = operation["responses"].as_object_mut().expect("every operation documents its answers");
        responses.insert("4XX".into(), envelope("refused: see the error code"));
        responses.insert("5XX".into(), envelope("server error or database unavailable (`<scope>.internal`, `<scope>.unavailable`)"));
    }
}

/// Every operation of the document, with its method.
fn operations(doc: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    let paths = doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut());
    paths.flat_map(|item| item.as_object_mut().into_iter().flat_map(|methods| methods.iter_mut()))
}

fn resolve<'a>(schema: &'a Value, schemas: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &schemas[name],
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::router_parts;

    fn served() -> Value {
        document(&router_parts().1)
    }

    /// Every object schema a request body can reach, by name.
    fn request_schemas(doc: &Value) -> Vec<(String, Value)> {
        let schemas = &doc["components"]["schemas"];
        let mut found = Vec::new();
        let mut todo: Vec<(String, Value)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter_map(|(path, item)| item.pointer("/post/requestBody/content/application~1json/schema").map(|s| (path.clone(), s.clone())))
            .collect();
        while let Some((name, schema)) = todo.pop() {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let target = reference.trim_start_matches("#/components/schemas/").to_owned();
                if !found.iter().any(|(n, _)| *n == target) {
                    todo.push((target.clone(), schemas[&target].clone()));
                    found.push((target, Value::Null));
                }
                continue;
            }
            for nested in ["items", "oneOf", "anyOf", "allOf", "properties"] {
                match schema.get(nested) {
                    Some(Value::Array(parts)) => todo.extend(parts.iter().map(|p| (format!("{name}.{nested}"), p.clone()))),
                    Some(Value::Object(props)) if nested == "properties" => {
                        todo.extend(props.iter().map(|(k, p)| (format!("{name}.{k}"), p.clone())))
                    }
                    Some(single @ Value::Object(_)) => todo.push((format!("{name}.{nested}"), single.clone())),
                    _ => {}
                }
            }
            found.push((name, schema));
        }
        found
    }

    #[test]
    fn flattened_requests_are_one_satisfiable_object() {
        let doc = served();
        let schemas = &doc["components"]["schemas"];
        for (name, field) in
            [("UpdateDestination", "url"), ("CreateIntegration", "config"), ("UpdateIntegration", "secret"), ("UpdateMailer", "sender_name")]
        {
            let schema = &schemas[name];
            assert!(schema.get("allOf").is_none(), "{name}: {schema}");
            assert_eq!(schema["additionalProperties"], false, "{name}");
            assert!(schema["properties"][field].is_object(), "{name} has the flattened {field}");
        }
        assert_eq!(schemas["UpdateDestination"]["required"], json!(["id"]));
        for (name, schema) in request_schemas(&doc) {
            assert!(schema.get("allOf").is_none(), "{name}: an allOf in a request cannot be satisfied with additionalProperties: false");
        }
    }

    #[test]
    fn every_id_in_a_request_is_a_uuid() {
        let doc = served();
        let mut ids = 0;
        for (name, schema) in request_schemas(&doc) {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else { continue };
            for (field, property) in properties {
                // `external_id` is the host platform's own key for its customer, and an OAuth
                // `client_id` the authorization server's: neither is ours.
                let theirs = field == "external_id" || (name == "OAuth2Input" && field == "client_id");
                if (field == "id" || field.ends_with("_id") || field == "workspaces") && !theirs {
                    let property = property.get("items").unwrap_or(property);
                    assert_eq!(property["format"], "uuid", "{name}.{field}: {property}");
                    ids += 1;
                }
            }
        }
        assert!(ids > 30, "{ids} id fields");
    }

    #[test]
    fn bodies_are_required_only_when_empty_would_not_do() {
        let doc = served();
        let body = |call: &str| doc["paths"][format!("/api/{call}")]["post"]["requestBody"].clone();
        assert_eq!(body("webhooks-get")["required"], true);
        assert_eq!(body("webhooks-list")["required"], false);
        assert_eq!(body("webhooks-list")["content"]["application/json"]["schema"]["type"], "object");
        assert_eq!(body("events-list")["required"], false);
        assert_eq!(body("destinations-update")["required"], true);
        assert!(doc["paths"]["/api/events.csv"]["get"].get("requestBody").is_none(), "GET takes no body");
    }

    #[test]
    fn every_operation_documents_the_envelope_for_errors() {
        let doc = served();
        let mut count = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for range in ["4XX", "5XX"] {
                    let schema = &operation["responses"][range]["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {range}");
                }
                count += 1;
            }
        }
        assert!(count > 50);
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    }
}
