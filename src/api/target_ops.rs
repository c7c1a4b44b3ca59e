//! Stats and recovery, the same for every kind of target: each resource's `*-stats` and
//! `*-recover` routes name their family and call these.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::parse_time;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::parse_id;
use super::tasks::TaskOne;
use super::{ApiResult, AppState, success};
use crate::domain::account::Caller;
use crate::domain::fanout::{TargetKind, TargetRef};
use crate::domain::time::{now_ms, rfc3339};
use crate::domain::window::{recovery_window, stats_window};

/// A kind of target as the API names it: its resource (the error scope), what messages call it,
/// and which stored kinds belong to it.
pub struct TargetFamily {
    pub scope: Scope,
    pub noun: &'static str,
    pub kinds: fn(TargetKind) -> bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsRequest {
    #[schema(format = Uuid)]
    id: String,
    /// Deliveries created at or after: RFC 3339, or a duration back from now (`7days`).
    /// Default: 24 hours before `until`.
    since: Option<String>,
    /// Deliveries created before (same forms). Default: now.
    until: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    #[schema(format = Uuid)]
    id: String,
    /// Deliveries created at or after: RFC 3339, or a duration back from now (`2days`).
    since: String,
    /// Deliveries created before (same forms); default now. The window is at most 14 days.
    until: Option<String>,
}

/// A target's deliveries created in a window, by status.
#[derive(Serialize, ToSchema)]
pub struct StatsView {
    target_id: Uuid,
    since: String,
    until: String,
    total: u64,
    /// Delivered (a 2xx answer).
    succeeded: u64,
    /// Failed for good (every attempt failed, or a permanent refusal).
    failed: u64,
    /// Not settled yet (waiting for an attempt or a retry).
    pending: u64,
}

/// Whether the target is on, and how its recent attempts went.
#[derive(Serialize, ToSchema)]
pub struct HealthSummary {
    is_active: bool,
    /// Failed attempts since the last success.
    failure_streak: u32,
    /// When the first of those failures happened (RFC 3339); null while healthy.
    failing_since: Option<String>,
    /// Why Switchyard switched the target off (410 Gone, or failing for too long); null otherwise.
    /// Switching it on again (`is_active: true` in the update call) clears it and the streak.
    disabled_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TargetStats {
    stats: StatsView,
    health: HealthSummary,
}

async fn owned_target(state: &AppState, caller: &Caller, family: &TargetFamily, id: &str) -> Result<TargetRef, ApiError> {
    let id = parse_id(family.scope, "id", id)?;
    state
        .store
        .targets
        .find_target(caller.account_id, id)
        .await
        .or_store_error(family.scope)?
        .filter(|target| (family.kinds)(target.kind))
        .ok_or_else(|| ApiError::not_found(family.scope, family.noun))
}

pub async fn stats(state: &AppState, caller: &Caller, family: &TargetFamily, req: StatsRequest) -> ApiResult<TargetStats> {
    let scope = family.scope;
    let target = owned_target(state, caller, family, &req.id).await?;
    let now = now_ms();
    let since = req.since.map(|v| parse_time(scope, "since", &v, now)).transpose()?;
    let until = req.until.map(|v| parse_time(scope, "until", &v, now)).transpose()?;
    let window = stats_window(since, until, now).map_err(|e| ApiError::invalid_request(scope, e.to_string()))?;
    let (counts, health) = tokio::try_join!(
        state.store.log.delivery_counts(caller.account_id, target.id, window),
        state.store.targets.target_health(caller.account_id, target.id)
    )
    .or_store_error(scope)?;
    let health = health.ok_or_else(|| ApiError::not_found(scope, family.noun))?;
    success(TargetStats {
        health: HealthSummary {
            is_active: health.is_active,
            failure_streak: health.failure_streak,
            failing_since: health.failing_since.map(rfc3339),
            disabled_reason: health.disabled_reason,
        },
        stats: StatsView {
            target_id: target.id.into(),
            since: rfc3339(window.since),
            until: rfc3339(window.until),
            total: counts.pending + counts.delivered + counts.failed,
            succeeded: counts.delivered,
            failed: counts.failed,
            pending: counts.pending,
        },
    })
}

pub async fn recover(state: &AppState, caller: &Caller, family: &TargetFamily, req: RecoverRequest) -> ApiResult<TaskOne> {
    let scope = family.scope;
    let target = owned_target(state, caller, family, &req.id).await?;
    let now = now_ms();
    let since = parse_time(scope, "since", &req.since, now)?;
    let until = req.until.map(|v| parse_time(scope, "until", &v, now)).transpose()?;
    let window = recovery_window(since, until, now).map_err(|e| ApiError::invalid_request(scope, e.to_string()))?;
    let task =
        crate::recovery::start(state.store.log.clone(), state.store.upkeep.clone(), state.engine.clone(), caller.account_id, target.id, window, now)
            .await
            .or_store_error(scope)?;
    success(task.into())
}
