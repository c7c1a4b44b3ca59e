-- The PostgreSQL twin of migrations/sqlite/0013_host_platform.sql.
-- Accounts managed by a host platform (issue 17): its own key for each customer, and deletion in
-- batches (an account being deleted has no tokens and is gone once its data is).
ALTER TABLE accounts ADD COLUMN external_id TEXT;
ALTER TABLE accounts ADD COLUMN deleting_since BIGINT;
CREATE UNIQUE INDEX accounts_external_id ON accounts(external_id);
CREATE INDEX accounts_deleting ON accounts(deleting_since) WHERE deleting_since IS NOT NULL;

-- Tokens by API: named, scoped, with an optional expiry and the last time they were used; the
-- prefix tells people which token is which (the token itself is never stored).
ALTER TABLE api_tokens ADD COLUMN name TEXT NOT NULL DEFAULT 'cli';
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';
ALTER TABLE api_tokens ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
CREATE INDEX api_tokens_by_account ON api_tokens(account_id, created_at);
