//go:build soak

package main

import (
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// soakReload: a config file that is broken, missing or half-written never
// replaces the route table in force; /anything/app stays a gateway route
// (401 without a session) throughout, even for the instant a half-written
// file happens to be valid YAML without its routes.
func soakReload(t *testing.T, env soakEnv) {
	rd := newSoakRedis(t)
	st := soakStart(t, soakOpts{upstream: env.upstream, storage: env.pg.newDatabase(t), sessions: rd.url("")})
	good, err := os.ReadFile(st.config)
	if err != nil {
		t.Fatal(err)
	}
	reloads := func(result string) float64 {
		return metricsOf(t, st.ops)[`portero_config_reloads_total{result="`+result+`"}`]
	}
	write := func(b []byte) {
		t.Helper()
		if err := os.WriteFile(st.config, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Watch the protected route the whole time: it must never open.
	var opened, probes atomic.Int64
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			probes.Add(1)
			if r := call("GET", st.public+"/anything/app/x", "", ""); r.status != 401 {
				opened.Add(1)
			}
		}
	}()
	waitFor := func(what, result string, n float64) time.Duration {
		t.Helper()
		return eventually(t, what, 10*time.Second, func() bool { return reloads(result) >= n })
	}
	refused, ok := reloads("refused"), reloads("ok")

	write(append(append([]byte{}, good...), "  - {path: /broken, mode: [\n"...))
	took := waitFor("broken file refused", "refused", refused+1)
	figure(t, "broken file refused %v after the write", took.Round(time.Millisecond))

	if err := os.Remove(st.config); err != nil {
		t.Fatal(err)
	}
	took = waitFor("missing file refused", "refused", refused+2)
	figure(t, "missing file refused %v after the removal", took.Round(time.Millisecond))

	withNew := strings.Replace(string(good), "routes:\n", "routes:\n  - {path: /anything/new, mode: gateway}\n", 1)
	write([]byte(withNew))
	waitFor("restored file applied", "ok", ok+1)
	expect(t, "route added by the restored file", call("GET", st.public+"/anything/new", "", ""), 401, 0)

	// Cut inside the last line: not YAML.
	write([]byte(withNew[:len(withNew)-12]))
	waitFor("file cut mid-line refused", "refused", refused+3)

	// Cut at the routes key: valid YAML with no routes at all, which
	// would open every gateway route if it were applied. A slow writer
	// finishes 600ms later, four times over; only whole files may be
	// applied (the file watcher polls every second).
	cut := strings.Index(withNew, "routes:\n")
	for range 4 {
		write([]byte(withNew[:cut]))
		time.Sleep(600 * time.Millisecond)
		write([]byte(withNew))
		time.Sleep(900 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // a late reload would show now
	close(stop)
	<-watched

	// The restored file, then at most one reload per rewrite of the whole file.
	applied := reloads("ok") - ok
	if applied < 2 || applied > 5 {
		t.Errorf("%v reloads applied, want 2 to 5", applied)
	}
	if n := opened.Load(); n != 0 {
		t.Errorf("/anything/app answered without a session %d times during the reloads", n)
	}
	expect(t, "after the reloads", call("GET", st.public+"/anything/app/x", "", ""), 401, 0)
	figure(t, "refused %v, applied %v; the protected route answered 401 to all %d probes",
		reloads("refused")-refused, applied, probes.Load())
}
