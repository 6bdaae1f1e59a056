-- Single-use tokens for password reset and e-mail verification. Keep it
-- equivalent to migrations/postgres/0004_account_tokens.up.sql (see the
-- reasons there).
CREATE TABLE account_tokens (
    token_hash  TEXT PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose <> ''),
    fingerprint TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    expires_at  TIMESTAMP NOT NULL
);

CREATE INDEX idx_account_tokens_user_purpose ON account_tokens (user_id, purpose);
CREATE INDEX idx_account_tokens_expires_at ON account_tokens (expires_at);
