package proxy

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// runLoadWith is runLoad for requests that need more than a URL (a session
// cookie, a bearer token): newRequest makes each request, on ctx.
func runLoadWith(tb testing.TB, clients int, d time.Duration, newRequest func(ctx context.Context) *http.Request) loadResult {
	tb.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxIdleConns: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	var mu sync.Mutex
	var all []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			e := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				res, err := client.Do(newRequest(ctx))
				if err != nil {
					if ctx.Err() == nil {
						e++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					e++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += e
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(all)
	r := loadResult{requests: len(all), errors: errs, rps: float64(len(all)) / elapsed.Seconds()}
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[len(all)*99/100]
	}
	return r
}

// Errors is how many requests of the run failed or were not 200.
func (r loadResult) Errors() int { return r.errors }

// Requests, RPS, P50 and P99 read a run's figures from outside the package.
func (r loadResult) Requests() int      { return r.requests }
func (r loadResult) RPS() float64       { return r.rps }
func (r loadResult) P50() time.Duration { return r.p50 }
func (r loadResult) P99() time.Duration { return r.p99 }

// The load generator and reporting, exported to the external test package
// (gateway_bench_test.go), which needs authn and so cannot be package proxy.
type LoadResult = loadResult

var (
	RunLoadWith      = runLoadWith
	ReportComparison = reportComparison
	BareProxy        = bareProxy
	BenchUpstream    = benchUpstream
	BenchLogger      = benchLogger
)
