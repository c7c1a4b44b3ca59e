-- The PostgreSQL twin of migrations/sqlite/0015_response_headers.sql.
-- The headers of each attempt's answer, for the delivery log (issue 16): a JSON array of
-- [name, value] pairs, bounded and with credentials masked; NULL without an answer, before this
-- migration, or once retention deleted the payload.
ALTER TABLE attempts ADD COLUMN response_headers TEXT;
