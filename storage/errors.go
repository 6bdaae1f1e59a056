package storage

import "errors"

var (
	// ErrInvalidURL means the storage URL could not be understood. The
	// message never contains the URL's password.
	ErrInvalidURL = errors.New("storage: invalid URL")

	// ErrUnsupportedScheme means the URL names neither PostgreSQL nor SQLite.
	ErrUnsupportedScheme = errors.New("storage: unsupported URL scheme (want postgres://, postgresql:// or sqlite://)")

	// ErrConnect means the database could not be opened or did not answer.
	ErrConnect = errors.New("storage: cannot connect")

	// ErrSchemaTooNew means the database was migrated by a newer Portero than
	// this binary. Running against it could misread or corrupt data, so
	// Migrate refuses; upgrade the binary instead.
	ErrSchemaTooNew = errors.New("storage: database schema is newer than this binary")

	// ErrMigrationHistory means schema_migrations records a version this
	// binary does not know below its latest one, or a gap: the history was
	// edited or comes from a different build, and applying more steps on top
	// of it is not safe.
	ErrMigrationHistory = errors.New("storage: schema_migrations does not match this binary's migrations")
)
