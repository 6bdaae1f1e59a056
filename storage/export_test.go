package storage

import (
	"context"
	"io/fs"
)

// MigrateFrom runs the migrations in dir of fsys instead of the embedded
// ones, so tests can try histories the real files do not have.
func (db *DB) MigrateFrom(ctx context.Context, fsys fs.FS, dir string) error {
	known, err := loadMigrations(fsys, dir)
	if err != nil {
		return err
	}
	return db.migrate(ctx, known)
}
