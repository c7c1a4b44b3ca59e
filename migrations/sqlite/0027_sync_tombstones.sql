-- A key a mirror run deleted stays in the sync state as a tombstone, dated by that run, so an
-- earlier run folded again (its rejected records retried) cannot bring it back as sent: the key
-- would then count as unchanged and never be sent again. Tombstones are neither state nor keys
-- to delete.
ALTER TABLE sync_state ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
