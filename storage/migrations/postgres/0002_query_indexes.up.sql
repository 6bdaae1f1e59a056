-- Indexes for GET /audit and the /auth/stats endpoints. Keep it equivalent to
-- migrations/sqlite/0002_query_indexes.up.sql.
--
-- GET /audit pages newest first, ORDER BY created_at DESC, id DESC, with a
-- keyset cursor on (created_at, id). An index that starts with the filtered
-- column and goes on with (created_at, id) serves a filtered page as one
-- backward range scan that stops after the page: no sort, however many rows
-- match, and a cursor is a bound in the same scan.
--
-- Migrations run in a transaction, so these are plain CREATE INDEX (not
-- CONCURRENTLY): on a large existing audit_logs, inserts wait while the index
-- is built. The audit Writer's inserts time out meanwhile and go to its
-- spool, and are delivered once the migration commits; nothing is lost.

CREATE INDEX idx_audit_logs_user_created ON audit_logs (user_id, created_at, id);
CREATE INDEX idx_audit_logs_ip_created ON audit_logs (ip_address, created_at, id);
-- Action families are matched as a byte-wise range (action COLLATE "C"
-- between "auth.login." and "auth.login/"), which only an index in the "C"
-- collation can serve whatever the database's own collation is. The
-- statistics count one action over a time range as an index-only scan of it.
CREATE INDEX idx_audit_logs_action_c_created ON audit_logs ((action COLLATE "C"), created_at);

-- Superseded: each is the leading column of one of the indexes above, which
-- serves every query it could. Every index costs each audit insert a write.
-- idx_audit_logs_action (the guide's) stays: exact matches in the database's
-- collation use it.
DROP INDEX idx_audit_logs_user_id;
DROP INDEX idx_audit_logs_ip_address;

-- Active users (last_login >= since) and locked accounts (locked_until > now)
-- are ranges over few rows; most users have never been locked, so the index
-- holds only those that have been.
CREATE INDEX idx_users_last_login ON users (last_login) WHERE last_login IS NOT NULL;
CREATE INDEX idx_users_locked_until ON users (locked_until) WHERE locked_until IS NOT NULL;

-- Sessions started in a window.
CREATE INDEX idx_user_sessions_created_at ON user_sessions (created_at);
