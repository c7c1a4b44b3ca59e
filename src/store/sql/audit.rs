//! `AuditLog`: the audit trail of configuration changes.

use super::common::*;
use crate::domain::audit::{Actor, AuditEntry, AuditFilter};

const AUDIT_COLUMNS: &str = "id, account_id, at, actor_kind, actor_id, actor_name, action, subject_id, fields, confirmed";

fn audit_from_row(row: &DbRow) -> StoreResult<AuditEntry> {
    let kind: String = row.try_get("actor_kind")?;
    let actor = match kind.as_str() {
        "operator" => Actor::Operator,
        "portal" => Actor::Portal { id: uuid_col(row, "actor_id")? },
        _ => Actor::Token { id: uuid_col(row, "actor_id")?, name: row.try_get("actor_name")? },
    };
    let subject: Option<String> = row.try_get("subject_id")?;
    Ok(AuditEntry {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        at: row.try_get("at")?,
        actor,
        action: row.try_get("action")?,
        subject_id: subject.and_then(|s| Uuid::try_parse(&s).ok()),
        fields: json_col(row, "fields")?,
        confirmed: row.try_get("confirmed")?,
    })
}

#[async_trait]
impl AuditLog for Backend {
    async fn insert_audit(&self, e: &AuditEntry) -> StoreResult<bool> {
        let (actor_id, actor_name) = match &e.actor {
            Actor::Token { id, name } => (Some(id.to_string()), name.as_str()),
            Actor::Operator => (None, "operator"),
            Actor::Portal { id } => (Some(id.to_string()), "portal session"),
        };
        // A token's name is read from the token, as it is at the time of the change. An account
        // the operator named that does not exist files nothing (the call answers not_found).
        let filed = sqlx::query(&format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS}) \
             SELECT $1, $2, $3, $4, $5, COALESCE((SELECT name FROM api_tokens WHERE id = $5), $6), $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $2)"
        ))
            .bind(e.id.to_string())
            .bind(e.account_id.to_string())
            .bind(e.at)
            .bind(e.actor.kind())
            .bind(actor_id)
            .bind(actor_name)
            .bind(&e.action)
            .bind(e.subject_id.map(|s| s.to_string()))
            .bind(e.fields.to_string())
            .bind(e.confirmed)
            .execute(&self.writer)
            .await?;
        Ok(filed.rows_affected() == 1)
    }

    async fn confirm_audit(&self, id: Uuid, subject_id: Option<Uuid>) -> StoreResult<()> {
        sqlx::query("UPDATE audit_log SET confirmed = TRUE, subject_id = COALESCE($2, subject_id) WHERE id = $1")
            .bind(id.to_string())
            .bind(subject_id.map(|s| s.to_string()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn discard_audit(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM audit_log WHERE id = $1 AND NOT confirmed").bind(id.to_string()).execute(&self.writer).await?;
        Ok(())
    }

    async fn list_audit(&self, account: AccountId, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE account_id = "));
        q.push_bind(account.to_string());
        if let Some(before) = f.before {
            q.push(" AND id < ").push_bind(before.to_string());
        }
        if let Some(action) = &f.action {
            q.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(subject) = f.subject_id {
            q.push(" AND subject_id = ").push_bind(subject.to_string());
        }
        if let Some(since) = f.since {
            q.push(" AND at >= ").push_bind(since);
        }
        if let Some(until) = f.until {
            q.push(" AND at < ").push_bind(until);
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(f.limit));
        q.build().fetch_all(&self.reader).await?.iter().map(audit_from_row).collect()
    }
}
