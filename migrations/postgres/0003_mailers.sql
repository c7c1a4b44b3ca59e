-- Mailer integrations. Their row in `targets` carries the event types of their rules.
CREATE TABLE mailers (
    target_id              TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    provider               TEXT NOT NULL,
    sender_name            TEXT NOT NULL,
    sender_email           TEXT,
    reply_to               TEXT,
    bcc                    TEXT,
    config                 TEXT NOT NULL,   -- JSON, non-secret provider settings
    credentials_ciphertext BYTEA,            -- JSON object of secrets, encrypted
    credential_hints       TEXT NOT NULL,   -- JSON: credential name -> first characters
    template_params        TEXT NOT NULL,   -- JSON array of {parameter_name, source_field}
    rules                  TEXT NOT NULL,   -- JSON array of {event_type, template, recipient_field}
    verified               BOOLEAN NOT NULL,
    verified_at            BIGINT
);

-- Per-delivery parameters for the adapter (a direct mailers-send: recipient and template).
ALTER TABLE deliveries ADD COLUMN params TEXT;
