-- Core schema. Timestamps are integer milliseconds since the Unix epoch; ids are UUID text.
-- The PostgreSQL twin of migrations/sqlite/0001_core.sql: BYTEA for BLOB, BIGINT for INTEGER.

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    digest      TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX workspaces_by_account ON workspaces(account_id, created_at);

CREATE TABLE event_types (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);

-- Every outbound target, whatever its kind: what it listens to and whether it is active.
-- Fan-out and claiming read only this table; kind-specific settings live in their own tables.
CREATE TABLE targets (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    events      TEXT NOT NULL,           -- JSON array of event type names
    workspaces  TEXT,                    -- JSON array of workspace ids; NULL = all workspaces
    is_active   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX targets_by_account ON targets(account_id, kind, created_at);

CREATE TABLE webhook_endpoints (
    target_id     TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    created_by    TEXT NOT NULL,
    url           TEXT NOT NULL,
    description   TEXT NOT NULL,
    secret_prefix TEXT NOT NULL
);

-- Signing secrets, encrypted. The current one has no expiry; rotated ones expire after a grace.
CREATE TABLE signing_secrets (
    id          TEXT PRIMARY KEY,
    target_id   TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    ciphertext  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX signing_secrets_by_target ON signing_secrets(target_id);

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    workspace_id    TEXT,
    event_type      TEXT NOT NULL,
    data            TEXT NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_idempotency ON events(account_id, idempotency_key);
CREATE INDEX events_by_account_time ON events(account_id, created_at);

-- One row per (event, target). A pending row is due at next_attempt_at; claiming pushes
-- next_attempt_at out by the lease and sets lease_token, so a crashed worker's claims come due
-- again by themselves.
CREATE TABLE deliveries (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    target_id        TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    target_kind      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempt_count    BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_token      TEXT,
    manual_retry     BOOLEAN NOT NULL,
    http_status_code BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    completed_at     BIGINT
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_by_target ON deliveries(target_id, created_at);
CREATE INDEX deliveries_by_event ON deliveries(event_id);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt_number   BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    http_status_code BIGINT,
    error_kind       TEXT,
    error_message    TEXT,
    response_excerpt TEXT NOT NULL,
    manual           BOOLEAN NOT NULL
);
CREATE INDEX attempts_by_delivery ON attempts(delivery_id, attempt_number);
