-- The PostgreSQL twin of migrations/sqlite/0025_audit_before_change.sql.
-- The audit trail is written ahead (issue 17): an entry is filed unconfirmed before its change
-- is made and confirmed once the call succeeded, so no change is ever made without its entry. One
-- left unconfirmed is a change the server was making when it stopped.
ALTER TABLE audit_log ADD COLUMN confirmed BOOLEAN NOT NULL DEFAULT TRUE;
