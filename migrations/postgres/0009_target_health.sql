-- Target health: failed attempts since the last success and when the first of them happened;
-- why Switchyard switched a target off, if it did (cleared when the target is switched on again).
ALTER TABLE targets ADD COLUMN failure_streak BIGINT NOT NULL DEFAULT 0;
ALTER TABLE targets ADD COLUMN failing_since BIGINT;
ALTER TABLE targets ADD COLUMN disabled_reason TEXT;

-- Operational events join every existing account's catalog (new accounts get them on creation).
INSERT INTO event_types (account_id, name, description, created_at)
SELECT id, 'endpoint.disabled', 'Switchyard switched off a target that kept failing or answered 410 Gone', created_at FROM accounts;
INSERT INTO event_types (account_id, name, description, created_at)
SELECT id, 'delivery.failing', 'A delivery failed 4 attempts in a row and is still being retried', created_at FROM accounts;
INSERT INTO event_types (account_id, name, description, created_at)
SELECT id, 'delivery.exhausted', 'A delivery failed for good: its retries are used up or the failure is permanent', created_at FROM accounts;
