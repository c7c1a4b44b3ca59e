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

const ACCOUNT_COLUMNS: &str = "id, name, retention_days, external_id, deleting_since, created_at";

fn account_from_row(row: &DbRow) -> StoreResult<Account> {
    Ok(Account {
        id: uuid_col(row, "id")?,
        name: row.try_get("name")?,
        retention_days: row.try_get::<Option<i64>, _>("retention_days")?.map(|d| d as u32),
        external_id: row.try_get("external_id")?,
        deleting_since: row.try_get("deleting_since")?,
        created_at: row.try_get("created_at")?,
    })
}

const TOKEN_COLUMNS: &str = "id, account_id, name, scope, prefix, digest, created_at, expires_at, last_used_at";

fn token_from_row(row: &DbRow) -> StoreResult<Token> {
    let scope: String = row.try_get("scope")?;
    Ok(Token {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        scope: TokenScope::parse(&scope).ok_or_else(|| StoreError::Internal(format!("unknown token scope {scope}")))?,
        prefix: row.try_get("prefix")?,
        digest: row.try_get("digest")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

async fn account_where(tx: &mut Tx, column: &str, value: &str) -> StoreResult<Option<Account>> {
    let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {column} = $1")).bind(value).fetch_optional(&mut **tx).await?;
    row.as_ref().map(account_from_row).transpose()
}

/// Whether another account than `id` already has `value` in `column`.
async fn taken_by_another(tx: &mut Tx, column: &str, value: &str, id: AccountId) -> StoreResult<bool> {
    Ok(account_where(tx, column, value).await?.is_some_and(|a| a.id != id))
}

#[async_trait]
impl AccountStore for Backend {
    async fn create_account(&self, account: &Account) -> StoreResult<AccountCreated> {
        let mut tx = self.write_tx().await?;
        if let Some(external_id) = &account.external_id
            && let Some(existing) = account_where(&mut tx, "external_id", external_id).await?
        {
            return Ok(AccountCreated::Existing(existing));
        }
        if account_where(&mut tx, "name", &account.name).await?.is_some() {
            return Ok(AccountCreated::NameTaken);
        }
        sqlx::query("INSERT INTO accounts (id, name, external_id, created_at) VALUES ($1, $2, $3, $4)")
            .bind(account.id.to_string())
            .bind(&account.name)
            .bind(&account.external_id)
            .bind(account.created_at)
            .execute(&mut *tx)
            .await?;
        for (name, description) in DEFAULT_EVENT_TYPES.iter().chain(OPERATIONAL_EVENT_TYPES) {
            sqlx::query("INSERT INTO event_types (account_id, name, description, created_at) VALUES ($1, $2, $3, $4)")
                .bind(account.id.to_string())
                .bind(name)
                .bind(description)
                .bind(account.created_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(AccountCreated::Created(account.clone()))
    }

    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1")).bind(name).fetch_optional(&self.reader).await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn insert_token(&self, t: &Token) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"))
            .bind(t.id.to_string())
            .bind(t.account_id.to_string())
            .bind(&t.name)
            .bind(t.scope.as_str())
            .bind(&t.prefix)
            .bind(&t.digest)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.last_used_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_tokens(&self, account: AccountId) -> StoreResult<Vec<Token>> {
        let rows = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE account_id = $1 ORDER BY created_at, id"))
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn token_by_digest(&self, token_digest: &str, now: Millis) -> StoreResult<Option<TokenUse>> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE digest = $1 AND (expires_at IS NULL OR expires_at > $2)"))
            .bind(token_digest)
            .bind(now)
            .fetch_optional(&self.reader)
            .await?;
        let Some(token) = row.as_ref().map(token_from_row).transpose()? else { return Ok(None) };
        let caller = Caller { account_id: token.account_id, token_id: token.id, scope: token.scope, workspace: None };
        Ok(Some(TokenUse { caller, last_used_at: token.last_used_at }))
    }

    async fn mark_token_used(&self, id: Uuid, at: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2").bind(at).bind(id.to_string()).execute(&self.writer).await?;
        Ok(())
    }

    async fn list_accounts_page(&self, after: Option<AccountId>, limit: u32) -> StoreResult<Vec<Account>> {
        // Ids are UUIDv7: their text sorts in creation order.
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id > $1 ORDER BY id LIMIT $2"))
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn update_account(&self, id: AccountId, name: &str, external_id: Option<&str>) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if taken_by_another(&mut tx, "name", name, id).await? {
            return Err(StoreError::Conflict("name"));
        }
        if let Some(external_id) = external_id
            && taken_by_another(&mut tx, "external_id", external_id, id).await?
        {
            return Err(StoreError::Conflict("external_id"));
        }
        let done = sqlx::query("UPDATE accounts SET name = $1, external_id = $2 WHERE id = $3 AND deleting_since IS NULL")
            .bind(name)
            .bind(external_id)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn start_account_deletion(&self, id: AccountId, now: Millis) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE accounts SET deleting_since = $1 WHERE id = $2 AND deleting_since IS NULL")
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 {
            sqlx::query("DELETE FROM api_tokens WHERE account_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
            sqlx::query("UPDATE targets SET is_active = FALSE, updated_at = $1 WHERE account_id = $2")
                .bind(now)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
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
