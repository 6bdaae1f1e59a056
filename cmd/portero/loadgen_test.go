package main

// The load generator and the reporting of the load harness
// (loadharness_test.go, built with -tags loadharness). They live in a file
// without the tag so that the plain test run keeps them compiling and checks
// their arithmetic (TestLoadGen*), while the slow harness itself runs only
// from `make bench`.

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// loadRun is one timed closed-loop run: its throughput and latency figures.
type loadRun struct {
	requests int // answered with the expected status
	errors   int // failed, or answered with another status
	elapsed  time.Duration
	rps      float64
	p50      time.Duration
	p99      time.Duration
	p999     time.Duration
	firstErr string // the first failure, to say what went wrong
	// CPU time per answered request of the process under test and of the
	// upstream behind it, where the caller measured them: unlike req/s,
	// these barely move when other work shares the machine.
	cpuPerReq, upstreamCPUPerReq time.Duration
	// machineCPUPerReq is every process's and the kernel's CPU time over
	// the run (load generator, databases included) per request;
	// postgresCPUPerReq is PostgreSQL's share of it.
	machineCPUPerReq, postgresCPUPerReq time.Duration
}

// loadClients are the workers of a closed-loop load: one client each, with
// a transport of its own, so exactly one keep-alive connection each, as a
// load generator with N connections means. They outlive a run, so runs
// can alternate between two servers in short slices without reconnecting.
type loadClients []*http.Client

func newLoadClients(n int) loadClients {
	c := make(loadClients, n)
	for i := range c {
		tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true, Proxy: nil}
		c[i] = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return c
}

func (c loadClients) close() {
	for _, cl := range c {
		cl.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// loadSample is the raw outcome of one or more slices of load.
type loadSample struct {
	lat      []time.Duration // of requests answered with the expected status
	errs     int
	elapsed  time.Duration
	firstErr string
}

func (s *loadSample) add(o loadSample) {
	s.lat = append(s.lat, o.lat...)
	s.errs += o.errs
	s.elapsed += o.elapsed
	if s.firstErr == "" {
		s.firstErr = o.firstErr
	}
}

func (s loadSample) run() loadRun { return summarize(s.lat, s.errs, s.elapsed, s.firstErr) }

// drive keeps every client busy for d, each sending its next request as
// soon as the previous answer has been read. newRequest makes worker w's
// next request; an answer with another status than want counts as an
// error. No request is cut off when d ends (a cancelled request closes its
// connection): the slice lasts until the last answer is in, and elapsed
// counts to then. Latencies are kept in full, so percentiles are exact.
func (c loadClients) drive(d time.Duration, want int, newRequest func(ctx context.Context, w int) *http.Request) loadSample {
	// A server that stops answering fails the slice instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		out loadSample
		wg  sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w, client := range c {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<12)
			e, first := 0, ""
			fail := func(msg string) {
				e++
				if first == "" {
					first = msg
				}
			}
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				res, err := client.Do(newRequest(ctx, w))
				if err != nil {
					fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != want {
					fail(fmt.Sprintf("status %d", res.StatusCode))
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			defer mu.Unlock()
			out.add(loadSample{lat: lat, errs: e, firstErr: first})
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// driveLoad is one run of conns fresh clients for d (see drive).
func driveLoad(conns int, d time.Duration, want int, newRequest func(ctx context.Context, w int) *http.Request) loadRun {
	c := newLoadClients(conns)
	defer c.close()
	return c.drive(d, want, newRequest).run()
}

// summarize turns the latencies of one run into its figures; lat is sorted
// in place.
func summarize(lat []time.Duration, errs int, elapsed time.Duration, firstErr string) loadRun {
	slices.Sort(lat)
	r := loadRun{requests: len(lat), errors: errs, elapsed: elapsed, firstErr: firstErr,
		p50: percentile(lat, 0.50), p99: percentile(lat, 0.99), p999: percentile(lat, 0.999)}
	if elapsed > 0 {
		r.rps = float64(len(lat)) / elapsed.Seconds()
	}
	return r
}

// percentile is the nearest-rank percentile of sorted latencies: the
// smallest value that at least q of the samples do not exceed. Zero for no
// samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median of xs (the mean of the middle two for an even count); xs is not
// changed. Zero for none.
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianRun combines the rounds of one row: the median of each figure
// across rounds (so one noisy round moves nothing) and the errors summed.
func medianRun(runs []loadRun) loadRun {
	pick := func(f func(loadRun) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		return median(v)
	}
	dur := func(f func(loadRun) time.Duration) time.Duration {
		return time.Duration(pick(func(r loadRun) float64 { return float64(f(r)) }))
	}
	m := loadRun{
		rps:  pick(func(r loadRun) float64 { return r.rps }),
		p50:  dur(func(r loadRun) time.Duration { return r.p50 }),
		p99:  dur(func(r loadRun) time.Duration { return r.p99 }),
		p999: dur(func(r loadRun) time.Duration { return r.p999 }),

		cpuPerReq:         dur(func(r loadRun) time.Duration { return r.cpuPerReq }),
		upstreamCPUPerReq: dur(func(r loadRun) time.Duration { return r.upstreamCPUPerReq }),
		machineCPUPerReq:  dur(func(r loadRun) time.Duration { return r.machineCPUPerReq }),
		postgresCPUPerReq: dur(func(r loadRun) time.Duration { return r.postgresCPUPerReq }),
	}
	for _, r := range runs {
		m.requests += r.requests
		m.errors += r.errors
		m.elapsed += r.elapsed
		if m.firstErr == "" {
			m.firstErr = r.firstErr
		}
	}
	return m
}

// tableRow is one line of the harness's table. Zero durations, RSS and
// ratio print as "—" (not measured for that row); so does errors < 0.
type tableRow struct {
	name   string
	conns  int
	rps    float64
	p50    time.Duration
	p99    time.Duration
	p999   time.Duration
	errors int
	rssMiB float64
	ratio  float64
	// CPU µs per request of the row's process and of the upstream.
	cpu, upstreamCPU time.Duration
	// machineCPU is the whole machine's CPU µs per request, postgresCPU
	// PostgreSQL's part of it.
	machineCPU, postgresCPU time.Duration
	// bareRPS is what the ratio is to: the bare proxy given the same requests.
	bareRPS float64
	// perRound is each round's row over its own bare run, which ran right
	// next to it: the spread says how much the machine moved in one run.
	perRound []float64
}

var tableHeader = []string{"row", "conns", "req/s", "p50", "p99", "p99.9", "errors", "peak RSS MiB", "CPU µs/req", "upstream µs/req", "machine µs/req", "postgres µs/req", "bare req/s", "ratio", "per round"}

func (r tableRow) cells() []string {
	dash := "—"
	ms := func(d time.Duration) string {
		if d <= 0 {
			return dash
		}
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	num := func(v float64, format string) string {
		if v <= 0 {
			return dash
		}
		return fmt.Sprintf(format, v)
	}
	conns, errs := dash, dash
	if r.conns > 0 {
		conns = fmt.Sprint(r.conns)
	}
	if r.errors >= 0 {
		errs = fmt.Sprint(r.errors)
	}
	us := func(d time.Duration) string { return num(float64(d)/float64(time.Microsecond), "%.0f") }
	spread := dash
	if len(r.perRound) > 0 {
		spread = fmt.Sprintf("%.2f–%.2f", slices.Min(r.perRound), slices.Max(r.perRound))
	}
	return []string{r.name, conns, num(r.rps, "%.0f"), ms(r.p50), ms(r.p99), ms(r.p999), errs,
		num(r.rssMiB, "%.1f"), us(r.cpu), us(r.upstreamCPU), us(r.machineCPU), us(r.postgresCPU), num(r.bareRPS, "%.0f"), num(r.ratio, "%.2f×"), spread}
}

// formatText lays the rows out in aligned columns for a terminal.
func formatText(rows []tableRow) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	line := func(cells []string) {
		// tabwriter right-aligns every column; the name reads better
		// left-aligned, so it is padded here.
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	width := len(tableHeader[0])
	for _, r := range rows {
		width = max(width, len([]rune(r.name)))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len([]rune(s))) }
	line(append([]string{pad(tableHeader[0])}, tableHeader[1:]...))
	for _, r := range rows {
		c := r.cells()
		c[0] = pad(c[0])
		line(c)
	}
	_ = tw.Flush()
	return b.String()
}

// formatMarkdown is the same table for BENCHMARKS.md.
// paired sets the row's ratio from its rounds' own ratios: their median,
// since each round's row and twin met the same moments of the machine and
// medians taken apart would lose that.
func (r *tableRow) paired(perRound []float64) {
	r.perRound = perRound
	if len(perRound) > 0 {
		r.ratio = median(perRound)
	}
}

// pairRatios is runs[i].rps / bare[i].rps for every round.
func pairRatios(runs, bare []loadRun) []float64 {
	r := make([]float64, 0, len(runs))
	for i := range min(len(runs), len(bare)) {
		if bare[i].rps > 0 {
			r = append(r, runs[i].rps/bare[i].rps)
		}
	}
	return r
}

func formatMarkdown(rows []tableRow) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(tableHeader, " | ") + " |\n")
	b.WriteString("| --- |" + strings.Repeat(" ---: |", len(tableHeader)-1) + "\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r.cells(), " | ") + " |\n")
	}
	return b.String()
}

// statCPU reads the user plus system CPU time from a /proc/PID/stat line,
// with that of the children the process has waited for if children is set.
func statCPU(stat string, children bool) time.Duration {
	// The command name (field 2) may hold spaces and parentheses; count
	// from after its closing one.
	i := strings.LastIndex(stat, ") ")
	if i < 0 {
		return 0
	}
	fields := strings.Fields(stat[i+2:])
	if len(fields) < 15 {
		return 0
	}
	// utime, stime, cutime and cstime are fields 14 to 17, in clock ticks;
	// Linux reports them at USER_HZ, which is 100 on every architecture Go
	// supports.
	n := 2
	if children {
		n = 4
	}
	var ticks int64
	for _, f := range fields[11 : 11+n] {
		v, _ := strconv.ParseInt(f, 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
