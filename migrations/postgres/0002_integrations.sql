-- Integrations (Custom API, HubSpot, Salesforce): their row in `targets` carries kind, events,
-- workspace scope and is_active; this table carries the rest.
CREATE TABLE integrations (
    target_id             TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    config                TEXT NOT NULL,   -- JSON, kind-specific, never secrets
    mapping               TEXT NOT NULL,   -- JSON array of {webhook_field, source_field, if_missing?}
    secret_ciphertext     BYTEA,            -- API key / access token / consumer secret, encrypted
    secret_hint           TEXT,
    signing_secret_prefix TEXT             -- Custom API requests are signed like webhooks
);
