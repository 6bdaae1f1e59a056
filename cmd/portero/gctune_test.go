package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, tc := range []struct {
		live, floor uint64
		want        int64
	}{
		{live: 4 * mib, floor: 16 * mib, want: 400},  // small heap: 16 MiB of headroom
		{live: 16 * mib, floor: 16 * mib, want: 100}, // from here on, Go's default
		{live: 200 * mib, floor: 16 * mib, want: 100},
		{live: 1 * mib, floor: 16 * mib, want: maxGCPercent}, // capped
		{live: 0, floor: 16 * mib, want: maxGCPercent},
	} {
		if got := gcPercentFor(tc.live, tc.floor); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.floor/mib, got, tc.want)
		}
	}
}

// TestGCTunerHonoursOperator: GOGC set by the operator wins; without it
// the tuner raises GOGC for a small heap, keeps it current across
// collections, and stop restores the default. Not parallel: GOGC is the
// process's.
func TestGCTunerHonoursOperator(t *testing.T) {
	if startGCTuner(defaultHeapFloor, func(k string) string {
		if k == "GOGC" {
			return "200"
		}
		return ""
	}) != nil {
		t.Error("tuner started although GOGC is set")
	}

	// A floor far above this heap; GOMEMLIMIT does not turn the tuner off.
	gc := startGCTuner(1<<30, func(k string) string {
		if k == "GOMEMLIMIT" {
			return "512MiB"
		}
		return ""
	})
	if gc == nil {
		t.Fatal("tuner not started")
	}
	t.Cleanup(gc.stop)
	if got := debug.SetGCPercent(maxGCPercent); got != maxGCPercent {
		t.Errorf("GOGC in force = %d, want %d for a heap far below the floor", got, maxGCPercent)
	}
	// An operator-like change behind the tuner's back is put right at the
	// next collection: the finalizer re-armed itself.
	gc.percent.Store(100)
	debug.SetGCPercent(100)
	deadline := time.Now().Add(5 * time.Second)
	for gc.percent.Load() != maxGCPercent && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := gc.percent.Load(); got != maxGCPercent {
		t.Errorf("after collections the tuner holds GOGC %d, want %d", got, maxGCPercent)
	}
	gc.stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("after stop GOGC = %d, want 100", got)
	}
}
