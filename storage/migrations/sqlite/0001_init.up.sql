-- Portero's first schema. Keep it equivalent to migrations/postgres/0001_init.up.sql.
-- Times are UTC text in the driver's "sqlite" layout (see the package comment);
-- defaults write the same layout so that text order is time order.
-- Columns holding times are declared TIMESTAMP so the driver scans them as time.Time.
-- UUIDs are lower-case canonical text, as PostgreSQL's uuid type would print them.

CREATE TABLE roles (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
    permissions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions) AND json_type(permissions) = 'array'),
    created_at  TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
);

-- 1 = admin, 2 = user: the migration guide registers an ordinary user with role_id 2.
INSERT INTO roles (id, name, permissions) VALUES
    (1, 'admin', '["*"]'),
    (2, 'user', '[]');

CREATE TABLE users (
    id              TEXT PRIMARY KEY CHECK (length(id) = 36 AND id = lower(id)),
    email           TEXT NOT NULL COLLATE NOCASE UNIQUE CHECK (email <> ''),
    hashed_password TEXT NOT NULL,
    first_name      TEXT NOT NULL DEFAULT '',
    last_name       TEXT NOT NULL DEFAULT '',
    role_id         INTEGER NOT NULL DEFAULT 2 REFERENCES roles (id),
    is_active       BOOLEAN NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    is_superuser    BOOLEAN NOT NULL DEFAULT 0 CHECK (is_superuser IN (0, 1)),
    is_verified     BOOLEAN NOT NULL DEFAULT 0 CHECK (is_verified IN (0, 1)),
    last_login      TIMESTAMP,
    login_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until    TIMESTAMP,
    legacy_id       INTEGER UNIQUE,
    created_at      TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    updated_at      TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
);

CREATE INDEX idx_users_role_id ON users (role_id);

-- Session history. id is the public session id (never the token or its hash).
CREATE TABLE user_sessions (
    id            TEXT PRIMARY KEY CHECK (id <> ''),
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    ip_address    TEXT,
    user_agent    TEXT,
    created_at    TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    last_activity TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    expires_at    TIMESTAMP NOT NULL,
    ended_at      TIMESTAMP,
    end_reason    TEXT
);

CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);

-- The migration guide's audit_logs, plus event_id for idempotent re-delivery.
-- No foreign key and no length limits on purpose: a spooled event must never
-- be refused, or it would block every event queued behind it.
CREATE TABLE audit_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE CHECK (length(event_id) = 36 AND event_id = lower(event_id)),
    user_id     TEXT CHECK (user_id IS NULL OR (length(user_id) = 36 AND user_id = lower(user_id))),
    action      TEXT NOT NULL,
    resource    TEXT,
    resource_id TEXT,
    ip_address  TEXT,
    user_agent  TEXT,
    details     TEXT CHECK (details IS NULL OR json_valid(details)),
    created_at  TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))
);

CREATE INDEX idx_audit_logs_user_id ON audit_logs (user_id);
CREATE INDEX idx_audit_logs_action ON audit_logs (action);
CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at);
CREATE INDEX idx_audit_logs_ip_address ON audit_logs (ip_address);
