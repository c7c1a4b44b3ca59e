//! `Upkeep`: the readiness ping, payload retention, giving space back, expired secrets, tasks.

use super::common::*;

const TASK_COLUMNS: &str = "id, account_id, kind, status, target_id, total, done, skipped, error, created_at, updated_at, finished_at";

fn task_from_row(row: &DbRow) -> StoreResult<Task> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let count = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
    Ok(Task {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        kind: TaskKind::parse(&kind).ok_or_else(|| StoreError::Internal(format!("unknown task kind {kind}")))?,
        status: TaskStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad task status {status}")))?,
        target_id: opt_uuid_col(row, "target_id")?,
        total: count("total")?,
        done: count("done")?,
        skipped: count("skipped")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

#[async_trait]
impl Upkeep for Backend {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn expire_payloads(
        &self,
        account: AccountId,
        cutoff: Millis,
        after: Option<Position<EventId>>,
        limit: u32,
        now: Millis,
    ) -> StoreResult<BatchOutcome<EventId>> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        // An event is busy while a delivery may still need its payload: one is pending, or its
        // activation is still being uploaded.
        let mut pick = sqlx::QueryBuilder::<Db>::new(
            "SELECT e.created_at, e.id, CASE WHEN \
 EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending') OR \
 EXISTS (SELECT 1 FROM activations a WHERE (a.event_id = e.id OR a.delete_event_id = e.id) AND a.started_at IS NULL) \
 THEN 1 ELSE 0 END AS busy FROM events e WHERE e.payload_expired_at IS NULL AND e.account_id = ",
        );
        pick.push_bind(account.to_string()).push(" AND e.created_at < ").push_bind(cutoff);
        push_after(&mut pick, "e.", after);
        pick.push(" ORDER BY e.created_at, e.id LIMIT ").push_bind(i64::from(limit));
        let rows = pick.build().fetch_all(&mut *tx).await?;
        let mut settled = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<i32, _>("busy")? == 0 {
                settled.push(row.try_get::<String, _>("id")?);
            }
        }
        if !settled.is_empty() {
            let mut events = sqlx::QueryBuilder::<Db>::new("UPDATE events SET data = ");
            events.push_bind(EXPIRED_DATA).push(", payload_expired_at = ").push_bind(now).push(" WHERE id IN ");
            push_list(&mut events, &settled);
            events.build().execute(&mut *tx).await?;
            let mut deliveries = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET params = NULL, payload_expired_at = ");
            deliveries.push_bind(now).push(" WHERE event_id IN ");
            push_list(&mut deliveries, &settled);
            deliveries.build().execute(&mut *tx).await?;
            let mut attempts = sqlx::QueryBuilder::<Db>::new(
                "UPDATE attempts SET response_excerpt = '', response_headers = NULL WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN ",
            );
            push_list(&mut attempts, &settled);
            attempts.push(")");
            attempts.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let last = rows.last().map(position_from_row).transpose()?;
        Ok(BatchOutcome { examined: rows.len() as u64, changed: settled.len() as u64, last })
    }

    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64> {
        self.reclaim(max_pages).await
    }

    async fn delete_expired_secrets(&self, now: Millis, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_secrets WHERE id IN \
 (SELECT id FROM signing_secrets WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn insert_task(&self, task: &Task) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
            .bind(task.id.to_string())
            .bind(task.account_id.to_string())
            .bind(task.kind.as_str())
            .bind(task.status.as_str())
            .bind(task.target_id.map(|t| t.to_string()))
            .bind(task.total as i64)
            .bind(task.done as i64)
            .bind(task.skipped as i64)
            .bind(&task.error)
            .bind(task.created_at)
            .bind(task.updated_at)
            .bind(task.finished_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn update_task(&self, task: &Task) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tasks SET status = $1, total = $2, done = $3, skipped = $4, error = $5, updated_at = $6, finished_at = $7 \
 WHERE id = $8",
        )
        .bind(task.status.as_str())
        .bind(task.total as i64)
        .bind(task.done as i64)
        .bind(task.skipped as i64)
        .bind(&task.error)
        .bind(task.updated_at)
        .bind(task.finished_at)
        .bind(task.id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_task(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn fail_stale_tasks(&self, updated_before: Millis, now: Millis) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE tasks SET status = 'failed', error = $1, finished_at = $2, updated_at = $2 \
 WHERE status = 'running' AND updated_at < $3",
        )
        .bind("interrupted: the server stopped while it ran; start it again")
        .bind(now)
        .bind(updated_before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn expire_sync_records(&self, account: AccountId, cutoff: Millis, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE sync_state SET record = NULL WHERE (destination_id, sync_key) IN (SELECT destination_id, sync_key FROM sync_state \
 WHERE account_id = $1 AND record IS NOT NULL AND run_created_at < $2 LIMIT $3)",
        )
        .bind(account.to_string())
        .bind(cutoff)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn discard_stalled_uploads(&self, stalled_before: Millis, limit: u32) -> StoreResult<u64> {
        let stalled: Vec<String> = sqlx::query_scalar("SELECT id FROM activations WHERE started_at IS NULL AND COALESCE(progressed_at, created_at) < $1 LIMIT $2")
            .bind(stalled_before)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        let mut discarded = 0;
        for id in stalled {
            let mut tx = self.write_tx().await?;
            // Checked again in the transaction: it may have progressed since.
            let still: Option<String> = sqlx::query_scalar("SELECT id FROM activations WHERE id = $1 AND started_at IS NULL AND COALESCE(progressed_at, created_at) < $2")
                .bind(&id)
                .bind(stalled_before)
                .fetch_optional(&mut *tx)
                .await?;
            if still.is_some() {
                super::activations::discard_activation(&mut tx, Uuid::try_parse(&id).map_err(|e| StoreError::Internal(e.to_string()))?).await?;
                discarded += 1;
            }
            tx.commit().await?;
        }
        Ok(discarded)
    }

    async fn purge_deleted_accounts(&self, limit: u32) -> StoreResult<u64> {
        let Some(row) =
            sqlx::query("SELECT id FROM accounts WHERE deleting_since IS NOT NULL ORDER BY deleting_since, id LIMIT 1").fetch_optional(&self.reader).await?
        else {
            return Ok(0);
        };
        let account: AccountId = uuid_col(&row, "id")?;
        for batch in PURGE_BATCHES {
            let done = sqlx::query(batch).bind(account.to_string()).bind(i64::from(limit)).execute(&self.writer).await?;
            if done.rows_affected() > 0 {
                return Ok(done.rows_affected());
            }
        }
        // What is left is small (targets and their settings, workspaces, catalogs, tasks): the
        // account's row takes it along (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1 AND deleting_since IS NOT NULL").bind(account.to_string()).execute(&self.writer).await?;
        Ok(done.rows_affected())
    }
}

/// The big tables of an account being deleted, a bounded batch at a time: deliveries (found
/// through the account's targets, which index them; their attempts go with them), events, its
/// audit trail and its suppressions; before events (which take their activations along), what
/// sync runs stored.
const PURGE_BATCHES: [&str; 6] = [
    "DELETE FROM deliveries WHERE id IN (SELECT d.id FROM targets t JOIN deliveries d ON d.target_id = t.id WHERE t.account_id = $1 LIMIT $2)",
    "DELETE FROM sync_records WHERE (activation_id, record_index) IN \
     (SELECT s.activation_id, s.record_index FROM activations a JOIN sync_records s ON s.activation_id = a.id WHERE a.account_id = $1 LIMIT $2)",
    "DELETE FROM sync_state WHERE (destination_id, sync_key) IN (SELECT destination_id, sync_key FROM sync_state WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE account_id = $1 LIMIT $2)",
    "DELETE FROM suppressions WHERE account_id = $1 AND address IN (SELECT address FROM suppressions WHERE account_id = $1 LIMIT $2)",
];
