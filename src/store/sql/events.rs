//! `EventStore`: events in (accepting with fan-out, direct sends) and the pull API.

use super::common::*;

#[async_trait]
impl EventStore for Backend {
    async fn accept_leasing(&self, events: &[Event], plan: &dyn LeasePlan) -> StoreResult<Accepted> {
        let mut tx = self.write_tx().await?;
        let accepted = accept_in(&mut tx, events, plan).await?;
        tx.commit().await?;
        Ok(accepted)
    }

    async fn enqueue_direct(&self, event: &Event, target: TargetRef, params: &str) -> StoreResult<Delivery> {
        let mut tx = self.write_tx().await?;
        lock_events(&mut tx).await?;
        let seq = insert_event(&mut tx, event).await?;
        let delivery = NewDelivery { params: Some(params.to_owned()), ..NewDelivery::of(event, target, seq) };
        let id = delivery.id;
        insert_deliveries(&mut tx, &[delivery]).await?;
        notify_work(&mut tx, &[target.id]).await?;
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1")).bind(id.to_string()).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        delivery_from_row(&row)
    }

    async fn list_events(&self, account: AccountId, filter: &EventFilter) -> StoreResult<Vec<(i64, Event)>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!("SELECT seq, {EVENT_COLUMNS} FROM events WHERE account_id = "));
        q.push_bind(account.to_string()).push(" AND seq > ").push_bind(filter.after_seq);
        if let Some(since) = filter.since {
            q.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND created_at < ").push_bind(until);
        }
        if let Some(ws) = filter.workspace_id {
            q.push(" AND workspace_id = ").push_bind(ws.to_string());
        }
        if !filter.types.is_empty() {
            q.push(" AND event_type IN (");
            let mut list = q.separated(", ");
            for t in &filter.types {
                list.push_bind(t.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(filter.limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, event_from_row(r)?))).collect()
    }
}
