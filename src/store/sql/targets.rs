//! `TargetStore` and `TargetSettings`: the `targets` row every kind shares, each kind's settings
//! table, signing secrets, and reading a target's settings for its adapter.

use super::common::*;

impl Backend {
    /// The account's targets of one kind, oldest first. `columns` ends with the FROM clause.
    async fn list_targets<T>(&self, columns: &str, account: AccountId, from_row: fn(&DbRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(&format!("SELECT {columns} WHERE t.account_id = $1 ORDER BY t.created_at, t.id"))
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// One target of the account, or by id alone when `account` is `None` (workers).
    async fn get_target<T>(
        &self,
        columns: &str,
        account: Option<AccountId>,
        id: TargetId,
        from_row: fn(&DbRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = sqlx::query(&format!("SELECT {columns} WHERE t.id = $1 AND (CAST($2 AS TEXT) IS NULL OR t.account_id = CAST($2 AS TEXT))"))
            .bind(id.to_string())
            .bind(account.map(|a| a.to_string()))
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(from_row).transpose()
    }
}

const ENDPOINT_COLUMNS: &str = "t.id, t.account_id, w.created_by, w.url, w.description, w.secret_prefix, \
     t.events, t.workspaces, t.is_active, t.rate_limit, t.ordering, t.receiver_auth, t.receiver_auth_ciphertext, t.propagate_trace, t.created_at, t.updated_at \
     FROM targets t JOIN webhook_endpoints w ON w.target_id = t.id";

fn endpoint_target_row(ep: &Endpoint) -> TargetRow<'_> {
    TargetRow {
        id: ep.id,
        account_id: ep.account_id,
        kind: TargetKind::Webhook,
        events: &ep.events,
        workspaces: &ep.workspaces,
        is_active: ep.is_active,
        rate_limit: ep.rate_limit,
        ordering: ep.ordering,
        receiver_auth: ep.receiver_auth.as_ref(),
        propagate_trace: ep.propagate_trace,
        created_at: ep.created_at,
        updated_at: ep.updated_at,
    }
}

fn endpoint_from_row(row: &DbRow) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        created_by: uuid_col(row, "created_by")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        secret_prefix: row.try_get("secret_prefix")?,
        events: json_col(row, "events")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        receiver_auth: receiver_auth_col(row)?,
        propagate_trace: row.try_get("propagate_trace")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A target's receiver authentication: its settings (JSON) and sealed secrets, both or neither.
fn receiver_auth_col(row: &DbRow) -> StoreResult<Option<StoredReceiverAuth>> {
    let settings: Option<String> = row.try_get("receiver_auth")?;
    let sealed_secrets: Option<Vec<u8>> = row.try_get("receiver_auth_ciphertext")?;
    settings
        .zip(sealed_secrets)
        .map(|(settings, sealed_secrets)| {
            let settings = serde_json::from_str(&settings).map_err(|e| StoreError::Internal(format!("bad JSON in receiver_auth: {e}")))?;
            Ok(StoredReceiverAuth { settings, sealed_secrets })
        })
        .transpose()
}

fn receiver_auth_json(auth: Option<&StoredReceiverAuth>) -> Option<String> {
    auth.map(|a| serde_json::to_string(&a.settings).expect("settings serialize"))
}

/// The `targets` columns every kind shares.
struct TargetRow<'a> {
    id: TargetId,
    account_id: AccountId,
    kind: TargetKind,
    events: &'a [String],
    workspaces: &'a WorkspaceScope,
    is_active: bool,
    rate_limit: Option<u32>,
    ordering: Ordering,
    receiver_auth: Option<&'a StoredReceiverAuth>,
    propagate_trace: bool,
    created_at: Millis,
    updated_at: Millis,
}

async fn insert_target(tx: &mut Tx, t: &TargetRow<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO targets (id, account_id, kind, events, workspaces, is_active, created_at, updated_at, rate_limit, ordering, \
         receiver_auth, receiver_auth_ciphertext, propagate_trace) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(t.id.to_string())
    .bind(t.account_id.to_string())
    .bind(t.kind.as_str())
    .bind(serde_json::to_string(t.events).expect("strings serialize"))
    .bind(workspaces_json(t.workspaces))
    .bind(t.is_active)
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.rate_limit.map(i64::from))
    .bind(t.ordering.as_str())
    .bind(receiver_auth_json(t.receiver_auth))
    .bind(t.receiver_auth.map(|a| &a.sealed_secrets))
    .bind(t.propagate_trace)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Updates the shared columns; false when the target is not the account's.
async fn update_target(tx: &mut Tx, t: &TargetRow<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        // Switching a target on clears its failure streak and why it was switched off.
        "UPDATE targets SET events = $1, workspaces = $2, is_active = $3, updated_at = $4, rate_limit = $8, ordering = $9, \
         receiver_auth = $10, receiver_auth_ciphertext = $11, propagate_trace = $12, \
         failure_streak = CASE WHEN $3 AND NOT targets.is_active THEN 0 ELSE targets.failure_streak END, \
         failing_since = CASE WHEN $3 AND NOT targets.is_active THEN NULL ELSE targets.failing_since END, \
         disabled_reason = CASE WHEN $3 THEN NULL ELSE targets.disabled_reason END \
         WHERE account_id = $5 AND id = $6 AND kind = $7",
    )
    .bind(serde_json::to_string(t.events).expect("strings serialize"))
    .bind(workspaces_json(t.workspaces))
    .bind(t.is_active)
    .bind(t.updated_at)
    .bind(t.account_id.to_string())
    .bind(t.id.to_string())
    .bind(t.kind.as_str())
    .bind(t.rate_limit.map(i64::from))
    .bind(t.ordering.as_str())
    .bind(receiver_auth_json(t.receiver_auth))
    .bind(t.receiver_auth.map(|a| &a.sealed_secrets))
    .bind(t.propagate_trace)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn delete_target(pool: &sqlx::Pool<Db>, account: AccountId, id: TargetId, kinds: &[TargetKind]) -> StoreResult<bool> {
    let mut q = sqlx::QueryBuilder::<Db>::new("DELETE FROM targets WHERE account_id = ");
    q.push_bind(account.to_string()).push(" AND id = ").push_bind(id.to_string()).push(" AND kind IN (");
    let mut list = q.separated(", ");
    for kind in kinds {
        list.push_bind(kind.as_str());
    }
    q.push(")");
    Ok(q.build().execute(pool).await?.rows_affected() == 1)
}

async fn valid_signing_secrets(pool: &sqlx::Pool<Db>, target: TargetId, now: Millis) -> StoreResult<Vec<StoredSecret>> {
    let rows = sqlx::query(
        "SELECT id, ciphertext, created_at, expires_at FROM signing_secrets \
         WHERE target_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC",
    )
    .bind(target.to_string())
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredSecret {
                id: uuid_col(r, "id")?,
                ciphertext: r.try_get("ciphertext")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

const INTEGRATION_COLUMNS: &str = "t.id, t.account_id, t.kind, t.events, t.workspaces, t.is_active, t.rate_limit, t.ordering, t.created_at, t.updated_at, \
     t.receiver_auth, t.receiver_auth_ciphertext, t.propagate_trace, \
     i.name, i.config, i.mapping, i.secret_ciphertext, i.secret_hint, i.signing_secret_prefix \
     FROM targets t JOIN integrations i ON i.target_id = t.id";

fn integration_from_row(row: &DbRow) -> StoreResult<Integration> {
    let kind: String = row.try_get("kind")?;
    let kind = IntegrationKind::parse(&kind).ok_or_else(|| StoreError::Internal(format!("unknown integration kind {kind}")))?;
    let config = IntegrationConfig::from_json(kind, json_col(row, "config")?).map_err(StoreError::Internal)?;
    Ok(Integration {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        config,
        mapping: json_col(row, "mapping")?,
        events: json_col(row, "events")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        secret: row.try_get("secret_ciphertext")?,
        secret_hint: row.try_get("secret_hint")?,
        signing_secret_prefix: row.try_get("signing_secret_prefix")?,
        receiver_auth: receiver_auth_col(row)?,
        propagate_trace: row.try_get("propagate_trace")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn integration_target_row(i: &Integration) -> TargetRow<'_> {
    TargetRow {
        id: i.id,
        account_id: i.account_id,
        kind: TargetKind::Integration(i.config.kind()),
        events: &i.events,
        workspaces: &i.workspaces,
        is_active: i.is_active,
        rate_limit: i.rate_limit,
        ordering: i.ordering,
        receiver_auth: i.receiver_auth.as_ref(),
        propagate_trace: i.propagate_trace,
        created_at: i.created_at,
        updated_at: i.updated_at,
    }
}

const MAILER_COLUMNS: &str = "t.id, t.account_id, t.workspaces, t.is_active, t.rate_limit, t.created_at, t.updated_at, \
     m.name, m.provider, m.sender_name, m.sender_email, m.reply_to, m.bcc, m.config, m.credentials_ciphertext, \
     m.credential_hints, m.template_params, m.rules, m.verified, m.verified_at, m.fallback_mailer_id, \
     m.webhook_key_ciphertext, m.webhook_key_hint \
     FROM targets t JOIN mailers m ON m.target_id = t.id";

fn mailer_from_row(row: &DbRow) -> StoreResult<Mailer> {
    let provider: String = row.try_get("provider")?;
    Ok(Mailer {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        provider: MailerProvider::parse(&provider).ok_or_else(|| StoreError::Internal(format!("unknown mail provider {provider}")))?,
        sender_name: row.try_get("sender_name")?,
        sender_email: row.try_get("sender_email")?,
        reply_to: row.try_get("reply_to")?,
        bcc: row.try_get("bcc")?,
        config: json_col(row, "config")?,
        credentials: row.try_get("credentials_ciphertext")?,
        credential_hints: json_col(row, "credential_hints")?,
        template_params: json_col(row, "template_params")?,
        rules: json_col(row, "rules")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        verified: row.try_get("verified")?,
        verified_at: row.try_get("verified_at")?,
        fallback_mailer_id: opt_uuid_col(row, "fallback_mailer_id")?,
        webhook_key: row.try_get("webhook_key_ciphertext")?,
        webhook_key_hint: row.try_get("webhook_key_hint")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A mailer listens to the event types of its rules.
fn mailer_events(m: &Mailer) -> Vec<String> {
    m.rules.iter().map(|r| r.event_type.clone()).collect()
}

fn mailer_target_row<'a>(m: &'a Mailer, events: &'a [String]) -> TargetRow<'a> {
    TargetRow {
        id: m.id,
        account_id: m.account_id,
        kind: TargetKind::Mailer,
        events,
        workspaces: &m.workspaces,
        is_active: m.is_active,
        rate_limit: m.rate_limit,
        ordering: Ordering::Unordered,
        receiver_auth: None,
        propagate_trace: false,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

async fn write_mailer_settings(tx: &mut Tx, m: &Mailer, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO mailers (name, provider, sender_name, sender_email, reply_to, bcc, config, credentials_ciphertext, \
         credential_hints, template_params, rules, verified, verified_at, fallback_mailer_id, webhook_key_ciphertext, \
         webhook_key_hint, target_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    } else {
        "UPDATE mailers SET name = $1, provider = $2, sender_name = $3, sender_email = $4, reply_to = $5, bcc = $6, \
         config = $7, credentials_ciphertext = $8, credential_hints = $9, template_params = $10, rules = $11, \
         verified = $12, verified_at = $13, fallback_mailer_id = $14, webhook_key_ciphertext = $15, webhook_key_hint = $16 \
         WHERE target_id = $17"
    };
    sqlx::query(sql)
        .bind(&m.name)
        .bind(m.provider.as_str())
        .bind(&m.sender_name)
        .bind(&m.sender_email)
        .bind(&m.reply_to)
        .bind(&m.bcc)
        .bind(serde_json::Value::Object(m.config.clone()).to_string())
        .bind(&m.credentials)
        .bind(serde_json::Value::Object(m.credential_hints.clone()).to_string())
        .bind(serde_json::to_string(&m.template_params).expect("params serialize"))
        .bind(serde_json::to_string(&m.rules).expect("rules serialize"))
        .bind(m.verified)
        .bind(m.verified_at)
        .bind(m.fallback_mailer_id.map(|id| id.to_string()))
        .bind(&m.webhook_key)
        .bind(&m.webhook_key_hint)
        .bind(m.id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const DESTINATION_COLUMNS: &str = "t.id, t.account_id, t.events, t.workspaces, t.is_active, t.rate_limit, t.created_at, t.updated_at, \
     t.receiver_auth, t.receiver_auth_ciphertext, t.propagate_trace, \
     d.name, d.url, d.method, d.query_params FROM targets t JOIN destinations d ON d.target_id = t.id";

fn destination_from_row(row: &DbRow) -> StoreResult<Destination> {
    let method: String = row.try_get("method")?;
    Ok(Destination {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        method: serde_json::from_value(serde_json::Value::String(method)).map_err(|e| StoreError::Internal(e.to_string()))?,
        query_params: json_col(row, "query_params")?,
        events: json_col(row, "events")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        receiver_auth: receiver_auth_col(row)?,
        propagate_trace: row.try_get("propagate_trace")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn destination_target_row(d: &Destination) -> TargetRow<'_> {
    TargetRow {
        id: d.id,
        account_id: d.account_id,
        kind: TargetKind::Destination,
        events: &d.events,
        workspaces: &d.workspaces,
        is_active: d.is_active,
        rate_limit: d.rate_limit,
        ordering: Ordering::Unordered,
        receiver_auth: d.receiver_auth.as_ref(),
        propagate_trace: d.propagate_trace,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

async fn write_destination_settings(tx: &mut Tx, d: &Destination, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO destinations (name, url, method, query_params, target_id) VALUES ($1, $2, $3, $4, $5)"
    } else {
        "UPDATE destinations SET name = $1, url = $2, method = $3, query_params = $4 WHERE target_id = $5"
    };
    sqlx::query(sql)
        .bind(&d.name)
        .bind(&d.url)
        .bind(d.method.as_str())
        .bind(serde_json::to_string(&d.query_params).expect("params serialize"))
        .bind(d.id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl TargetStore for Backend {
    async fn find_target(&self, account: AccountId, id: TargetId) -> StoreResult<Option<TargetRef>> {
        let row = sqlx::query("SELECT id, kind FROM targets WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok(TargetRef { kind: target_kind(&r.try_get::<String, _>("kind")?)?, id: uuid_col(&r, "id")? })).transpose()
    }

    async fn target_scopes(&self, account: AccountId) -> StoreResult<Vec<(TargetId, WorkspaceScope)>> {
        let rows = sqlx::query("SELECT id, workspaces FROM targets WHERE account_id = $1").bind(account.to_string()).fetch_all(&self.reader).await?;
        rows.iter().map(|r| Ok((uuid_col(r, "id")?, workspaces_from_json(r.try_get("workspaces")?)?))).collect()
    }

    async fn target_health(&self, account: AccountId, id: TargetId) -> StoreResult<Option<HealthView>> {
        let row = sqlx::query("SELECT is_active, failure_streak, failing_since, disabled_reason FROM targets WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            Ok(HealthView {
                is_active: row.try_get("is_active")?,
                failure_streak: row.try_get::<i64, _>("failure_streak")? as u32,
                failing_since: row.try_get("failing_since")?,
                disabled_reason: row.try_get("disabled_reason")?,
            })
        })
        .transpose()
    }

    async fn insert_endpoint(&self, ep: &Endpoint, secret: &StoredSecret) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &endpoint_target_row(ep)).await?;
        sqlx::query("INSERT INTO webhook_endpoints (target_id, created_by, url, description, secret_prefix) VALUES ($1, $2, $3, $4, $5)")
            .bind(ep.id.to_string())
            .bind(ep.created_by.to_string())
            .bind(&ep.url)
            .bind(&ep.description)
            .bind(&ep.secret_prefix)
            .execute(&mut *tx)
            .await?;
        insert_secret(&mut tx, ep.id, secret).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_endpoints(&self, account: AccountId) -> StoreResult<Vec<Endpoint>> {
        self.list_targets(ENDPOINT_COLUMNS, account, endpoint_from_row).await
    }

    async fn get_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Endpoint>> {
        self.get_target(ENDPOINT_COLUMNS, Some(account), id, endpoint_from_row).await
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &endpoint_target_row(ep)).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE webhook_endpoints SET url = $1, description = $2 WHERE target_id = $3")
            .bind(&ep.url)
            .bind(&ep.description)
            .bind(ep.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Webhook]).await
    }

    async fn rotate_endpoint_secret(
        &self,
        account: AccountId,
        id: TargetId,
        secret: &StoredSecret,
        secret_prefix: &str,
        old_expires_at: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET secret_prefix = $1 WHERE target_id = \
 (SELECT id FROM targets WHERE account_id = $2 AND id = $3)",
        )
        .bind(secret_prefix)
        .bind(account.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM signing_secrets WHERE target_id = $1 AND expires_at <= $2")
            .bind(id.to_string())
            .bind(secret.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE signing_secrets SET expires_at = $1 WHERE target_id = $2 AND expires_at IS NULL")
            .bind(old_expires_at)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        // Each valid secret adds a signature to every request: keep only the newest old ones.
        sqlx::query(
            "DELETE FROM signing_secrets WHERE target_id = $1 AND expires_at IS NOT NULL AND id NOT IN \
 (SELECT id FROM signing_secrets WHERE target_id = $1 AND expires_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(id.to_string())
        .bind(i64::from(MAX_OLD_SECRETS))
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, id, secret).await?;
        sqlx::query("UPDATE targets SET updated_at = $1 WHERE id = $2").bind(secret.created_at).bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_integration(&self, integration: &Integration, signing: Option<&StoredSecret>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &integration_target_row(integration)).await?;
        sqlx::query(
            "INSERT INTO integrations (target_id, name, config, mapping, secret_ciphertext, secret_hint, signing_secret_prefix) \
 VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(integration.id.to_string())
        .bind(&integration.name)
        .bind(integration.config.to_json().to_string())
        .bind(serde_json::to_string(&integration.mapping).expect("rows serialize"))
        .bind(&integration.secret)
        .bind(&integration.secret_hint)
        .bind(&integration.signing_secret_prefix)
        .execute(&mut *tx)
        .await?;
        if let Some(secret) = signing {
            insert_secret(&mut tx, integration.id, secret).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>> {
        self.list_targets(INTEGRATION_COLUMNS, account, integration_from_row).await
    }

    async fn get_integration(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Integration>> {
        self.get_target(INTEGRATION_COLUMNS, Some(account), id, integration_from_row).await
    }

    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &integration_target_row(integration)).await? {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE integrations SET name = $1, config = $2, mapping = $3, secret_ciphertext = $4, secret_hint = $5 \
 WHERE target_id = $6",
        )
        .bind(&integration.name)
        .bind(integration.config.to_json().to_string())
        .bind(serde_json::to_string(&integration.mapping).expect("rows serialize"))
        .bind(&integration.secret)
        .bind(&integration.secret_hint)
        .bind(integration.id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_integration(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        let kinds = IntegrationKind::ALL.map(TargetKind::Integration);
        delete_target(&self.writer, account, id, &kinds).await
    }

    async fn insert_mailer(&self, mailer: &Mailer) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let events = mailer_events(mailer);
        insert_target(&mut tx, &mailer_target_row(mailer, &events)).await?;
        write_mailer_settings(&mut tx, mailer, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_mailers(&self, account: AccountId) -> StoreResult<Vec<Mailer>> {
        self.list_targets(MAILER_COLUMNS, account, mailer_from_row).await
    }

    async fn get_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Mailer>> {
        self.get_target(MAILER_COLUMNS, Some(account), id, mailer_from_row).await
    }

    async fn update_mailer(&self, mailer: &Mailer) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let events = mailer_events(mailer);
        if !update_target(&mut tx, &mailer_target_row(mailer, &events)).await? {
            return Ok(false);
        }
        write_mailer_settings(&mut tx, mailer, false).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Mailer]).await
    }

    async fn mark_mailer_verified(&self, account: AccountId, id: TargetId, seen_updated_at: Millis, at: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE mailers SET verified = TRUE, verified_at = $1 WHERE target_id = \
 (SELECT id FROM targets WHERE account_id = $2 AND id = $3 AND updated_at = $4)",
        )
        .bind(at)
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(seen_updated_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &destination_target_row(destination)).await?;
        write_destination_settings(&mut tx, destination, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_destinations(&self, account: AccountId) -> StoreResult<Vec<Destination>> {
        self.list_targets(DESTINATION_COLUMNS, account, destination_from_row).await
    }

    async fn get_destination(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Destination>> {
        self.get_target(DESTINATION_COLUMNS, Some(account), id, destination_from_row).await
    }

    async fn update_destination(&self, destination: &Destination) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &destination_target_row(destination)).await? {
            return Ok(false);
        }
        write_destination_settings(&mut tx, destination, false).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_destination(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Destination]).await
    }
}

#[async_trait]
impl TargetSettings for Backend {
    async fn webhook_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<WebhookTargetConfig>> {
        let Some(row) = sqlx::query(
            "SELECT w.url, t.receiver_auth, t.receiver_auth_ciphertext, t.propagate_trace FROM webhook_endpoints w JOIN targets t ON t.id = w.target_id \
             WHERE w.target_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let secrets = valid_signing_secrets(&self.reader, id, now).await?;
        Ok(Some(WebhookTargetConfig { url: row.try_get("url")?, secrets, receiver_auth: receiver_auth_col(&row)?, propagate_trace: row.try_get("propagate_trace")? }))
    }

    async fn integration_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<(Integration, Vec<StoredSecret>)>> {
        let Some(integration) = self.get_target(INTEGRATION_COLUMNS, None, id, integration_from_row).await? else {
            return Ok(None);
        };
        Ok(Some((integration, valid_signing_secrets(&self.reader, id, now).await?)))
    }

    async fn mailer_target(&self, id: TargetId) -> StoreResult<Option<Mailer>> {
        self.get_target(MAILER_COLUMNS, None, id, mailer_from_row).await
    }

    async fn destination_target(&self, id: TargetId) -> StoreResult<Option<Destination>> {
        self.get_target(DESTINATION_COLUMNS, None, id, destination_from_row).await
    }

    async fn suppression(&self, account: AccountId, address: &str) -> StoreResult<Option<Suppression>> {
        let row = sqlx::query("SELECT * FROM suppressions WHERE account_id = $1 AND address = $2")
            .bind(account.to_string())
            .bind(address)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(super::suppressions::suppression_from_row).transpose()
    }
}

async fn insert_secret(tx: &mut Tx, target: TargetId, secret: &StoredSecret) -> StoreResult<()> {
    sqlx::query("INSERT INTO signing_secrets (id, target_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(secret.id.to_string())
        .bind(target.to_string())
        .bind(&secret.ciphertext)
        .bind(secret.created_at)
        .bind(secret.expires_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
