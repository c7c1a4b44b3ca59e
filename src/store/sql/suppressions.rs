//! `SuppressionStore`: the addresses an account's mailers never send to again.

use super::common::*;
use crate::domain::suppression::{SuppressionFilter, SuppressionReason};

const SUPPRESSION_COLUMNS: &str = "account_id, address, reason, provider, mailer_id, detail, first_seen, last_event";

pub(super) fn suppression_from_row(row: &DbRow) -> StoreResult<Suppression> {
    let reason: String = row.try_get("reason")?;
    let provider: Option<String> = row.try_get("provider")?;
    Ok(Suppression {
        account_id: uuid_col(row, "account_id")?,
        address: row.try_get("address")?,
        reason: SuppressionReason::parse(&reason).ok_or_else(|| StoreError::Internal(format!("unknown suppression reason {reason}")))?,
        provider: provider.as_deref().and_then(MailerProvider::parse),
        mailer_id: opt_uuid_col(row, "mailer_id")?,
        detail: row.try_get("detail")?,
        first_seen: row.try_get("first_seen")?,
        last_event: row.try_get("last_event")?,
    })
}

/// `text` as a LIKE pattern matching itself anywhere: its wildcards and escape character escaped.
fn contains_pattern(text: &str) -> String {
    let escaped: String = text.chars().flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] }).collect();
    format!("%{escaped}%")
}

#[async_trait]
impl SuppressionStore for Backend {
    async fn suppress(&self, entries: &[Suppression]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for s in entries {
            sqlx::query(&format!(
                "INSERT INTO suppressions ({SUPPRESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (account_id, address) DO UPDATE SET reason = excluded.reason, provider = excluded.provider, \
                 mailer_id = excluded.mailer_id, detail = excluded.detail, last_event = excluded.last_event"
            ))
            .bind(s.account_id.to_string())
            .bind(&s.address)
            .bind(s.reason.as_str())
            .bind(s.provider.map(MailerProvider::as_str))
            .bind(s.mailer_id.map(|id| id.to_string()))
            .bind(&s.detail)
            .bind(s.first_seen)
            .bind(s.last_event)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_suppressions(&self, account: AccountId, f: &SuppressionFilter) -> StoreResult<Vec<Suppression>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!("SELECT {SUPPRESSION_COLUMNS} FROM suppressions WHERE account_id = "));
        q.push_bind(account.to_string());
        if let Some(part) = &f.address_contains {
            q.push(" AND address LIKE ").push_bind(contains_pattern(&part.to_lowercase())).push(" ESCAPE '\\'");
        }
        if let Some(after) = &f.after {
            q.push(" AND address > ").push_bind(after.clone());
        }
        q.push(" ORDER BY address LIMIT ").push_bind(i64::from(f.limit));
        q.build().fetch_all(&self.reader).await?.iter().map(suppression_from_row).collect()
    }

    async fn delete_suppression(&self, account: AccountId, address: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM suppressions WHERE account_id = $1 AND address = $2")
            .bind(account.to_string())
            .bind(address)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
