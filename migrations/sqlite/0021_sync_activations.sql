-- Activations that behave like syncs (issue 18): a run keyed by a column of its records sends
-- only what is new or changed since the last successful send of each key, re-sends what was
-- rejected (4xx), and with `mirror` sends a DELETE for keys that left.
ALTER TABLE activations ADD COLUMN sync_key TEXT;            -- the column naming each record
ALTER TABLE activations ADD COLUMN mirror BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE activations ADD COLUMN delete_event_id TEXT;     -- the event its DELETEs hang on
ALTER TABLE activations ADD COLUMN new_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE activations ADD COLUMN changed_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE activations ADD COLUMN unchanged_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE activations ADD COLUMN retried_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE activations ADD COLUMN deleted_records BIGINT NOT NULL DEFAULT 0;
ALTER TABLE activations ADD COLUMN synced_at BIGINT;         -- when its settled records were folded into sync_state

-- The key and fingerprint of each record a sync run sends (fingerprint NULL: a DELETE).
CREATE TABLE sync_records (
    activation_id TEXT NOT NULL REFERENCES activations(id) ON DELETE CASCADE,
    record_index  BIGINT NOT NULL,
    sync_key      TEXT NOT NULL,
    fingerprint   TEXT,
    PRIMARY KEY (activation_id, record_index)
);

-- Per destination and key: the last record a sync run settled (sent, or rejected with a 4xx).
CREATE TABLE sync_state (
    destination_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    sync_key       TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    fingerprint    TEXT NOT NULL,    -- SHA-256 of the record's canonical JSON
    rejected       BOOLEAN NOT NULL, -- answered with a 4xx: sent again by the next run
    record         TEXT,             -- what a mirror DELETE is built from
    run_created_at BIGINT NOT NULL,  -- the run it came from: an older run never overwrites it
    PRIMARY KEY (destination_id, sync_key)
);
CREATE INDEX sync_state_by_account ON sync_state(account_id);
