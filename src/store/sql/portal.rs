//! `PortalSessions`: one-time links and the sessions they open.

use super::common::*;
use crate::domain::portal::{PortalSession, Theme};

const PORTAL_COLUMNS: &str = "p.id, p.account_id, p.code_digest, p.code_expires_at, p.session_digest, p.expires_at, p.allowed_origins, p.theme, p.workspace_id, p.created_at";

fn portal_from_row(row: &DbRow) -> StoreResult<PortalSession> {
    Ok(PortalSession {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        code_digest: row.try_get("code_digest")?,
        code_expires_at: row.try_get("code_expires_at")?,
        session_digest: row.try_get("session_digest")?,
        expires_at: row.try_get("expires_at")?,
        allowed_origins: json_col(row, "allowed_origins")?,
        theme: json_col::<Theme>(row, "theme")?,
        workspace_id: opt_uuid_col(row, "workspace_id")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The live session matching `condition` (on `p`, with `$1` its value and `$2` now): its account
/// is not being deleted.
async fn live_session(backend: &Backend, condition: &str, value: &str, now: Millis) -> StoreResult<Option<PortalSession>> {
    let sql = format!("SELECT {PORTAL_COLUMNS} FROM portal_sessions p JOIN accounts a ON a.id = p.account_id WHERE {condition} AND a.deleting_since IS NULL");
    let row = sqlx::query(&sql).bind(value).bind(now).fetch_optional(&backend.reader).await?;
    row.as_ref().map(portal_from_row).transpose()
}

#[async_trait]
impl PortalSessions for Backend {
    async fn insert_portal_session(&self, s: &PortalSession) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO portal_sessions (id, account_id, code_digest, code_expires_at, session_digest, expires_at, allowed_origins, theme, workspace_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id.to_string())
        .bind(s.account_id.to_string())
        .bind(&s.code_digest)
        .bind(s.code_expires_at)
        .bind(&s.session_digest)
        .bind(s.expires_at)
        .bind(serde_json::to_string(&s.allowed_origins).expect("strings serialize"))
        .bind(serde_json::to_string(&s.theme).expect("a theme serializes"))
        .bind(s.workspace_id.map(|w| w.to_string()))
        .bind(s.created_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn portal_session_by_code(&self, code_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>> {
        live_session(self, "p.code_digest = $1 AND p.session_digest IS NULL AND p.code_expires_at > $2", code_digest, now).await
    }

    async fn exchange_portal_code(&self, code_digest: &str, session_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>> {
        // One statement: of two exchanges of one code, only one finds it unspent.
        let done = sqlx::query("UPDATE portal_sessions SET session_digest = $1 WHERE code_digest = $2 AND session_digest IS NULL AND code_expires_at > $3")
            .bind(session_digest)
            .bind(code_digest)
            .bind(now)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        self.portal_session_by_token(session_digest, now).await
    }

    async fn portal_session_by_token(&self, session_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>> {
        live_session(self, "p.session_digest = $1 AND p.expires_at > $2", session_digest, now).await
    }
}
