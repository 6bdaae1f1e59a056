-- Every index costs each audit insert a write, and access auditing inserts a
-- row per request. idx_audit_logs_action (the guide's, on action in the
-- database's collation) served only exact action matches; the store now
-- compares action COLLATE "C" for those too (the same answer: equality in a
-- deterministic collation is byte equality), which
-- idx_audit_logs_action_c_created serves. SQLite dropped its copy in 0002.
DROP INDEX idx_audit_logs_action;
