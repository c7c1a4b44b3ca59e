-- Each target is owned by one live node at a time, which delivers its events from memory
-- (ARCHITECTURE.md, "The engine"). A node's row says where it runs, so that another node on the
-- same machine can tell a crashed one from a slow one.
CREATE TABLE nodes (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    process_start BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);

-- The lease on a target: its owner, the token its deliveries are leased with (one per ownership,
-- so a new owner's claim tells its rows from the last owner's), and when it runs out unless
-- renewed. expires_at <= 0: handed over cleanly at -expires_at, nothing of the last owner is still
-- in flight.
CREATE TABLE target_owners (
    target_id  TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    node_id    TEXT NOT NULL,
    token      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX target_owners_by_node ON target_owners(node_id);

-- Ordered delivery, opt-in per target: 'fifo' or 'unordered'.
ALTER TABLE targets ADD COLUMN ordering TEXT NOT NULL DEFAULT 'unordered';

-- A delivery's place in acceptance order (its event's seq), for ordered targets.
ALTER TABLE deliveries ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;
UPDATE deliveries SET event_seq = (SELECT e.seq FROM events e WHERE e.id = deliveries.event_id) WHERE status = 'pending';

-- The owner claims per target, from rows nobody holds: due first (unordered) or in acceptance
-- order (fifo). Rows written already leased (the hot path) are in neither index, so accepting
-- them costs no write here.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_unleased ON deliveries(target_id, next_attempt_at, id) WHERE status = 'pending' AND lease_token IS NULL;
CREATE INDEX deliveries_unleased_in_order ON deliveries(target_id, event_seq) WHERE status = 'pending' AND lease_token IS NULL;
-- The queue-depth gauge counts pending rows from here.
CREATE INDEX deliveries_pending ON deliveries(status) WHERE status = 'pending';

-- Rate limits are kept by each target's owner, in memory: the answers log is no longer needed.
DROP TABLE throttle_log;
