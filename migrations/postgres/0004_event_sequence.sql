-- A commit-ordered sequence for the pull API's cursor: transactions that add events hold an
-- advisory lock until they commit, so seq increases in commit order across nodes.
ALTER TABLE events ADD COLUMN seq BIGINT NOT NULL;
CREATE UNIQUE INDEX events_seq ON events(seq);
CREATE INDEX events_by_account_seq ON events(account_id, seq);
