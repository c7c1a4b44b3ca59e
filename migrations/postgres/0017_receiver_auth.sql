-- The PostgreSQL twin of migrations/sqlite/0017_receiver_auth.sql.
-- Receiver authentication (issue 18) of webhook endpoints, Custom API integrations and query
-- destinations: its settings as JSON (no secrets; NULL: none), and its secrets (sensitive header
-- values, OAuth client secret, client private key) sealed with the target's id.
ALTER TABLE targets ADD COLUMN receiver_auth TEXT;
ALTER TABLE targets ADD COLUMN receiver_auth_ciphertext BYTEA;
