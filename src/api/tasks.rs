//! Background tasks started by API calls (recoveries) and their progress.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::task::Task;
use crate::domain::time::rfc3339;

const SCOPE: Scope = Scope::Tasks;

#[derive(Serialize, ToSchema)]
pub struct TaskView {
    id: Uuid,
    /// `recover`.
    kind: &'static str,
    /// running, done or failed.
    status: &'static str,
    /// The target it works on.
    target_id: Option<Uuid>,
    /// Items to process (a recovery: the failed deliveries in its window when it started).
    total: u64,
    /// Items processed so far, skipped ones included.
    done: u64,
    /// Items left alone (a recovery: deliveries whose payload retention deleted).
    skipped: u64,
    /// Why it failed.
    error: Option<String>,
    created_at: String,
    finished_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskOne {
    task: TaskView,
}

impl From<Task> for TaskOne {
    fn from(t: Task) -> Self {
        Self {
            task: TaskView {
                id: t.id,
                kind: t.kind.as_str(),
                status: t.status.as_str(),
                target_id: t.target_id.map(Into::into),
                total: t.total,
                done: t.done,
                skipped: t.skipped,
                error: t.error,
                created_at: rfc3339(t.created_at),
                finished_at: t.finished_at.map(rfc3339),
            },
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskId {
    #[schema(format = Uuid)]
    id: String,
}

/// A background task's progress (e.g. one started by webhooks-recover).
#[utoipa::path(post, path = "/api/tasks-get", tag = "tasks", request_body = TaskId,
    responses((status = 200, body = Success<TaskOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<TaskId>) -> ApiResult<TaskOne> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    let task = state.store.upkeep.get_task(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "task"))?;
    success(task.into())
}
