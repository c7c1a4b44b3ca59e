-- The PostgreSQL twin of migrations/sqlite/0014_audit_log.sql.
-- The audit trail (issue 17): every change of configuration, who made it (a token, by id and its
-- name then, or the operator), the call, what it changed, and the fields sent (secrets masked).
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    actor_kind  TEXT NOT NULL,
    actor_id    TEXT,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject_id  TEXT,
    fields      TEXT NOT NULL
);
CREATE INDEX audit_log_by_account ON audit_log(account_id, id);
