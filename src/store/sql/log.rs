//! `DeliveryLog`: deliveries and attempts, manual retries and recoveries (the one re-queue
//! statement), counts.

use super::common::*;

fn attempt_from_row(row: &DbRow) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: uuid_col(row, "id")?,
        delivery_id: uuid_col(row, "delivery_id")?,
        attempt_number: row.try_get::<i64, _>("attempt_number")? as u32,
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        http_status_code: row.try_get::<Option<i64>, _>("http_status_code")?.map(|c| c as u16),
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        response_excerpt: row.try_get("response_excerpt")?,
        response_headers: row.try_get::<Option<String>, _>("response_headers")?.map_or(Ok(Vec::new()), |text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("bad JSON in response_headers: {e}")))
        })?,
        manual: row.try_get("manual")?,
        sent_by: opt_uuid_col(row, "sent_by")?,
    })
}

/// ` AND …` picking the deliveries of a recovery's set.
fn push_failed_set(q: &mut sqlx::QueryBuilder<'_, Db>, set: &FailedSet) {
    q.push(" AND target_id = ")
        .push_bind(set.target.to_string())
        .push(" AND status = 'failed' AND created_at >= ")
        .push_bind(set.window.since)
        .push(" AND created_at < ")
        .push_bind(set.window.until)
        .push(" AND completed_at <= ")
        .push_bind(set.as_of)
        .push(" AND (last_error IS NULL OR last_error <> ")
        .push_bind(CANCELLED)
        .push(")");
}

#[async_trait]
impl DeliveryLog for Backend {
    async fn list_deliveries(&self, account: AccountId, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = "));
        q.push_bind(account.to_string());
        if let Some(target) = filter.target_id {
            q.push(" AND target_id = ").push_bind(target.to_string());
        }
        push_within(&mut q, "target_id", filter.within.as_deref());
        if let Some(kind) = filter.target_kind {
            q.push(" AND target_kind = ").push_bind(kind.as_str());
        }
        if let Some(event_type) = &filter.event_type {
            q.push(" AND event_type = ").push_bind(event_type.clone());
        }
        if let Some(after) = filter.after {
            q.push(" AND (created_at < ").push_bind(after.created_at);
            q.push(" OR (created_at = ").push_bind(after.created_at).push(" AND id < ").push_bind(after.id.to_string()).push("))");
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(since) = filter.since {
            q.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND created_at < ").push_bind(until);
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_delivery(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn delivery_work(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<ClaimedDelivery>> {
        let row = sqlx::query(
            "SELECT d.id, d.event_id, d.target_id, d.target_kind, d.attempt_count, d.manual_retry, d.params, d.next_attempt_at, \
 e.account_id, e.event_type, e.workspace_id, e.data, e.idempotency_key, e.created_at AS event_created_at, e.traceparent, t.updated_at AS target_version \
 FROM deliveries d JOIN events e ON e.id = d.event_id JOIN targets t ON t.id = d.target_id WHERE d.account_id = $1 AND d.id = $2",
        )
        .bind(account.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("target_kind")?;
        Ok(Some(ClaimedDelivery {
            delivery_id: uuid_col(&row, "id")?,
            // Not leased: nothing is sent with it.
            lease_token: Uuid::nil(),
            target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(&row, "target_id")? },
            target_version: row.try_get("target_version")?,
            attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
            manual_retry: row.try_get("manual_retry")?,
            due_at: row.try_get("next_attempt_at")?,
            params: row.try_get("params")?,
            event: Arc::new(event_from_columns(&row, "event_id", "event_created_at")?),
        }))
    }

    async fn list_attempts(&self, account: AccountId, delivery_id: DeliveryId) -> StoreResult<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
 WHERE d.account_id = $1 AND d.id = $2 ORDER BY a.attempt_number, a.started_at",
        )
        .bind(account.to_string())
        .bind(delivery_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn retry_delivery(&self, account: AccountId, id: DeliveryId, now: Millis) -> StoreResult<RetryRequest> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        let mut q = requeue(now);
        q.push(" AND account_id = ").push_bind(account.to_string()).push(" AND id = ").push_bind(id.to_string());
        let done = q.build().execute(&mut *tx).await?;
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if done.rows_affected() > 0
            && let Some(row) = &row
        {
            notify_work(&mut tx, &[uuid_col(row, "target_id")?]).await?;
        }
        tx.commit().await?;
        let Some(delivery) = row.as_ref().map(delivery_from_row).transpose()? else {
            return Ok(RetryRequest::NotFound);
        };
        Ok(match done.rows_affected() {
            0 if delivery.payload_expired_at.is_some() => RetryRequest::PayloadExpired,
            0 => RetryRequest::InFlight,
            _ => RetryRequest::Requeued(delivery),
        })
    }

    async fn delivery_counts(&self, account: AccountId, target: TargetId, window: Window) -> StoreResult<DeliveryCounts> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
 COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered, \
 COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed \
 FROM deliveries WHERE account_id = $1 AND target_id = $2 AND created_at >= $3 AND created_at < $4",
        )
        .bind(account.to_string())
        .bind(target.to_string())
        .bind(window.since)
        .bind(window.until)
        .fetch_one(&self.reader)
        .await?;
        let n = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
        Ok(DeliveryCounts { pending: n("pending")?, delivered: n("delivered")?, failed: n("failed")? })
    }

    async fn delivery_timeline(
        &self,
        account: AccountId,
        targets: Option<&[TargetId]>,
        window: Window,
        bucket_ms: Millis,
    ) -> StoreResult<(Vec<CountRow>, Vec<LatencyRow>)> {
        // Integer division numbers the buckets alike on both backends (BIGINT operands).
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT (created_at - ");
        q.push_bind(window.since).push(") / ").push_bind(bucket_ms);
        q.push(" AS bucket, target_id, target_kind, status, COUNT(*) AS n FROM deliveries WHERE account_id = ").push_bind(account.to_string());
        q.push(" AND created_at >= ").push_bind(window.since).push(" AND created_at < ").push_bind(window.until);
        push_within(&mut q, "target_id", targets);
        q.push(" GROUP BY bucket, target_id, target_kind, status");
        let counts = q.build().fetch_all(&self.reader).await?.iter().map(count_row).collect::<StoreResult<Vec<_>>>()?;

        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT (a.started_at - ");
        q.push_bind(window.since).push(") / ").push_bind(bucket_ms);
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both backends answer an integer.
        q.push(
            " AS bucket, d.target_id, COUNT(*) AS n, CAST(SUM(a.duration_ms) AS BIGINT) AS total_ms, MAX(a.duration_ms) AS max_ms \
 FROM attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.account_id = ",
        )
        .push_bind(account.to_string());
        q.push(" AND a.started_at >= ").push_bind(window.since).push(" AND a.started_at < ").push_bind(window.until);
        push_within(&mut q, "d.target_id", targets);
        q.push(" GROUP BY bucket, d.target_id");
        let latencies = q.build().fetch_all(&self.reader).await?.iter().map(latency_row).collect::<StoreResult<Vec<_>>>()?;
        Ok((counts, latencies))
    }

    async fn count_failed(&self, set: &FailedSet) -> StoreResult<u64> {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT COUNT(*) FROM deliveries WHERE 1 = 1");
        push_failed_set(&mut q, set);
        let n: i64 = q.build_query_scalar().fetch_one(&self.reader).await?;
        Ok(n as u64)
    }

    async fn requeue_failed(
        &self,
        set: &FailedSet,
        after: Option<Position<DeliveryId>>,
        limit: u32,
        now: Millis,
    ) -> StoreResult<BatchOutcome<DeliveryId>> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        let mut pick = sqlx::QueryBuilder::<Db>::new("SELECT created_at, id FROM deliveries WHERE 1 = 1");
        push_failed_set(&mut pick, set);
        push_after(&mut pick, "", after);
        pick.push(" ORDER BY created_at, id LIMIT ").push_bind(i64::from(limit));
        let rows = pick.build().fetch_all(&mut *tx).await?;
        let Some(last) = rows.last().map(position_from_row::<DeliveryId>).transpose()? else {
            tx.commit().await?;
            return Ok(BatchOutcome::default());
        };
        // The same rows, by range: the ones whose payload expired stay as they are.
        let mut q = requeue(now);
        push_failed_set(&mut q, set);
        push_after(&mut q, "", after);
        q.push(" AND (created_at, id) <= (").push_bind(last.created_at).push(", ").push_bind(last.id.to_string()).push(")");
        let changed = q.build().execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            notify_work(&mut tx, &[set.target]).await?;
        }
        tx.commit().await?;
        Ok(BatchOutcome { examined: rows.len() as u64, changed, last: Some(last) })
    }

    async fn pending_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").fetch_one(&self.reader).await?;
        Ok(n as u64)
    }
}

fn count_row(row: &DbRow) -> StoreResult<CountRow> {
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("target_kind")?;
    Ok(CountRow {
        bucket: row.try_get("bucket")?,
        target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
        status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
        count: row.try_get::<i64, _>("n")? as u64,
    })
}

fn latency_row(row: &DbRow) -> StoreResult<LatencyRow> {
    Ok(LatencyRow {
        bucket: row.try_get("bucket")?,
        target: uuid_col(row, "target_id")?,
        latency: Latency {
            attempts: row.try_get::<i64, _>("n")? as u64,
            total_ms: row.try_get("total_ms")?,
            max_ms: row.try_get("max_ms")?,
        },
    })
}
