-- What the legacy table said about an imported user at the last import, so
-- a re-import can tell a change made in the legacy app (applied) from one
-- made in Portero (kept). Keep it equivalent to
-- migrations/sqlite/0008_legacy_import_state.up.sql.
ALTER TABLE users ADD COLUMN legacy_import jsonb;
