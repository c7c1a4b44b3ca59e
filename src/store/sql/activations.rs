//! `ActivationStore`: activations, their held records, release, cancel and discard.

use super::common::*;

impl Backend {
    async fn activation_counts(&self, id: Uuid) -> StoreResult<ActivationCounts> {
        let row = sqlx::query(ACTIVATION_COUNTS).bind(id.to_string()).bind(CANCELLED).fetch_one(&self.reader).await?;
        let n = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
        let (pending, failed, client_errors, cancelled) = (n("pending")?, n("failed")?, n("client_errors")?, n("cancelled")?);
        Ok(ActivationCounts {
            pending,
            succeeded: n("succeeded")?,
            client_errors,
            server_errors: failed - client_errors - cancelled,
            cancelled,
            finished_at: if pending == 0 { row.try_get("finished_at")? } else { None },
        })
    }
}

/// A record the destination rejected: it failed with a 4xx (`$2` binds `CANCELLED`).
macro_rules! rejected {
    () => {
        "status = 'failed' AND http_status_code BETWEEN 400 AND 499 AND last_error <> $2"
    };
}

const ACTIVATION_COUNTS: &str = concat!(
    "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS succeeded, \
     COALESCE(SUM(CASE WHEN ",
    rejected!(),
    " THEN 1 ELSE 0 END), 0) AS client_errors, \
     COALESCE(SUM(CASE WHEN status = 'failed' AND last_error = $2 THEN 1 ELSE 0 END), 0) AS cancelled, \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     MAX(completed_at) AS finished_at \
     FROM deliveries WHERE activation_id = $1"
);

/// Folds one settled sync run (`$1`) into its destination's sync state: each key
/// it sent or had rejected gets its record, unless a later run already set it.
const FOLD_SENT: &str = concat!(
    "INSERT INTO sync_state (destination_id, sync_key, account_id, fingerprint, rejected, record, run_created_at) \
     SELECT a.destination_id, s.sync_key, a.account_id, s.fingerprint, CASE WHEN d.status = 'failed' THEN TRUE ELSE FALSE END, d.params, a.created_at \
     FROM sync_records s JOIN activations a ON a.id = s.activation_id \
     JOIN deliveries d ON d.activation_id = s.activation_id AND d.record_index = s.record_index \
     WHERE s.activation_id = $1 AND s.fingerprint IS NOT NULL AND (d.status = 'delivered' OR (d.",
    rejected!(),
    ")) ON CONFLICT (destination_id, sync_key) DO UPDATE SET fingerprint = excluded.fingerprint, rejected = excluded.rejected, \
     record = COALESCE(excluded.record, sync_state.record), run_created_at = excluded.run_created_at, deleted = FALSE \
     WHERE sync_state.run_created_at <= excluded.run_created_at"
);

/// Folds a settled sync run's (`$1` of destination `$2`, created at `$3`) DELETEs: a key the
/// destination deleted (or no longer knew: 404, 410) leaves the sync state, unless a later run
/// sent it again. It stays as a tombstone (`deleted`) dated by the run, so that an earlier run
/// folded again (its rejected records retried) cannot bring it back.
const FOLD_DELETED: &str = "UPDATE sync_state SET deleted = TRUE, record = NULL, run_created_at = $3 \
     WHERE destination_id = $2 AND run_created_at <= $3 AND sync_key IN \
     (SELECT s.sync_key FROM sync_records s JOIN deliveries d ON d.activation_id = s.activation_id AND d.record_index = s.record_index \
     WHERE s.activation_id = $1 AND s.fingerprint IS NULL AND (d.status = 'delivered' OR d.http_status_code IN (404, 410)))";

/// The destination's sync runs whose records are all settled (or, with `NOT`, not).
const SETTLED_SYNC_RUNS: &str = "SELECT a.id, a.created_at FROM activations a WHERE a.destination_id = $1 AND a.sync_key IS NOT NULL \
     AND a.started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.activation_id = a.id AND d.status = 'pending')";

fn activation_from_row(row: &DbRow) -> StoreResult<Activation> {
    Ok(Activation {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        destination_id: uuid_col(row, "destination_id")?,
        event_id: uuid_col(row, "event_id")?,
        total: row.try_get::<i64, _>("total")? as u64,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
        sync: sync_from_row(row)?,
    })
}

fn sync_from_row(row: &DbRow) -> StoreResult<Option<SyncRun>> {
    let Some(key) = row.try_get::<Option<String>, _>("sync_key")? else {
        return Ok(None);
    };
    let n = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
    Ok(Some(SyncRun {
        key,
        mirror: row.try_get("mirror")?,
        delete_event_id: row.try_get::<Option<String>, _>("delete_event_id")?.map(|id| id.parse()).transpose().map_err(|e| StoreError::Internal(format!("bad delete_event_id: {e}")))?,
        counts: SyncCounts {
            new: n("new_records")?,
            changed: n("changed_records")?,
            unchanged: n("unchanged_records")?,
            retried: n("retried_records")?,
            deleted: n("deleted_records")?,
        },
    }))
}

/// The sync run's counts, in the order of `SYNC_COUNT_COLUMNS`.
fn sync_counts(activation: &Activation) -> [i64; 5] {
    let c = activation.sync.as_ref().map(|s| s.counts).unwrap_or_default();
    [c.new, c.changed, c.unchanged, c.retried, c.deleted].map(|n| n as i64)
}

const SYNC_COUNT_COLUMNS: [&str; 5] = ["new_records", "changed_records", "unchanged_records", "retried_records", "deleted_records"];

#[async_trait]
impl ActivationStore for Backend {
    async fn create_activation(&self, activation: &Activation, events: &[&Event]) -> StoreResult<Option<Uuid>> {
        let mut tx = self.write_tx().await?;
        // Taken by every transaction that adds events: two sync runs are checked one at a time.
        lock_events(&mut tx).await?;
        let sync = activation.sync.as_ref();
        if sync.is_some() {
            let stalled_before = activation.created_at - STALLED_UPLOAD;
            if let Some(running) = sync_run_in_progress(&mut *tx, activation.destination_id, stalled_before).await? {
                return Ok(Some(running));
            }
        }
        insert_events(&mut tx, events).await?;
        sqlx::query(
            "INSERT INTO activations (id, account_id, destination_id, event_id, total, created_at, sync_key, mirror, delete_event_id, progressed_at) \
 VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $5)",
        )
        .bind(activation.id.to_string())
        .bind(activation.account_id.to_string())
        .bind(activation.destination_id.to_string())
        .bind(activation.event_id.to_string())
        .bind(activation.created_at)
        .bind(sync.map(|s| s.key.clone()))
        .bind(sync.is_some_and(|s| s.mirror))
        .bind(sync.and_then(|s| s.delete_event_id).map(|id| id.to_string()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(None)
    }

    async fn add_activation_records(&self, activation: &Activation, records: &[RunRecord], now: Millis) -> StoreResult<()> {
        let target = TargetRef { kind: TargetKind::Destination, id: activation.destination_id };
        let delete_event = activation.sync.as_ref().and_then(|s| s.delete_event_id);
        let deliveries = records
            .iter()
            .map(|r| {
                let (event_id, event_type) = match delete_event {
                    Some(id) if r.is_delete() => (id, ACTIVATION_DELETE_EVENT_TYPE),
                    _ if r.is_delete() => return Err(StoreError::Internal("a DELETE of a run that is not a mirror".into())),
                    _ => (activation.event_id, ACTIVATION_EVENT_TYPE),
                };
                Ok(NewDelivery {
                id: DeliveryId::now_v7(),
                account_id: activation.account_id,
                event_id,
                event_type,
                created_at: activation.created_at,
                target,
                params: Some(r.record.clone()),
                due: HELD,
                activation: Some((activation.id, r.index as i64)),
                // Destinations are never ordered: records go in any order.
                seq: 0,
                lease: None,
            })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let keyed: Vec<_> = records.iter().filter_map(|r| r.sync.as_ref().map(|s| (r.index, s))).collect();
        let mut tx = self.write_tx().await?;
        insert_deliveries(&mut tx, &deliveries).await?;
        for chunk in keyed.chunks(INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO sync_records (activation_id, record_index, sync_key, fingerprint) ");
            q.push_values(chunk, |mut row, (index, mark)| {
                row.push_bind(activation.id.to_string()).push_bind(*index as i64).push_bind(mark.key.clone()).push_bind(mark.fingerprint.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE activations SET progressed_at = $1 WHERE id = $2").bind(now).bind(activation.id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_activation(&self, activation: &Activation, now: Millis) -> StoreResult<()> {
        let id = activation.id;
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE deliveries SET next_attempt_at = $1 WHERE activation_id = $2 AND status = 'pending' AND next_attempt_at = $3")
            .bind(now)
            .bind(id.to_string())
            .bind(HELD)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT destination_id FROM activations WHERE id = $1").bind(id.to_string()).fetch_one(&mut *tx).await?;
        notify_work(&mut tx, &[uuid_col(&row, "destination_id")?]).await?;
        let mut q = sqlx::QueryBuilder::<Db>::new("UPDATE activations SET total = ");
        q.push_bind(activation.total as i64).push(", started_at = ").push_bind(now);
        for (column, n) in SYNC_COUNT_COLUMNS.iter().zip(sync_counts(activation)) {
            q.push(format!(", {column} = ")).push_bind(n);
        }
        q.push(" WHERE id = ").push_bind(id.to_string());
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn discard_activation(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        discard_activation(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_activations(&self, account: AccountId, within: Option<&[TargetId]>, limit: u32) -> StoreResult<Vec<(Activation, ActivationCounts)>> {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT * FROM activations WHERE account_id = ");
        q.push_bind(account.to_string()).push(" AND started_at IS NOT NULL");
        push_within(&mut q, "destination_id", within);
        q.push(" ORDER BY created_at DESC LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let activation = activation_from_row(row)?;
            let counts = self.activation_counts(activation.id).await?;
            out.push((activation, counts));
        }
        Ok(out)
    }

    async fn get_activation(&self, account: Option<AccountId>, id: Uuid) -> StoreResult<Option<(Activation, ActivationCounts)>> {
        let row = sqlx::query(
            "SELECT * FROM activations WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR account_id = CAST($2 AS TEXT)) AND started_at IS NOT NULL",
        )
        .bind(id.to_string())
        .bind(account.map(|a| a.to_string()))
        .fetch_optional(&self.reader)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let activation = activation_from_row(&row)?;
                let counts = self.activation_counts(activation.id).await?;
                Ok(Some((activation, counts)))
            }
        }
    }

    async fn activation_records(
        &self,
        account: AccountId,
        id: Uuid,
        after_index: Option<u64>,
        filter: Option<RecordFilter>,
        limit: u32,
    ) -> StoreResult<Vec<ActivationRecord>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "SELECT id, record_index, status, http_status_code, attempt_count, last_error, params FROM deliveries WHERE account_id = ",
        );
        q.push_bind(account.to_string()).push(" AND activation_id = ").push_bind(id.to_string());
        q.push(" AND record_index > ").push_bind(after_index.map_or(-1, |i| i as i64));
        // The outcomes split failed records exactly as ACTIVATION_COUNTS does.
        match filter {
            None => {}
            Some(RecordFilter::Status(status)) => {
                q.push(" AND status = ").push_bind(status.as_str());
            }
            Some(RecordFilter::ClientErrors) => {
                q.push(" AND status = 'failed' AND http_status_code BETWEEN 400 AND 499 AND last_error <> ").push_bind(CANCELLED);
            }
            Some(RecordFilter::Cancelled) => {
                q.push(" AND status = 'failed' AND last_error = ").push_bind(CANCELLED);
            }
            Some(RecordFilter::ServerErrors) => {
                q.push(" AND status = 'failed' AND (last_error IS NULL OR last_error <> ").push_bind(CANCELLED);
                q.push(") AND (http_status_code IS NULL OR http_status_code NOT BETWEEN 400 AND 499 OR last_error IS NULL)");
            }
        }
        q.push(" ORDER BY record_index LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(ActivationRecord {
                    index: r.try_get::<i64, _>("record_index")? as u64,
                    delivery_id: uuid_col(r, "id")?,
                    status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
                    http_status_code: r.try_get::<Option<i64>, _>("http_status_code")?.map(|c| c as u16),
                    attempt_count: r.try_get::<i64, _>("attempt_count")? as u32,
                    last_error: r.try_get("last_error")?,
                    record: r.try_get("params")?,
                })
            })
            .collect()
    }

    async fn cancel_activation(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE activations SET cancelled_at = $1 WHERE account_id = $2 AND id = $3 AND started_at IS NOT NULL")
            .bind(now)
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Records in flight (leased) finish their attempt; the others are settled now.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = $1, completed_at = $2, updated_at = $2, lease_token = NULL \
 WHERE activation_id = $3 AND status = 'pending' AND (lease_token IS NULL OR next_attempt_at <= $2)",
        )
        .bind(CANCELLED)
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn retry_rejected(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        let mut q = requeue(now);
        q.push(" AND account_id = ").push_bind(account.to_string()).push(" AND activation_id = ").push_bind(id.to_string());
        q.push(" AND status = 'failed' AND http_status_code BETWEEN 400 AND 499 AND last_error <> ").push_bind(CANCELLED);
        let requeued = q.build().execute(&mut *tx).await?.rows_affected();
        if requeued > 0 {
            // Settled again, the run is folded into the sync state again.
            let row = sqlx::query("UPDATE activations SET synced_at = NULL WHERE id = $1 RETURNING destination_id")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            notify_work(&mut tx, &[uuid_col(&row, "destination_id")?]).await?;
        }
        tx.commit().await?;
        Ok(requeued)
    }

    async fn sync_run_in_progress(&self, destination: TargetId, stalled_before: Millis) -> StoreResult<Option<Uuid>> {
        sync_run_in_progress(&self.reader, destination, stalled_before).await
    }

    async fn refresh_sync_state(&self, destination: TargetId, now: Millis) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let runs = sqlx::query(&format!("{SETTLED_SYNC_RUNS} AND a.synced_at IS NULL ORDER BY a.created_at"))
            .bind(destination.to_string())
            .fetch_all(&mut *tx)
            .await?;
        for run in &runs {
            let (id, created_at): (String, i64) = (run.try_get("id")?, run.try_get("created_at")?);
            sqlx::query(FOLD_SENT).bind(&id).bind(CANCELLED).execute(&mut *tx).await?;
            sqlx::query(FOLD_DELETED).bind(&id).bind(destination.to_string()).bind(created_at).execute(&mut *tx).await?;
            sqlx::query("UPDATE activations SET synced_at = $1 WHERE id = $2").bind(now).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn sync_state_of(&self, destination: TargetId, keys: &[String]) -> StoreResult<HashMap<String, KeyState>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT sync_key, fingerprint, rejected FROM sync_state WHERE NOT deleted AND destination_id = ");
        q.push_bind(destination.to_string()).push(" AND sync_key IN ");
        push_list(&mut q, keys);
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("sync_key")?, KeyState { fingerprint: r.try_get("fingerprint")?, rejected: r.try_get("rejected")? })))
            .collect()
    }

    async fn synced_keys(&self, destination: TargetId, after: Option<&str>, limit: u32) -> StoreResult<Vec<(String, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT sync_key, record FROM sync_state WHERE NOT deleted AND destination_id = $1 AND (CAST($2 AS TEXT) IS NULL OR sync_key > CAST($2 AS TEXT)) \
 ORDER BY sync_key LIMIT $3",
        )
        .bind(destination.to_string())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("sync_key")?, r.try_get("record")?))).collect()
    }
}

/// A sync run of the destination still sending (records pending) or still being uploaded (not
/// released, and progressing since `stalled_before`).
async fn sync_run_in_progress<'c>(db: impl sqlx::Executor<'c, Database = Db>, destination: TargetId, stalled_before: Millis) -> StoreResult<Option<Uuid>> {
    let row = sqlx::query(
        "SELECT a.id FROM activations a WHERE a.destination_id = $1 AND a.sync_key IS NOT NULL AND (\
 (a.started_at IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries d WHERE d.activation_id = a.id AND d.status = 'pending')) \
 OR (a.started_at IS NULL AND a.progressed_at >= $2)) LIMIT 1",
    )
    .bind(destination.to_string())
    .bind(stalled_before)
    .fetch_optional(db)
    .await?;
    row.map(|r| uuid_col(&r, "id")).transpose()
}

/// Deletes an activation not yet released with everything it stored: its deliveries, events and
/// sync records. A released one is left alone (a discard racing its release loses).
pub(super) async fn discard_activation(tx: &mut Tx, id: Uuid) -> StoreResult<()> {
    let unreleased: Option<String> =
        sqlx::query_scalar("SELECT id FROM activations WHERE id = $1 AND started_at IS NULL").bind(id.to_string()).fetch_optional(&mut **tx).await?;
    if unreleased.is_none() {
        return Ok(());
    }
    sqlx::query("DELETE FROM deliveries WHERE activation_id = $1").bind(id.to_string()).execute(&mut **tx).await?;
    // Deleting its events takes the activation along (ON DELETE CASCADE), and its sync records.
    sqlx::query("DELETE FROM events WHERE id IN (SELECT event_id FROM activations WHERE id = $1) OR id IN (SELECT delete_event_id FROM activations WHERE id = $1)")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM activations WHERE id = $1").bind(id.to_string()).execute(&mut **tx).await?;
    Ok(())
}
