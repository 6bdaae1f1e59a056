-- A role can require a second factor of its users (admins set it). Keep it
-- equivalent to migrations/sqlite/0006_role_mfa_required.up.sql.
ALTER TABLE roles ADD COLUMN mfa_required boolean NOT NULL DEFAULT false;
