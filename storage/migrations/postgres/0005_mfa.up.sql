-- TOTP second factor (RFC 6238). Keep it equivalent to
-- migrations/sqlite/0005_mfa.up.sql.
--
-- secret is sealed (AES-256-GCM, with a key derived from secret_key and
-- named by its kid), so a copy of the table gives no codes. confirmed_at
-- is NULL while an enrolment waits for its first code. last_step is the
-- last accepted 30-second time step: a code of that step or an earlier one
-- is refused, so no code works twice.
CREATE TABLE user_mfa (
    user_id      uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       text NOT NULL CHECK (secret <> ''),
    confirmed_at timestamptz,
    last_step    bigint NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Single-use recovery codes, stored as the SHA-256 of an 80-bit random code.
CREATE TABLE mfa_recovery_codes (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash text NOT NULL CHECK (length(code_hash) = 64),
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);
