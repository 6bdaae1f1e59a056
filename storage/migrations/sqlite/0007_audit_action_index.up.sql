-- PostgreSQL drops its idx_audit_logs_action here; SQLite dropped its own in
-- 0002 (its default collation is byte-wise, so the (action, created_at) index
-- serves exact matches). The step exists so both dialects share versions.
SELECT 1;
