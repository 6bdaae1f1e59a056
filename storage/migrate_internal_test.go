package storage

import (
	"errors"
	"testing"
	"testing/fstest"
)

func TestNextMigration(t *testing.T) {
	t.Parallel()
	known := []migration{{Version: 1, Name: "init"}, {Version: 2, Name: "more"}, {Version: 3, Name: "most"}}
	rows := func(vs ...int) []appliedRow {
		var out []appliedRow
		for _, v := range vs {
			out = append(out, appliedRow{Version: v, Name: "x"})
		}
		return out
	}
	tests := []struct {
		name    string
		known   []migration
		applied []appliedRow
		want    int // 0: none
		wantErr error
	}{
		{name: "fresh", known: known, want: 1},
		{name: "partway", known: known, applied: rows(1), want: 2},
		{name: "current", known: known, applied: rows(1, 2, 3)},
		{name: "no migrations", applied: nil},
		{name: "newer database", known: known, applied: rows(1, 2, 3, 4), wantErr: ErrSchemaTooNew},
		{name: "newer with gap", known: known, applied: rows(1, 9), wantErr: ErrSchemaTooNew},
		{name: "unknown old version", known: []migration{{Version: 1}, {Version: 3}}, applied: rows(1, 2), wantErr: ErrMigrationHistory},
		{name: "gap", known: known, applied: rows(1, 3), wantErr: ErrMigrationHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := nextMigration(tt.known, tt.applied)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			switch {
			case tt.want == 0 && got != nil:
				t.Fatalf("next = %d, want none", got.Version)
			case tt.want != 0 && (got == nil || got.Version != tt.want):
				t.Fatalf("next = %v, want %d", got, tt.want)
			}
		})
	}
}

func TestLoadMigrationsRejectsMisnamedFiles(t *testing.T) {
	t.Parallel()
	tests := map[string]fstest.MapFS{
		"no number":    {"m/init.up.sql": {}},
		"down file":    {"m/0001_init.up.sql": {}, "m/0001_init.down.sql": {}},
		"version zero": {"m/0000_init.up.sql": {}},
		"twice":        {"m/0001_a.up.sql": {}, "m/0001_b.up.sql": {}},
		"upper case":   {"m/0001_Init.up.sql": {}},
	}
	for name, fsys := range tests {
		if _, err := loadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: loadMigrations accepted it", name)
		}
	}
	ms, err := loadMigrations(fstest.MapFS{"m/0002_b.up.sql": {Data: []byte("B")}, "m/0001_a.up.sql": {Data: []byte("A")}}, "m")
	if err != nil || len(ms) != 2 || ms[0].Name != "a" || ms[1].SQL != "B" {
		t.Fatalf("loadMigrations = %+v, %v", ms, err)
	}
}

// Both dialects must offer the same steps under the same numbers and names.
func TestEmbeddedMigrationsMatchAcrossDialects(t *testing.T) {
	t.Parallel()
	pg, err := migrations(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 || len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].Version != lite[i].Version || pg[i].Name != lite[i].Name {
			t.Errorf("step %d: postgres %04d_%s, sqlite %04d_%s", i, pg[i].Version, pg[i].Name, lite[i].Version, lite[i].Name)
		}
		if pg[i].Version != i+1 {
			t.Errorf("step %d has version %d: versions run 1, 2, 3, … without gaps", i, pg[i].Version)
		}
	}
}
