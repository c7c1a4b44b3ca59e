-- Query destinations (one request per record) and activations (a run of records to one).
CREATE TABLE destinations (
    target_id    TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    url          TEXT NOT NULL,   -- base URL with its static query parameters
    method       TEXT NOT NULL,
    query_params TEXT NOT NULL    -- JSON array of {query_key, column}
);

CREATE TABLE activations (
    id             TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    destination_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    event_id       TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    total          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,          -- when its records were released to the queue
    cancelled_at   BIGINT
);
CREATE INDEX activations_by_account ON activations(account_id, created_at);

-- An activation's records are deliveries carrying the record in `params`.
ALTER TABLE deliveries ADD COLUMN activation_id TEXT;
ALTER TABLE deliveries ADD COLUMN record_index BIGINT;
CREATE INDEX deliveries_by_activation ON deliveries(activation_id, record_index);
