package main

import (
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

// The cached encoder must write exactly what zap's own does, whatever the
// zone, across second and millisecond boundaries and for times that go
// back (a clock step) or jump.
func TestISOTimeEncoderMatchesZaps(t *testing.T) {
	ours := isoTimeEncoder()
	base := time.Date(2026, 12, 31, 23, 59, 58, 998_765_432, time.UTC)
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600), time.FixedZone("", 0)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	steps := []time.Duration{0, time.Microsecond, time.Millisecond, 999 * time.Microsecond, time.Second, -time.Second,
		1500 * time.Millisecond, -3 * time.Millisecond, 24 * time.Hour, 0}
	// The same instants in every zone, one after another: the cache must
	// tell them apart.
	now := base
	for i := range 200 {
		now = now.Add(steps[i%len(steps)])
		for _, loc := range zones {
			at := now.In(loc)
			want, got := zapcore.NewMapObjectEncoder(), zapcore.NewMapObjectEncoder()
			_ = want.AddArray("t", zapcore.ArrayMarshalerFunc(func(e zapcore.ArrayEncoder) error {
				zapcore.ISO8601TimeEncoder(at, e)
				return nil
			}))
			_ = got.AddArray("t", zapcore.ArrayMarshalerFunc(func(e zapcore.ArrayEncoder) error {
				ours(at, e)
				return nil
			}))
			w, g := want.Fields["t"].([]any)[0], got.Fields["t"].([]any)[0]
			if g != w {
				t.Fatalf("%v: got %v, zap writes %v", at, g, w)
			}
		}
	}
}
