//! A portal session confined to one workspace (`Caller::workspace`) reaches only what is in it:
//! the targets available in that workspace alone (`WorkspaceScope::confined_to`), their
//! deliveries, activations and tasks, and the workspace itself.
//!
//! One gate covers every call: before a handler gets its parameters (`ApiJson`, `ApiQuery`),
//! each id they name is looked up and must be inside the workspace, whatever the call, so a call
//! added later is covered without anyone remembering to. An id field the gate does not know is
//! refused. Lists and creations are confined where they are made (`Caller::sees`,
//! `checks::chosen_scope`, `visible_targets`).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, OrStoreError, Scope};
use crate::domain::account::Caller;
use crate::domain::ids::TargetId;

/// The caller behind a request, when it is confined to a workspace (put in the request's
/// extensions by the `Caller` extractor, read by the parameter extractors).
#[derive(Clone, Copy, Debug)]
pub struct Confined(pub Caller);

/// What an id in a call's parameters names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    Target,
    Delivery,
    Activation,
    Task,
    Workspace,
    /// Nothing the gate knows: refused for a confined caller.
    Unknown,
}

/// What the parameter `field` of the call `call` names. `id` is the call's own resource.
fn named_by(call: &str, field: &str) -> Named {
    match field {
        "id" => match call.split('-').next().unwrap_or_default() {
            "webhooks" | "integrations" | "mailers" | "destinations" => Named::Target,
            "deliveries" => Named::Delivery,
            "activations" => Named::Activation,
            "tasks" => Named::Task,
            "workspaces" => Named::Workspace,
            _ => Named::Unknown,
        },
        "target_id" | "endpoint_id" | "mailer_id" | "destination_id" => Named::Target,
        "delivery_id" => Named::Delivery,
        "activation_id" => Named::Activation,
        "workspace_id" => Named::Workspace,
        _ => Named::Unknown,
    }
}

/// Whether a parameter names something by id (`id`, `…_id`).
fn is_id_field(field: &str) -> bool {
    field == "id" || field.ends_with("_id")
}

/// The targets a confined caller may see; `None` for a caller who sees the whole account.
pub async fn visible_targets(state: &AppState, scope: Scope, caller: &Caller) -> Result<Option<Vec<TargetId>>, ApiError> {
    let Some(workspace) = caller.workspace else { return Ok(None) };
    let all = state.store.targets.target_scopes(caller.account_id).await.or_store_error(scope)?;
    Ok(Some(all.into_iter().filter(|(_, targets_scope)| targets_scope.confined_to(workspace)).map(|(id, _)| id).collect()))
}

/// Refuses parameters of `call` that name anything outside the caller's workspace, as not found
/// (to the caller it does not exist). Values that are not ids of the account are left to the
/// handler, which answers them as it always does.
pub async fn check_params(state: &AppState, caller: &Caller, call: &str, params: &Map<String, Value>) -> Result<(), ApiError> {
    let Some(workspace) = caller.workspace else { return Ok(()) };
    let scope = super::extract::call_scope(&format!("/api/{call}"));
    let mut visible = None;
    for (field, value) in params.iter().filter(|(field, _)| is_id_field(field)) {
        let Some(id) = value.as_str().and_then(|v| Uuid::parse_str(v).ok()) else { continue };
        let target = match named_by(call, field) {
            Named::Workspace if id == workspace => continue,
            Named::Workspace | Named::Unknown => return Err(outside(scope, field)),
            Named::Target => Some(id.into()),
            Named::Delivery => state.store.log.get_delivery(caller.account_id, id.into()).await.or_store_error(scope)?.map(|d| d.target.id),
            Named::Activation => {
                let found = state.store.activations.get_activation(Some(caller.account_id), id).await.or_store_error(scope)?;
                found.map(|(activation, _)| activation.destination_id)
            }
            Named::Task => match state.store.upkeep.get_task(caller.account_id, id).await.or_store_error(scope)? {
                Some(task) => Some(task.target_id.ok_or_else(|| outside(scope, field))?),
                None => None,
            },
        };
        let Some(target) = target else { continue };
        if visible.is_none() {
            visible = visible_targets(state, scope, caller).await?;
        }
        if !visible.as_ref().is_some_and(|ids| ids.contains(&target)) {
            return Err(outside(scope, field));
        }
    }
    Ok(())
}

fn outside(scope: Scope, field: &str) -> ApiError {
    let what = field.strip_suffix("_id").unwrap_or("id");
    ApiError::new(axum::http::StatusCode::NOT_FOUND, scope, "not_found", format!("no such {what} in this portal session's workspace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_by_call_and_field() {
        assert_eq!(named_by("webhooks-get", "id"), Named::Target);
        assert_eq!(named_by("deliveries-retry", "id"), Named::Delivery);
        assert_eq!(named_by("deliveries-attempts", "delivery_id"), Named::Delivery);
        assert_eq!(named_by("activations-records", "id"), Named::Activation);
        assert_eq!(named_by("mailers-send", "mailer_id"), Named::Target);
        assert_eq!(named_by("events-list", "workspace_id"), Named::Workspace);
        assert_eq!(named_by("something-new", "id"), Named::Unknown, "a new resource is refused until the gate knows it");
        assert_eq!(named_by("webhooks-get", "account_id"), Named::Unknown);
        assert!(is_id_field("id") && is_id_field("target_id") && !is_id_field("idempotency_key") && !is_id_field("identity"));
    }
}
