package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portero/portero/configs"
	"github.com/portero/portero/proxy"
)

// reloadTables are two route tables that decide /r and /s oppositely: in
// table A, /r is a gateway route that mints a legacy token and /s is
// public; in table B the other way round. What the upstream receives tells
// which table decided a request: Portero's identity headers together with a
// minted legacy token, or neither.
func reloadTables(tb testing.TB) (a, b *proxy.Table) {
	tb.Helper()
	gateway := configs.Route{Mode: "gateway", LegacyToken: true}
	public := configs.Route{Mode: "public"}
	at := func(p string, r configs.Route) configs.Route { r.Path = p; return r }
	a, err := proxy.NewTable("legacy", []configs.Route{at("/r", gateway), at("/s", public)})
	if err != nil {
		tb.Fatal(err)
	}
	b, err = proxy.NewTable("legacy", []configs.Route{at("/r", public), at("/s", gateway)})
	if err != nil {
		tb.Fatal(err)
	}
	return a, b
}

// decidedBy classifies what the upstream received: "gateway" (every
// identity header and a minted legacy token), "public" (none of them), or
// "" for any mixture, which no single table produces.
func (st *stack) decidedBy(seen *received, u *testUser) string {
	id := identityHeaders(seen.Header)
	authz := seen.Header.Values("Authorization")
	switch {
	case len(id) == 0 && len(authz) == 0:
		return "public"
	case len(id) != 5 || len(authz) != 1 || len(id["x-auth-user-id"]) != 1 || id["x-auth-user-id"][0] != u.ID:
		return ""
	}
	if _, err := st.assertions.Verify(id["x-auth-assertion"][0], e2eAudience); err != nil {
		return ""
	}
	subj, err := st.legacy.Verify(strings.TrimPrefix(authz[0], "Bearer "))
	if err != nil || subj.LegacyID == nil || *subj.LegacyID != *u.LegacyID {
		return ""
	}
	return "gateway"
}

// TestReloadUnderLoad swaps the route table 100 times while clients send
// requests: no request fails, and each is decided wholly by one table.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a, b := reloadTables(t)
	st := newStack(t, stackOptions{backend: embedded})
	st.router.Swap(a)
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))

	const clients, swaps = 6, 100
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var (
		done      atomic.Bool
		completed atomic.Int64
		mu        sync.Mutex
		failures  []string
		seenBy    = map[string]int{} // "/r gateway" etc.
		wg        sync.WaitGroup
	)
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	for i := range clients {
		wg.Go(func() {
			paths := []string{"/r/x", "/s/x"}
			for n := i; !done.Load() && ctx.Err() == nil; n++ {
				p := paths[n%2]
				req, _ := http.NewRequestWithContext(ctx, "GET", st.url+p, nil)
				req.Header.Set("Cookie", alice.cookie())
				res, err := client.Do(req)
				if err != nil {
					fail(p + ": " + err.Error())
					continue
				}
				body, err := io.ReadAll(res.Body)
				res.Body.Close()
				var seen received
				switch {
				case err != nil:
					fail(p + ": body: " + err.Error())
				case res.StatusCode != http.StatusOK:
					fail(p + ": status " + res.Status)
				case json.Unmarshal(body, &seen) != nil:
					fail(p + ": not the upstream's answer")
				default:
					by := st.decidedBy(&seen, alice)
					if by == "" {
						fail(p + ": a mixture of two tables' decisions: " + string(body))
					}
					mu.Lock()
					seenBy[p[:2]+" "+by]++
					mu.Unlock()
				}
				completed.Add(1)
			}
		})
	}

	// Each swap waits until a few requests have completed under the table
	// in force, so reloads land between and during requests.
	for i := range swaps {
		from := completed.Load()
		for completed.Load() < from+3 && ctx.Err() == nil {
			time.Sleep(200 * time.Microsecond)
		}
		if i%2 == 0 {
			st.router.Swap(b)
		} else {
			st.router.Swap(a)
		}
	}
	done.Store(true)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("clients did not finish in time")
	}
	if len(failures) > 0 {
		t.Fatalf("failed requests during reloads:\n%s", strings.Join(failures, "\n"))
	}
	t.Logf("%d requests across %d reloads: %v", completed.Load(), swaps, seenBy)
	for _, k := range []string{"/r gateway", "/r public", "/s gateway", "/s public"} {
		if seenBy[k] == 0 {
			t.Errorf("no request decided as %q: the reloads did not interleave with requests", k)
		}
	}
	if st.router.Table() != a {
		t.Error("after an even number of swaps the first table is not in force")
	}
}

// TestReloadKeepsInFlightDecision: a request decided before a reload is
// forwarded as its table decided, even if the upstream answers after the
// reload; the next request takes the new table.
func TestReloadKeepsInFlightDecision(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}), make(chan struct{})
	echo := echoUpstream()
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/r/slow" && r.Header.Get("X-Hold") == "1" {
			close(arrived)
			<-release
		}
		echo.ServeHTTP(w, r)
	})
	a, b := reloadTables(t)
	st := newStack(t, stackOptions{backend: embedded, upstream: slow})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // runs before the upstream closes, should the test stop early
	st.router.Swap(a)
	alice := st.login(t, st.addUser(t, "alice@example.com", 2, 101, false))

	type answer struct {
		res result
		err error
	}
	got := make(chan answer, 1)
	go func() {
		r, err := st.send("GET", "/r/slow", http.Header{"Cookie": {alice.cookie()}, "X-Hold": {"1"}})
		got <- answer{r, err}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request never reached the upstream")
	}
	st.router.Swap(b)
	after := st.do(t, "GET", "/r/slow", http.Header{"Cookie": {alice.cookie()}})
	free()
	ans := <-got
	if ans.err != nil {
		t.Fatal(ans.err)
	}
	held := ans.res

	if held.status != http.StatusOK || held.seen == nil || st.decidedBy(held.seen, alice) != "gateway" {
		t.Errorf("request in flight across the reload: status %d, decided %q; want table A's gateway decision", held.status, decided(st, held, alice))
	}
	if after.status != http.StatusOK || after.seen == nil || st.decidedBy(after.seen, alice) != "public" {
		t.Errorf("request after the reload: status %d, decided %q; want table B's public decision", after.status, decided(st, after, alice))
	}
}

func decided(st *stack, r result, u *testUser) string {
	if r.seen == nil {
		return "not forwarded"
	}
	return st.decidedBy(r.seen, u)
}
