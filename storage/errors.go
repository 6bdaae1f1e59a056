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

	// ErrDestinationNotEmpty means Copy was asked to copy into a database
	// that already has users or audit rows, without CopyOptions.Merge.
	ErrDestinationNotEmpty = errors.New("storage: copy: the destination already has users or audit rows")

	// ErrSchemaMismatch means the source is not fully migrated by this
	// binary, or the two databases are at different schema versions, so
	// their columns cannot be trusted to line up.
	ErrSchemaMismatch = errors.New("storage: copy: source and destination schemas differ")
)
