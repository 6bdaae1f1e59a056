-- TOTP second factor (RFC 6238). Keep it equivalent to
-- migrations/postgres/0005_mfa.up.sql (see the reasons there).
CREATE TABLE user_mfa (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT NOT NULL CHECK (secret <> ''),
    confirmed_at TIMESTAMP,
    last_step    INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
);

CREATE TABLE mfa_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL CHECK (length(code_hash) = 64),
    used_at   TIMESTAMP,
    PRIMARY KEY (user_id, code_hash)
);
