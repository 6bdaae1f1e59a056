-- Fleet-wide route mode overrides (portero routes set/unset/reset and the
-- admin API). Keep it equivalent to migrations/sqlite/0003_route_overrides.up.sql.
--
-- route is the route's name in the file's table (its path, plus its methods
-- when it has some) or 'default'. mode is checked by the code, not here, so
-- that a later mode needs no migration.
CREATE TABLE route_overrides (
    route      text PRIMARY KEY CHECK (route <> ''),
    mode       text NOT NULL CHECK (mode <> ''),
    changed_by text NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT now(),
    version    bigint NOT NULL
);

-- One row whose counter every change raises in the change's transaction.
-- Updating it locks the row until commit, so versions are handed out in
-- commit order and an instance that polls the counter never misses a change.
CREATE TABLE route_overrides_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO route_overrides_version (id, version) VALUES (1, 0);
