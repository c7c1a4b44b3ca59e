-- The PostgreSQL twin of migrations/sqlite/0010_throttling.sql.
-- Throttling: a target's optional rate limit, in attempts per second (NULL: no limit).
ALTER TABLE targets ADD COLUMN rate_limit BIGINT;

-- Answered attempts of rate-limited targets: one row per target per batch of recorded results,
-- with when the last of them was answered and how many there were. An attempt counts against its
-- target's limit while it is leased (in flight) and for one second after its answer; a claim sums
-- the rows of that second. Rows older than a few seconds are deleted as new ones come, so the
-- table stays small. Every query ranges over finished_at, hence the index. No foreign key: a
-- deleted target's rows simply age out.
CREATE TABLE throttle_log (
    target_id   TEXT NOT NULL,
    finished_at BIGINT NOT NULL,
    attempts    BIGINT NOT NULL
);
CREATE INDEX throttle_log_by_time ON throttle_log(finished_at, target_id);
