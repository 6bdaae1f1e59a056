package main

import (
	"net/http"
	"testing"
)

// debug.pprof serves Go's profiles on the ops listener only, and only when
// it is turned on.
func TestPprofOnlyOnOpsWhenConfigured(t *testing.T) {
	t.Parallel()
	status := func(url string) int {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	public, ops, _ := startStack(t, "debug: {pprof: true}\n")
	if got := status(ops + "/debug/pprof/heap"); got != http.StatusOK {
		t.Errorf("ops /debug/pprof/heap with pprof on: %d, want 200", got)
	}
	if got := status(public + "/debug/pprof/heap"); got == http.StatusOK {
		t.Errorf("public /debug/pprof/heap answered 200: profiles must never be public")
	}

	_, ops, _ = startStack(t, "")
	if got := status(ops + "/debug/pprof/heap"); got != http.StatusNotFound {
		t.Errorf("ops /debug/pprof/heap with pprof off: %d, want 404", got)
	}
}
