//! `AccountStore`: accounts, API tokens, workspaces, event-type catalogs.

use super::common::*;

fn workspace_from_row(row: &DbRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, retention_days, created_at";

fn account_from_row(row: &DbRow) -> StoreResult<Account> {
    Ok(Account {
        id: uuid_col(row, "id")?,
        name: row.try_get("name")?,
        retention_days: row.try_get::<Option<i64>, _>("retention_days")?.map(|d| d as u32),
        created_at: row.try_get("created_at")?,
    })
}

#[async_trait]
impl AccountStore for Backend {
    async fn add_token(&self, account_name: &str, token_digest: &str, now: Millis) -> StoreResult<AccountId> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query("SELECT id FROM accounts WHERE name = $1").bind(account_name).fetch_optional(&mut *tx).await?;
        let account = match existing {
            Some(row) => uuid_col(&row, "id")?,
            None => {
                let id = AccountId::now_v7();
                sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(account_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                for (name, description) in DEFAULT_EVENT_TYPES.iter().chain(OPERATIONAL_EVENT_TYPES) {
                    sqlx::query("INSERT INTO event_types (account_id, name, description, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id.to_string())
                        .bind(name)
                        .bind(description)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                id
            }
        };
        sqlx::query("INSERT INTO api_tokens (id, account_id, digest, created_at) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::now_v7().to_string())
            .bind(account.to_string())
            .bind(token_digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn caller_for_token(&self, token_digest: &str) -> StoreResult<Option<Caller>> {
        let row = sqlx::query("SELECT id, account_id FROM api_tokens WHERE digest = $1").bind(token_digest).fetch_optional(&self.reader).await?;
        row.map(|r| Ok(Caller { account_id: uuid_col(&r, "account_id")?, token_id: uuid_col(&r, "id")? })).transpose()
    }

    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1")).bind(id.to_string()).fetch_optional(&self.reader).await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id")).fetch_all(&self.reader).await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn set_account_retention(&self, id: AccountId, days: Option<u32>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET retention_days = $1 WHERE id = $2")
            .bind(days.map(i64::from))
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        sqlx::query("INSERT INTO workspaces (id, account_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(ws.id.to_string())
            .bind(ws.account_id.to_string())
            .bind(&ws.name)
            .bind(ws.created_at)
            .bind(ws.updated_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_workspaces(&self, account: AccountId) -> StoreResult<Vec<Workspace>> {
        let rows = sqlx::query("SELECT * FROM workspaces WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    async fn get_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Workspace>> {
        let row = sqlx::query("SELECT * FROM workspaces WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(workspace_from_row).transpose()
    }

    async fn update_workspace(&self, ws: &Workspace) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE workspaces SET name = $1, updated_at = $2 WHERE account_id = $3 AND id = $4")
            .bind(&ws.name)
            .bind(ws.updated_at)
            .bind(ws.account_id.to_string())
            .bind(ws.id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM workspaces WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_event_types(&self, account: AccountId) -> StoreResult<Vec<EventType>> {
        let rows = sqlx::query("SELECT name, description, created_at FROM event_types WHERE account_id = $1 ORDER BY name")
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok(EventType { name: r.try_get("name")?, description: r.try_get("description")?, created_at: r.try_get("created_at")? }))
            .collect()
    }

    async fn insert_event_type(&self, account: AccountId, et: &EventType) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO event_types (account_id, name, description, created_at) VALUES ($1, $2, $3, $4) \
 ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(account.to_string())
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.created_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
