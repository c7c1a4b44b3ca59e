-- The PostgreSQL twin of migrations/sqlite/0026_upload_progress.sql.
-- An activation's upload progress: when it last stored records (set at its start and per batch).
-- An upload not released and without progress for `domain::activation::STALLED_UPLOAD` is dead
-- (its client went away or its server stopped): no longer a sync run in progress, and discarded
-- by the janitor.
ALTER TABLE activations ADD COLUMN progressed_at BIGINT;
