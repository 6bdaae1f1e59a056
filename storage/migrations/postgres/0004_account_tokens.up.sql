-- Single-use tokens for password reset and e-mail verification. Keep it
-- equivalent to migrations/sqlite/0004_account_tokens.up.sql.
--
-- token_hash is the hex SHA-256 of the token the user received: a copy of
-- this table yields no usable token. A token is used by deleting its row
-- (DELETE … RETURNING), so two concurrent uses cannot both succeed.
-- fingerprint binds the token to the account state it was issued for (a
-- digest of the password hash for a reset, of the e-mail for a
-- verification): a password or e-mail change makes it worthless.
CREATE TABLE account_tokens (
    token_hash  text PRIMARY KEY CHECK (length(token_hash) = 64),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose <> ''),
    fingerprint text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);

CREATE INDEX idx_account_tokens_user_purpose ON account_tokens (user_id, purpose);
CREATE INDEX idx_account_tokens_expires_at ON account_tokens (expires_at);
