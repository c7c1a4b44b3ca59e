//! `DeliveryQueue`: the engine's cycles (results, health, claims), due hints, switching targets
//! off, and the ownership of targets (heartbeat, takeover, hand-over).

use super::common::*;
use super::{LOCK_ROW, SKIP_LOCKED};

#[async_trait]
impl DeliveryQueue for Backend {
    async fn record_and_claim(&self, results: &[AttemptResult], claims: &[ClaimOrder]) -> StoreResult<Cycle> {
        let mut tx = self.cycle_tx().await?;
        for chunk in results.chunks(RECORD_CHUNK) {
            record_attempts_in(&mut tx, chunk).await?;
        }
        let health = update_health(&mut tx, results).await?;
        let mut claimed = Vec::with_capacity(claims.len());
        for order in claims {
            claimed.push(claim_in(&mut tx, order).await?);
        }
        tx.commit().await?;
        Ok(Cycle { claimed, health })
    }

    async fn disable_target(&self, id: TargetId, reason: &str, now: Millis, event: &Event) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE targets SET is_active = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND is_active")
            .bind(reason)
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let disabled = done.rows_affected() == 1;
        if disabled {
            accept_in(&mut tx, std::slice::from_ref(event), &NoLeases).await?;
        }
        tx.commit().await?;
        Ok(disabled)
    }

    async fn due_hints(&self, targets: &[TargetId]) -> StoreResult<Vec<(TargetId, Option<Millis>)>> {
        let mut hints = Vec::with_capacity(targets.len());
        for chunk in targets.chunks(RECORD_CHUNK) {
            hints.extend(due_hints_in(&self.reader, chunk).await?);
        }
        Ok(hints)
    }

    async fn listen_for_work(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<TargetId>>>> {
        self.listen().await
    }

    async fn heartbeat(&self, node: &NodeInfo, now: Millis, lease_until: Millis, forget_before: Millis) -> StoreResult<Vec<OwnedTarget>> {
        let mut tx = self.cycle_tx().await?;
        sqlx::query(
            "INSERT INTO nodes (id, host, pid, process_start, heartbeat_at) VALUES ($1, $2, $3, $4, $5) \
 ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(node.id.to_string())
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(node.process_start)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1").bind(forget_before).execute(&mut *tx).await?;
        // A lease handed over stays handed over.
        sqlx::query("UPDATE target_owners SET expires_at = $1 WHERE node_id = $2 AND expires_at > 0")
            .bind(lease_until)
            .bind(node.id.to_string())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(&format!("SELECT {OWNED_COLUMNS} WHERE o.node_id = $1 AND o.expires_at > 0"))
            .bind(node.id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(|row| owned_from_row(row, 0)).collect()
    }

    async fn live_nodes(&self, since: Millis) -> StoreResult<Vec<NodeInfo>> {
        let rows = sqlx::query("SELECT id, host, pid, process_start FROM nodes WHERE heartbeat_at >= $1").bind(since).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok(NodeInfo {
                    id: uuid_col(row, "id")?,
                    host: row.try_get("host")?,
                    pid: row.try_get::<i64, _>("pid")? as u32,
                    process_start: row.try_get("process_start")?,
                })
            })
            .collect()
    }

    async fn takeover_candidates(&self, node: Uuid, now: Millis, exited: &[Uuid], limit: u32) -> StoreResult<Vec<TargetId>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "SELECT t.id FROM targets t LEFT JOIN target_owners o ON o.target_id = t.id WHERE o.target_id IS NULL OR o.expires_at <= 0 \
 OR (o.node_id <> ",
        );
        // Its own leases a node renews (or has lost); one handed over, by anyone, may be taken.
        q.push_bind(node.to_string()).push(" AND o.expires_at <= ").push_bind(now).push(")");
        for id in exited {
            q.push(" OR o.node_id = ").push_bind(id.to_string());
        }
        q.push(" ORDER BY t.id LIMIT ").push_bind(i64::from(limit));
        q.build().fetch_all(&self.reader).await?.iter().map(|row| uuid_col(row, "id")).collect()
    }

    async fn take_targets(
        &self,
        node: Uuid,
        targets: &[(TargetId, Uuid)],
        exited: &[Uuid],
        now: Millis,
        lease_until: Millis,
        request_timeout_ms: Millis,
    ) -> StoreResult<Vec<OwnedTarget>> {
        let mut tx = self.write_tx().await?;
        let mut taken = Vec::with_capacity(targets.len());
        for take in targets {
            taken.extend(take_target(&mut tx, node, *take, exited, now, lease_until, request_timeout_ms).await?);
        }
        tx.commit().await?;
        Ok(taken)
    }

    async fn release_targets(&self, node: Uuid, targets: &[(TargetId, Uuid)], now: Millis) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (target, token) in targets {
            sqlx::query("UPDATE deliveries SET lease_token = NULL WHERE target_id = $1 AND lease_token = $2 AND status = 'pending'")
                .bind(target.to_string())
                .bind(token.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE target_owners SET expires_at = $4 WHERE target_id = $1 AND node_id = $2 AND token = $3")
                .bind(target.to_string())
                .bind(node.to_string())
                .bind(token.to_string())
                .bind(-now)
                .execute(&mut *tx)
                .await?;
        }
        let released: Vec<TargetId> = targets.iter().map(|(target, _)| *target).collect();
        notify_work(&mut tx, &released).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Applies each target's streak change (one statement for the lot) and returns their health.
async fn update_health(tx: &mut Tx, results: &[AttemptResult]) -> StoreResult<Vec<TargetHealth>> {
    if results.iter().all(|r| r.status == DeliveryStatus::Delivered && !r.target_failing) {
        // Successes on healthy targets: nothing to change.
        return Ok(Vec::new());
    }
    let changes = health::fold_streaks(results.iter().map(|r| AttemptSummary {
        target_id: r.target.id,
        succeeded: r.status == DeliveryStatus::Delivered,
        finished_at: r.attempt.started_at + r.attempt.duration_ms,
    }));
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "UPDATE targets SET \
         failure_streak = CASE WHEN v.column2 THEN v.column3 ELSE targets.failure_streak + v.column3 END, \
         failing_since = CASE WHEN v.column2 THEN v.column4 ELSE COALESCE(targets.failing_since, v.column4) END FROM (",
    );
    q.push_values(&changes, |mut row, c| {
        row.push_bind(c.target_id.to_string()).push_bind(c.reset).push_bind(i64::from(c.failures)).push_bind(c.first_failure_at);
    });
    // A success on a healthy target changes nothing: leave its row alone (no write, no row lock
    // for other nodes to wait on).
    q.push(
        ") AS v WHERE targets.id = v.column1 \
         AND NOT (v.column2 AND v.column3 = 0 AND targets.failure_streak = 0 AND targets.failing_since IS NULL) \
         RETURNING targets.id, targets.account_id, targets.is_active, targets.failure_streak, targets.failing_since",
    );
    q.build()
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok(TargetHealth {
                target_id: uuid_col(row, "id")?,
                account_id: uuid_col(row, "account_id")?,
                is_active: row.try_get("is_active")?,
                failure_streak: row.try_get::<i64, _>("failure_streak")? as u32,
                failing_since: row.try_get("failing_since")?,
            })
        })
        .collect()
}

/// Results per statement: well under both databases' limits on bound parameters.
const RECORD_CHUNK: usize = 256;

/// Inserts the attempts and applies the deliveries' new states, two statements for the lot. A
/// retry leaves its owner's hands (to be claimed when due) unless it is an ordered target's head.
async fn record_attempts_in(tx: &mut Tx, results: &[AttemptResult]) -> StoreResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    // A delivery deleted meanwhile (with its target or account) takes no attempt: its result has
    // nothing left to be recorded against, and must not fail the others'.
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO attempts (id, delivery_id, attempt_number, started_at, duration_ms, http_status_code, \
         error_kind, error_message, response_excerpt, manual, response_headers, sent_by) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, v.column10, v.column11, \
         v.column12 FROM (",
    );
    q.push_values(results, |mut row, r| {
        let a = &r.attempt;
        row.push_bind(a.id.to_string())
            .push_bind(a.delivery_id.to_string())
            .push_bind(i64::from(a.attempt_number))
            .push_bind(a.started_at)
            .push_bind(a.duration_ms)
            .push_bind(a.http_status_code.map(i64::from))
            .push_bind(a.error_kind.clone())
            .push_bind(a.error_message.clone())
            .push_bind(a.response_excerpt.clone())
            .push_bind(a.manual)
            .push_bind((!a.response_headers.is_empty()).then(|| serde_json::to_string(&a.response_headers).expect("strings serialize")))
            .push_bind(a.sent_by.map(|id| id.to_string()));
    });
    q.push(") AS v WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.id = v.column2)");
    q.build().execute(&mut **tx).await?;
    // A VALUES list names its columns column1, column2, … in both dialects.
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "UPDATE deliveries SET status = v.column1, attempt_count = v.column2, next_attempt_at = v.column3, \
         lease_token = CASE WHEN v.column10 THEN deliveries.lease_token ELSE NULL END, \
         manual_retry = FALSE, http_status_code = v.column4, last_error = v.column5, updated_at = v.column6, completed_at = v.column7 \
         FROM (",
    );
    q.push_values(results, |mut row, r| {
        let a = &r.attempt;
        let finished_at = a.started_at + a.duration_ms;
        row.push_bind(r.status.as_str())
            .push_bind(i64::from(a.attempt_number))
            .push_bind(r.next_attempt_at)
            .push_bind(a.http_status_code.map(i64::from))
            .push_bind(r.last_error.clone())
            .push_bind(finished_at)
            .push_bind((r.status != DeliveryStatus::Pending).then_some(finished_at))
            .push_bind(a.delivery_id.to_string())
            .push_bind(r.lease_token.to_string())
            .push_bind(r.keep_lease && r.status == DeliveryStatus::Pending);
    });
    q.push(") AS v WHERE deliveries.id = v.column8 AND deliveries.lease_token = v.column9");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// For each target, when its earliest pending delivery that nobody holds falls due (rows held
/// back with an activation that is not released yet do not count).
async fn due_hints_in<'e, E>(executor: E, targets: &[TargetId]) -> StoreResult<Vec<(TargetId, Option<Millis>)>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<Db>::new(
        "SELECT t.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.target_id = t.id AND d.status = 'pending' \
         AND d.lease_token IS NULL AND d.next_attempt_at < ",
    );
    q.push_bind(HELD).push(") AS due FROM targets t WHERE t.id IN (");
    let mut list = q.separated(", ");
    for target in targets {
        list.push_bind(target.to_string());
    }
    q.push(")");
    q.build().fetch_all(executor).await?.iter().map(|row| Ok((uuid_col(row, "id")?, row.try_get("due")?))).collect()
}

/// Leases a target's deliveries that nobody holds to its owner's token, with what their attempts
/// need (events, the target's settings version), and says when the earliest left falls due.
async fn claim_in(tx: &mut Tx, order: &ClaimOrder) -> StoreResult<Claimed> {
    let mut q = sqlx::QueryBuilder::<Db>::new("UPDATE deliveries SET lease_token = ");
    q.push_bind(order.token.to_string())
        .push(" WHERE id IN (SELECT d.id FROM deliveries d WHERE d.target_id = ")
        .push_bind(order.target.to_string())
        .push(" AND d.status = 'pending' AND d.lease_token IS NULL AND d.next_attempt_at < ")
        .push_bind(HELD);
    match order.ordering {
        Ordering::Unordered => q.push(" AND d.next_attempt_at <= ").push_bind(order.now).push(" ORDER BY d.next_attempt_at, d.id"),
        // The head of an ordered target waits for its retry in its owner's queue.
        Ordering::Fifo => q.push(" ORDER BY d.event_seq"),
    };
    q.push(" LIMIT ").push_bind(i64::from(order.limit));
    // Rows another transaction holds (a manual retry) are skipped, not waited for.
    q.push(SKIP_LOCKED);
    // What the attempt needs comes back with the claim, through key lookups (no second round trip).
    q.push(
        ") RETURNING id, event_id, target_id, target_kind, attempt_count, manual_retry, params, account_id, event_type, \
         next_attempt_at, event_seq, \
         (SELECT e.workspace_id FROM events e WHERE e.id = deliveries.event_id) AS workspace_id, \
         (SELECT e.data FROM events e WHERE e.id = deliveries.event_id) AS data, \
         (SELECT e.idempotency_key FROM events e WHERE e.id = deliveries.event_id) AS idempotency_key, \
         (SELECT e.created_at FROM events e WHERE e.id = deliveries.event_id) AS event_created_at, \
         (SELECT e.traceparent FROM events e WHERE e.id = deliveries.event_id) AS traceparent, \
         (SELECT t.updated_at FROM targets t WHERE t.id = deliveries.target_id) AS target_version",
    );
    let rows = q.build().fetch_all(&mut **tx).await?;
    // Fan-out claims one event for many targets: they share it.
    let mut events: HashMap<EventId, Arc<Event>> = HashMap::new();
    let mut claimed = rows
        .iter()
        .map(|row| {
            let event_id: EventId = uuid_col(row, "event_id")?;
            let event = match events.get(&event_id) {
                Some(event) => event.clone(),
                None => {
                    let event = Arc::new(event_from_columns(row, "event_id", "event_created_at")?);
                    events.insert(event_id, event.clone());
                    event
                }
            };
            let kind: String = row.try_get("target_kind")?;
            let place = (row.try_get::<i64, _>("event_seq")?, row.try_get::<Millis, _>("next_attempt_at")?);
            let delivery = ClaimedDelivery {
                delivery_id: uuid_col(row, "id")?,
                lease_token: order.token,
                target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
                target_version: row.try_get("target_version")?,
                attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
                manual_retry: row.try_get("manual_retry")?,
                due_at: place.1,
                params: row.try_get("params")?,
                event,
            };
            Ok((place, delivery))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING keeps no order: restore the claim's.
    match order.ordering {
        Ordering::Unordered => claimed.sort_by_key(|((_, due), d)| (*due, d.delivery_id)),
        Ordering::Fifo => claimed.sort_by_key(|((seq, _), _)| *seq),
    }
    let next_due = due_hints_in(&mut **tx, &[order.target]).await?.first().and_then(|(_, due)| *due);
    Ok(Claimed { target: order.target, deliveries: claimed.into_iter().map(|(_, d)| d).collect(), next_due })
}

const OWNED_COLUMNS: &str = "o.target_id, o.token, o.expires_at, t.kind, t.updated_at, t.is_active, t.rate_limit, t.ordering, \
     t.failure_streak, t.failing_since FROM target_owners o JOIN targets t ON t.id = o.target_id";

fn owned_from_row(row: &DbRow, settle_until: Millis) -> StoreResult<OwnedTarget> {
    let kind: String = row.try_get("kind")?;
    Ok(OwnedTarget {
        target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
        token: uuid_col(row, "token")?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        failing: row.try_get::<i64, _>("failure_streak")? > 0 || row.try_get::<Option<Millis>, _>("failing_since")?.is_some(),
        expires_at: row.try_get("expires_at")?,
        settle_until,
    })
}

/// Takes one target over if it is still a candidate; returns it with when it may be sent to.
async fn take_target(
    tx: &mut Tx,
    node: Uuid,
    (target, token): (TargetId, Uuid),
    exited: &[Uuid],
    now: Millis,
    lease_until: Millis,
    request_timeout_ms: Millis,
) -> StoreResult<Option<OwnedTarget>> {
    let row = sqlx::query(&format!("SELECT node_id, token, expires_at FROM target_owners WHERE target_id = $1{}", LOCK_ROW))
        .bind(target.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let last = match &row {
        None => {
            let done = sqlx::query(
                "INSERT INTO target_owners (target_id, node_id, token, expires_at) SELECT id, $2, $3, $4 FROM targets WHERE id = $1 \
     ON CONFLICT (target_id) DO NOTHING",
            )
            .bind(target.to_string())
            .bind(node.to_string())
            .bind(token.to_string())
            .bind(lease_until)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            LastOwner::None
        }
        Some(row) => {
            let (owner, old_token, expires_at): (Uuid, Uuid, Millis) =
                (uuid_col(row, "node_id")?, uuid_col(row, "token")?, row.try_get("expires_at")?);
            let last = match () {
                _ if expires_at <= 0 => LastOwner::Released { at: -expires_at },
                _ if exited.contains(&owner) && owner != node => LastOwner::Exited,
                _ if expires_at <= now => LastOwner::Expired { expired_at: expires_at },
                _ => return Ok(None),
            };
            let done = sqlx::query("UPDATE target_owners SET node_id = $1, token = $2, expires_at = $3 WHERE target_id = $4 AND token = $5")
                .bind(node.to_string())
                .bind(token.to_string())
                .bind(lease_until)
                .bind(target.to_string())
                .bind(old_token.to_string())
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            last
        }
    };
    // What the last owner held is the new owner's to claim.
    sqlx::query("UPDATE deliveries SET lease_token = NULL WHERE target_id = $1 AND lease_token IS NOT NULL AND status = 'pending'")
        .bind(target.to_string())
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query(&format!("SELECT {OWNED_COLUMNS} WHERE o.target_id = $1")).bind(target.to_string()).fetch_one(&mut **tx).await?;
    Ok(Some(owned_from_row(&row, ownership::settle_until(last, now, request_timeout_ms))?))
}
