-- Indexes for GET /audit and the /auth/stats endpoints. Keep it equivalent to
-- migrations/postgres/0002_query_indexes.up.sql (see the reasons there).
--
-- SQLite compares text byte-wise (the BINARY collation) unless told
-- otherwise, so the action index needs no collation of its own, and it
-- serves exact action matches too: the plain action index is superseded here.

CREATE INDEX idx_audit_logs_user_created ON audit_logs (user_id, created_at, id);
CREATE INDEX idx_audit_logs_ip_created ON audit_logs (ip_address, created_at, id);
CREATE INDEX idx_audit_logs_action_created ON audit_logs (action, created_at);

DROP INDEX idx_audit_logs_user_id;
DROP INDEX idx_audit_logs_ip_address;
DROP INDEX idx_audit_logs_action;

-- SQLite uses a partial index when the query compares the column with
-- anything but IS, which implies IS NOT NULL.
CREATE INDEX idx_users_last_login ON users (last_login) WHERE last_login IS NOT NULL;
CREATE INDEX idx_users_locked_until ON users (locked_until) WHERE locked_until IS NOT NULL;

CREATE INDEX idx_user_sessions_created_at ON user_sessions (created_at);
