-- The PostgreSQL twin of migrations/sqlite/0018_mailer_fallback.sql.
-- Mail that survives a provider outage (issue 18): a mailer may name another mailer of its
-- account that sends when its provider fails. No foreign key: mailers-delete refuses to delete a
-- mailer that is another's fallback, and an adapter finding no fallback simply has none.
ALTER TABLE mailers ADD COLUMN fallback_mailer_id TEXT;

-- The mailer that sent an attempt when it was not the delivery's own (its fallback); NULL
-- otherwise, so the recorder's batches carry one more NULL on the hot path.
ALTER TABLE attempts ADD COLUMN sent_by TEXT;
