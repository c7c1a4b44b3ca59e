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

const ACTIVATION_COUNTS: &str = "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS succeeded, \
     COALESCE(SUM(CASE WHEN status = 'failed' AND http_status_code BETWEEN 400 AND 499 AND last_error <> $2 THEN 1 ELSE 0 END), 0) AS client_errors, \
     COALESCE(SUM(CASE WHEN status = 'failed' AND last_error = $2 THEN 1 ELSE 0 END), 0) AS cancelled, \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     MAX(completed_at) AS finished_at \
     FROM deliveries WHERE activation_id = $1";

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
    })
}

#[async_trait]
impl ActivationStore for Backend {
    async fn create_activation(&self, activation: &Activation, event: &Event) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        lock_events(&mut tx).await?;
        insert_event(&mut tx, event).await?;
        sqlx::query("INSERT INTO activations (id, account_id, destination_id, event_id, total, created_at) VALUES ($1, $2, $3, $4, 0, $5)")
            .bind(activation.id.to_string())
            .bind(activation.account_id.to_string())
            .bind(activation.destination_id.to_string())
            .bind(activation.event_id.to_string())
            .bind(activation.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_activation_records(&self, activation: &Activation, first_index: u64, records: &[String]) -> StoreResult<()> {
        let target = TargetRef { kind: TargetKind::Destination, id: activation.destination_id };
        let deliveries: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, record)| NewDelivery {
                id: DeliveryId::now_v7(),
                account_id: activation.account_id,
                event_id: activation.event_id,
                event_type: ACTIVATION_EVENT_TYPE,
                created_at: activation.created_at,
                target,
                params: Some(record.clone()),
                due: HELD,
                activation: Some((activation.id, (first_index + i as u64) as i64)),
                // Destinations are never ordered: records go in any order.
                seq: 0,
                lease: None,
            })
            .collect();
        let mut tx = self.write_tx().await?;
        insert_deliveries(&mut tx, &deliveries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_activation(&self, id: Uuid, total: u64, now: Millis) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE deliveries SET next_attempt_at = $1 WHERE activation_id = $2 AND status = 'pending' AND next_attempt_at = $3")
            .bind(now)
            .bind(id.to_string())
            .bind(HELD)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT destination_id FROM activations WHERE id = $1").bind(id.to_string()).fetch_one(&mut *tx).await?;
        notify_work(&mut tx, &[uuid_col(&row, "destination_id")?]).await?;
        sqlx::query("UPDATE activations SET total = $1, started_at = $2 WHERE id = $3")
            .bind(total as i64)
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn discard_activation(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM deliveries WHERE activation_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM events WHERE id = (SELECT event_id FROM activations WHERE id = $1)").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM activations WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
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
}
