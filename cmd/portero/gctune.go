package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// defaultHeapFloor is the heap growth Portero allows before a collection
// when little is live. A proxy keeps almost nothing between requests (a few
// MiB), so Go's default (collect when the heap doubles) ran a full cycle
// every few MiB of request garbage: thousands of cycles a minute, an eighth
// of the CPU of a busy legacy route. With the floor the collector waits for
// this much garbage; once the live heap is larger than the floor, the
// default rule applies unchanged.
const defaultHeapFloor = 16 << 20

// gcTuner keeps the collector's headroom at least floor bytes by raising
// GOGC while the live heap is small. It re-reads the live heap after each
// collection, from a finalizer that re-arms itself.
type gcTuner struct {
	floor   uint64
	percent atomic.Int64 // the GOGC in force, for tests and the log
	stopped atomic.Bool
	sample  []metrics.Sample
}

// startGCTuner tunes the collector unless the operator chose GOGC: theirs
// is then the one in force. A GOMEMLIMIT works with the tuner (the runtime
// collects harder as the heap nears it, whatever GOGC says), so the floor
// never pushes the heap past a container's limit. It returns nil when it
// does not tune; stop restores GOGC=100.
func startGCTuner(floor uint64, getenv func(string) string) *gcTuner {
	if floor == 0 || getenv("GOGC") != "" {
		return nil
	}
	t := &gcTuner{floor: floor, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent.Store(100)
	t.tune()
	t.arm()
	return t
}

// sentinel is what the finalizer hangs on: unreachable from the start, it
// is found at every collection and resurrected by re-arming.
type sentinel struct{ _ [16]byte } // not a tiny allocation, so it is freed alone

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	})
}

// tune sets GOGC so the next collection comes after max(live, floor) bytes
// of growth; it leaves GOGC alone when the change would be small.
func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	live := uint64(0)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	want := gcPercentFor(live, t.floor)
	if cur := t.percent.Load(); want*10 > cur*9 && want*10 < cur*11 {
		return
	}
	t.percent.Store(want)
	debug.SetGCPercent(int(want))
}

// gcPercentFor is the GOGC that gives a heap of live bytes floor bytes of
// headroom, never below Go's default of 100 nor above maxGCPercent.
func gcPercentFor(live, floor uint64) int64 {
	if live == 0 {
		return maxGCPercent
	}
	p := int64(floor * 100 / live)
	return min(max(p, 100), maxGCPercent)
}

// maxGCPercent caps the tuner: the runtime scales its 4 MiB minimum heap
// by GOGC/100, so at 400 a near-empty heap still gets about 16 MiB, and no
// more (at 1000 it got 40 MiB).
const maxGCPercent = 400

func (t *gcTuner) stop() {
	if t == nil {
		return
	}
	t.stopped.Store(true)
	debug.SetGCPercent(100)
}
