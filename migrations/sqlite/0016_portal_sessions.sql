-- Portal sessions (issue 17): a one-time link's code (its digest, good once, for minutes) opens a
-- short-lived session confined to one account (its token's digest); the origins that may frame
-- the portal, and the platform's theme, as JSON.
CREATE TABLE portal_sessions (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    code_digest     TEXT NOT NULL UNIQUE,
    code_expires_at BIGINT NOT NULL,
    session_digest  TEXT UNIQUE,
    expires_at      BIGINT NOT NULL,
    allowed_origins TEXT NOT NULL,
    theme           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_account ON portal_sessions(account_id);
