-- The claim reads the earliest due rows with their target and id from this index alone, and skips
-- the rows of targets already at their cap without visiting the table.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at, target_id, id);
