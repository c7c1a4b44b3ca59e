//! Workspaces: partitions of an account that events happen in.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::checked_name;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::{Caller, Workspace};
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::Workspaces;

#[derive(Serialize, ToSchema)]
pub struct WorkspaceView {
    id: Uuid,
    name: String,
    created_at: String,
    updated_at: String,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        Self { id: w.id, name: w.name, created_at: rfc3339(w.created_at), updated_at: rfc3339(w.updated_at) }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// Not blank; at most 200 characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspace {
    #[schema(format = Uuid)]
    id: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceOne {
    workspace: WorkspaceView,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceList {
    workspaces: Vec<WorkspaceView>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkspaceDeleted {
    id: Uuid,
    deleted: bool,
}

/// A workspace's name, which cannot be empty.
fn required_name(name: Option<String>) -> Result<String, ApiError> {
    let name = checked_name(SCOPE, "name", name.as_deref().unwrap_or_default())?;
    if name.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "name_required", "name is required"));
    }
    Ok(name)
}

/// Create a workspace.
#[utoipa::path(post, path = "/api/workspaces-create", tag = "workspaces", request_body = CreateWorkspace,
    responses((status = 200, body = Success<WorkspaceOne>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateWorkspace>) -> ApiResult<WorkspaceOne> {
    let now = now_ms();
    let workspace = Workspace { id: Uuid::now_v7(), account_id: caller.account_id, name: required_name(req.name)?, created_at: now, updated_at: now };
    state.store.accounts.insert_workspace(&workspace).await.or_store_error(SCOPE)?;
    success(WorkspaceOne { workspace: workspace.into() })
}

/// List the account's workspaces, oldest first.
#[utoipa::path(post, path = "/api/workspaces-list", tag = "workspaces",
    responses((status = 200, body = Success<WorkspaceList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<WorkspaceList> {
    let workspaces = state.store.accounts.list_workspaces(caller.account_id).await.or_store_error(SCOPE)?;
    let seen = workspaces.into_iter().filter(|w| caller.workspace.is_none_or(|own| own == w.id));
    success(WorkspaceList { workspaces: seen.map(Into::into).collect() })
}

/// Rename a workspace.
#[utoipa::path(post, path = "/api/workspaces-update", tag = "workspaces", request_body = UpdateWorkspace,
    responses((status = 200, body = Success<WorkspaceOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<UpdateWorkspace>) -> ApiResult<WorkspaceOne> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    let mut workspace = state
        .store
        .accounts
        .get_workspace(caller.account_id, id)
        .await
        .or_store_error(SCOPE)?
        .ok_or_else(|| ApiError::not_found(SCOPE, "workspace"))?;
    if req.name.is_some() {
        workspace.name = required_name(req.name)?;
    }
    workspace.updated_at = now_ms();
    if !state.store.accounts.update_workspace(&workspace).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "workspace"));
    }
    success(WorkspaceOne { workspace: workspace.into() })
}

/// Delete a workspace. Events already sent in it keep its id.
#[utoipa::path(post, path = "/api/workspaces-delete", tag = "workspaces", request_body = WorkspaceId,
    responses((status = 200, body = Success<WorkspaceDeleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<WorkspaceId>) -> ApiResult<WorkspaceDeleted> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    if !state.store.accounts.delete_workspace(caller.account_id, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "workspace"));
    }
    success(WorkspaceDeleted { id, deleted: true })
}
