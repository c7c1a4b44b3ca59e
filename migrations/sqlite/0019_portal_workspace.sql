-- A portal session may be confined to one workspace of its account (issue 17): it then sees and
-- creates only targets available in that workspace alone, and their deliveries and events.
ALTER TABLE portal_sessions ADD COLUMN workspace_id TEXT;
