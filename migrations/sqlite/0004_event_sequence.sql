-- A commit-ordered sequence for the pull API's cursor. It is assigned inside the single write
-- transaction, so it increases in commit order: a reader paging by seq never skips an event
-- that commits later with a smaller number.
ALTER TABLE events ADD COLUMN seq INTEGER;
UPDATE events SET seq = rowid;
CREATE UNIQUE INDEX events_seq ON events(seq);
CREATE INDEX events_by_account_seq ON events(account_id, seq);
