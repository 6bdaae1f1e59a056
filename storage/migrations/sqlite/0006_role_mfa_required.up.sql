-- A role can require a second factor of its users (admins set it). Keep it
-- equivalent to migrations/postgres/0006_role_mfa_required.up.sql.
ALTER TABLE roles ADD COLUMN mfa_required BOOLEAN NOT NULL DEFAULT 0 CHECK (mfa_required IN (0, 1));
