-- The PostgreSQL twin of migrations/sqlite/0007_retention_and_tasks.sql.
-- Retention: an account may keep payloads for its own number of days (NULL: the server's
-- default). When a payload expires its rows stay, marked with the time it was deleted.
ALTER TABLE accounts ADD COLUMN retention_days BIGINT;
ALTER TABLE events ADD COLUMN payload_expired_at BIGINT;
ALTER TABLE deliveries ADD COLUMN payload_expired_at BIGINT;
-- The janitor walks each account's events that still hold a payload, oldest first; expired
-- ones leave this index, so the walk never rereads months of history.
CREATE INDEX events_unexpired ON events(account_id, created_at, id) WHERE payload_expired_at IS NULL;

-- Background tasks started by an API call (recoveries), with their progress.
CREATE TABLE tasks (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    target_id   TEXT,                -- what it works on; no foreign key, the task outlives it
    total       BIGINT NOT NULL,
    done        BIGINT NOT NULL,
    skipped     BIGINT NOT NULL,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX tasks_running ON tasks(updated_at) WHERE status = 'running';
