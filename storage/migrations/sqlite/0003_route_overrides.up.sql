-- Fleet-wide route mode overrides (portero routes set/unset/reset and the
-- admin API). Keep it equivalent to migrations/postgres/0003_route_overrides.up.sql.
--
-- route is the route's name in the file's table (its path, plus its methods
-- when it has some) or 'default'. mode is checked by the code, not here, so
-- that a later mode needs no migration.
CREATE TABLE route_overrides (
    route      TEXT PRIMARY KEY CHECK (route <> ''),
    mode       TEXT NOT NULL CHECK (mode <> ''),
    changed_by TEXT NOT NULL DEFAULT '',
    changed_at TIMESTAMP NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')),
    version    INTEGER NOT NULL
);

-- One row whose counter every change raises in the change's transaction
-- (writers take turns on SQLite's write lock).
CREATE TABLE route_overrides_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO route_overrides_version (id, version) VALUES (1, 0);
