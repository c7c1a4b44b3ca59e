-- The PostgreSQL twin of migrations/sqlite/0020_suppressions.sql.
-- Mail that stops at bounces (issue 18): per account, the addresses never sent to again, because
-- a provider's event webhook reported a hard bounce or a complaint, or by hand. Keyed by the
-- lowercased address; the last event's reason, provider and mailer are kept.
CREATE TABLE suppressions (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,   -- hard_bounce | complaint | manual
    provider   TEXT,            -- the provider that reported it (NULL: manual)
    mailer_id  TEXT,            -- the mailer whose webhook reported it (no foreign key: kept after it goes)
    detail     TEXT,
    first_seen BIGINT NOT NULL,
    last_event BIGINT NOT NULL,
    PRIMARY KEY (account_id, address)
);

-- The key that authenticates a mailer's event webhook (Mailgun's webhook signing key, Mandrill's
-- webhook key, SendGrid's verification key), sealed like credentials, and its hint.
ALTER TABLE mailers ADD COLUMN webhook_key_ciphertext BYTEA;
ALTER TABLE mailers ADD COLUMN webhook_key_hint TEXT;
