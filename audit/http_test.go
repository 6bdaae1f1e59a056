package audit_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// serveAudit mounts h at /audit with an error handler that answers a
// *audit.ParamsError as the HTTP layer must: 422 with a FastAPI body.
func serveAudit(t testing.TB, h echo.HandlerFunc) *httptest.Server {
	t.Helper()
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var pe *audit.ParamsError
		if errors.As(err, &pe) {
			detail := make([]map[string]any, len(pe.Issues))
			for i, is := range pe.Issues {
				detail[i] = map[string]any{"loc": []any{"query", is.Param}, "msg": is.Msg, "type": is.Type}
			}
			_ = c.JSON(http.StatusUnprocessableEntity, map[string]any{"detail": detail})
			return
		}
		_ = c.JSON(http.StatusInternalServerError, map[string]any{"detail": "INTERNAL_ERROR"})
	}
	e.GET("/audit", h)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

type httpResp struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, srv *httptest.Server, query string, header ...string) httpResp {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/audit?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /audit?%s: %v", query, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET /audit?%s: reading the body: %v", query, err)
	}
	return httpResp{status: res.StatusCode, header: res.Header, body: body}
}

// item is one event as GET /audit shows it.
type item struct {
	ID         string         `json:"id"`
	CreatedAt  time.Time      `json:"created_at"`
	Action     string         `json:"action"`
	UserID     *string        `json:"user_id"`
	IP         *string        `json:"ip_address"`
	UserAgent  *string        `json:"user_agent"`
	Resource   *string        `json:"resource"`
	ResourceID *string        `json:"resource_id"`
	Details    map[string]any `json:"details"`
}

type pageBody struct {
	Items      []item  `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func decodePage(t testing.TB, r httpResp) pageBody {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var p pageBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("page: %v: %s", err, r.body)
	}
	return p
}

func decodeNDJSON(t testing.TB, body []byte) []item {
	t.Helper()
	var out []item
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var it item
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("NDJSON line %d: %v: %q", len(out)+1, err, sc.Text())
		}
		out = append(out, it)
	}
	return out
}

func itemIDs(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// httpFixture is a store of either dialect with a known set of events.
type httpFixture struct {
	srv *httptest.Server
	// newestFirst are every event's IDs in the order GET /audit lists them.
	newestFirst []string
	events      map[string]audit.Event
	alice, bob  string
}

const fixtureEvents = 250

func newHTTPFixture(t *testing.T, db *storage.DB) httpFixture {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f := httpFixture{events: map[string]audit.Event{}, alice: uuid.NewString(), bob: uuid.NewString()}
	actions := []string{audit.ActionLoginSucceeded, audit.ActionLoginFailed, audit.ActionLogout, audit.ActionProxyAccess, "auth.loginx"}
	var evs []audit.Event
	for i := range fixtureEvents {
		ev := audit.Event{
			ID:        uuid.NewString(),
			Action:    actions[i%len(actions)],
			IP:        fmt.Sprintf("192.0.2.%d", i%3),
			UserAgent: "agent",
			Details:   map[string]any{"seq": float64(i)},
			// Pairs of events share a time, so the row id breaks ties.
			CreatedAt: statsBase.Add(time.Duration(i/2) * time.Second),
		}
		switch i % 4 {
		case 0:
			ev.UserID = f.alice
		case 1:
			ev.UserID = f.bob
		}
		evs = append(evs, ev)
		f.events[ev.ID] = ev
	}
	if err := audit.NewStore(db).Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		f.newestFirst = append(f.newestFirst, evs[i].ID)
	}
	// Small export pages, so that exports cross many of them.
	f.srv = serveAudit(t, audit.NewQueryHandler(audit.NewStore(db), audit.HandlerConfig{ExportPageSize: 7}))
	return f
}

// want returns the fixture's IDs, newest first, that keep says to.
func (f httpFixture) want(keep func(audit.Event) bool) []string {
	var out []string
	for _, id := range f.newestFirst {
		if keep(f.events[id]) {
			out = append(out, id)
		}
	}
	return out
}

// walk follows next_cursor from the first page of query to the last.
func (f httpFixture) walk(t *testing.T, query string) []item {
	t.Helper()
	var out []item
	q := query
	for range fixtureEvents + 2 {
		p := decodePage(t, get(t, f.srv, q))
		out = append(out, p.Items...)
		if p.NextCursor == nil {
			return out
		}
		q = query + "&cursor=" + url.QueryEscape(*p.NextCursor)
	}
	t.Fatalf("%s: next_cursor never ends", query)
	return nil
}

func TestQueryHandler(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		f := newHTTPFixture(t, db)
		epoch := statsBase
		ts := func(d time.Duration) string { return url.QueryEscape(epoch.Add(d).Format(time.RFC3339Nano)) }
		cases := []struct {
			name  string
			query string
			keep  func(audit.Event) bool
		}{
			{"everything", "", func(audit.Event) bool { return true }},
			{"user", "user_id=" + f.alice, func(e audit.Event) bool { return e.UserID == f.alice }},
			{"user in upper case", "user_id=" + strings.ToUpper(f.bob), func(e audit.Event) bool { return e.UserID == f.bob }},
			{"action family", "action=auth.login", func(e audit.Event) bool { return strings.HasPrefix(e.Action, "auth.login.") }},
			{"action family with dot", "action=auth.", func(e audit.Event) bool { return strings.HasPrefix(e.Action, "auth.") }},
			{"action family with star", "action=auth.*", func(e audit.Event) bool { return strings.HasPrefix(e.Action, "auth.") }},
			{"exact action", "action=auth.loginx", func(e audit.Event) bool { return e.Action == "auth.loginx" }},
			{"ip", "ip=192.0.2.1", func(e audit.Event) bool { return e.IP == "192.0.2.1" }},
			{"ipv4-mapped ip", "ip=" + url.QueryEscape("::ffff:192.0.2.2"), func(e audit.Event) bool { return e.IP == "192.0.2.2" }},
			{"since", "since=" + ts(100*time.Second), func(e audit.Event) bool { return !e.CreatedAt.Before(epoch.Add(100 * time.Second)) }},
			{"until", "until=" + ts(10*time.Second), func(e audit.Event) bool { return e.CreatedAt.Before(epoch.Add(10 * time.Second)) }},
			{"since with an unencoded +", "since=" + strings.ReplaceAll(epoch.Add(100*time.Second).In(time.FixedZone("", 3600)).Format(time.RFC3339), "+", "%20"),
				func(e audit.Event) bool { return !e.CreatedAt.Before(epoch.Add(100 * time.Second)) }},
			{"everything at once", "user_id=" + f.alice + "&action=auth.&ip=192.0.2.0&since=" + ts(20*time.Second) + "&until=" + ts(90*time.Second),
				func(e audit.Event) bool {
					return e.UserID == f.alice && strings.HasPrefix(e.Action, "auth.") && e.IP == "192.0.2.0" &&
						!e.CreatedAt.Before(epoch.Add(20*time.Second)) && e.CreatedAt.Before(epoch.Add(90*time.Second))
				}},
			{"nothing matches", "user_id=" + uuid.NewString(), func(audit.Event) bool { return false }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				want := f.want(tc.keep)
				if got := itemIDs(f.walk(t, tc.query+"&limit=9")); !slices.Equal(got, want) {
					t.Errorf("pages: %d items, want %d\n got %v\nwant %v", len(got), len(want), got, want)
				}
				nd := get(t, f.srv, tc.query+"&format=ndjson")
				if nd.status != http.StatusOK || nd.header.Get("Content-Type") != "application/x-ndjson" {
					t.Fatalf("ndjson: %d %s", nd.status, nd.header.Get("Content-Type"))
				}
				if got := itemIDs(decodeNDJSON(t, nd.body)); !slices.Equal(got, want) {
					t.Errorf("ndjson export: %d items, want %d", len(got), len(want))
				}
				cs := get(t, f.srv, tc.query+"&format=csv")
				rows, err := csv.NewReader(strings.NewReader(string(cs.body))).ReadAll()
				if err != nil || len(rows) == 0 {
					t.Fatalf("csv: %v %q", err, cs.body)
				}
				if got := rows[0]; !slices.Equal(got, []string{"id", "created_at", "action", "user_id", "ip_address", "user_agent", "resource", "resource_id", "details"}) {
					t.Errorf("csv header %v", got)
				}
				var got []string
				for _, r := range rows[1:] {
					got = append(got, r[0])
				}
				if !slices.Equal(got, want) {
					t.Errorf("csv export: %d rows, want %d", len(got), len(want))
				}
			})
		}

		t.Run("item shape", func(t *testing.T) {
			t.Parallel()
			p := decodePage(t, get(t, f.srv, "limit=4"))
			if len(p.Items) != 4 || p.NextCursor == nil {
				t.Fatalf("limit=4: %d items, next %v", len(p.Items), p.NextCursor)
			}
			for _, it := range p.Items {
				ev := f.events[it.ID]
				if !it.CreatedAt.Equal(ev.CreatedAt) || it.Action != ev.Action || it.IP == nil || *it.IP != ev.IP ||
					it.UserAgent == nil || *it.UserAgent != "agent" || it.Resource != nil || it.ResourceID != nil || it.Details["seq"] == nil {
					t.Errorf("item %+v does not show event %+v", it, ev)
				}
				if (ev.UserID == "") != (it.UserID == nil) {
					t.Errorf("user_id %v for event user %q: absent values must be null", it.UserID, ev.UserID)
				}
			}
			// Raw keys: every field present, null when absent.
			var raw struct{ Items []map[string]any }
			_ = json.Unmarshal(get(t, f.srv, "limit=1").body, &raw)
			for _, k := range []string{"id", "created_at", "action", "user_id", "ip_address", "user_agent", "resource", "resource_id", "details"} {
				if _, ok := raw.Items[0][k]; !ok {
					t.Errorf("item has no %q: %v", k, raw.Items[0])
				}
			}
			last := decodePage(t, get(t, f.srv, "limit=1000"))
			if len(last.Items) != fixtureEvents || last.NextCursor != nil {
				t.Errorf("limit=1000: %d items, next_cursor %v; want all %d and null", len(last.Items), last.NextCursor, fixtureEvents)
			}
			r := get(t, f.srv, "limit=2")
			if r.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("headers %v", r.header)
			}
		})

		t.Run("export limit and cursor", func(t *testing.T) {
			t.Parallel()
			// limit caps an export; with a cursor it starts after that page.
			if got := itemIDs(decodeNDJSON(t, get(t, f.srv, "format=ndjson&limit=20").body)); !slices.Equal(got, f.newestFirst[:20]) {
				t.Errorf("limit=20 export: %d items", len(got))
			}
			p := decodePage(t, get(t, f.srv, "limit=10"))
			got := itemIDs(decodeNDJSON(t, get(t, f.srv, "format=ndjson&cursor="+url.QueryEscape(*p.NextCursor)).body))
			if !slices.Equal(got, f.newestFirst[10:]) {
				t.Errorf("export from a cursor: %d items, want %d", len(got), fixtureEvents-10)
			}
		})

		t.Run("negotiation", func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				accept, query, ctype string
			}{
				{"application/x-ndjson", "", "application/x-ndjson"},
				{"text/csv", "", "text/csv; charset=utf-8"},
				{"text/csv;q=0.5, application/x-ndjson;q=0.9", "", "application/x-ndjson"},
				{"application/json, text/csv", "", "application/json"},
				{"text/html, */*;q=0.8", "", "application/json"},
				{"text/csv;q=0", "", "application/json"},
				{"", "", "application/json"},
				{"application/x-ndjson", "format=json", "application/json"},
				{"", "format=csv", "text/csv; charset=utf-8"},
			} {
				r := get(t, f.srv, tc.query+"&limit=3", "Accept", tc.accept)
				if r.status != http.StatusOK || r.header.Get("Content-Type") != tc.ctype {
					t.Errorf("Accept %q, %q: %d %q, want %q", tc.accept, tc.query, r.status, r.header.Get("Content-Type"), tc.ctype)
				}
			}
		})
	})
}

func TestQueryHandlerRefusesBadParams(t *testing.T) {
	t.Parallel()
	srv := serveAudit(t, audit.NewQueryHandler(&pagesQuerier{pages: 1}, audit.HandlerConfig{}))
	cursor := wellFormedCursor
	cases := []struct {
		query  string
		params []string // the locs refused, in order
	}{
		{"user_id=42", []string{"user_id"}},
		{"action=", []string{"action"}},
		{"action=" + strings.Repeat("a", 129), []string{"action"}},
		{"action=a%0Ab", []string{"action"}},
		{"since=yesterday", []string{"since"}},
		{"until=2026-03-01", []string{"until"}},
		{"since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", []string{"until"}},
		{"since=2026-03-01T00:00:00Z&until=2026-03-01T00:00:00Z", []string{"until"}},
		{"ip=not-an-ip", []string{"ip"}},
		{"ip=10.0.0.0/8", []string{"ip"}},
		{"cursor=garbage", []string{"cursor"}},
		{"limit=0", []string{"limit"}},
		{"limit=1001", []string{"limit"}},
		{"limit=ten", []string{"limit"}},
		{"format=xml", []string{"format"}},
		{"limit=5&limit=6", []string{"limit"}},
		{"user_id=x&since=x&limit=-1&format=pdf", []string{"user_id", "since", "limit", "format"}},
		{"q=%zz", []string{"query"}},
		{"action=" + strings.Repeat("a", 5000), []string{"query"}},
	}
	for _, tc := range cases {
		r := get(t, srv, tc.query)
		if r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422: %s", tc.query, r.status, r.body)
			continue
		}
		var body struct {
			Detail []struct {
				Loc  []any  `json:"loc"`
				Msg  string `json:"msg"`
				Type string `json:"type"`
			} `json:"detail"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		var got []string
		for _, d := range body.Detail {
			if len(d.Loc) != 2 || d.Loc[0] != "query" || d.Msg == "" || d.Type == "" {
				t.Errorf("%s: issue %+v", tc.query, d)
				continue
			}
			got = append(got, d.Loc[1].(string))
		}
		if !slices.Equal(got, tc.params) {
			t.Errorf("%s: refused %v, want %v", tc.query, got, tc.params)
		}
	}
	// Accepted: the well-formed cursor, and parameters nobody asked for.
	for _, q := range []string{"cursor=" + cursor, "unknown=1", "limit=1000", "limit=1", "action=a.b-c_d"} {
		if r := get(t, srv, q); r.status != http.StatusOK {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
}

// pagesQuerier serves pages of synthetic events: pages of them (forever
// when pages < 0), failing with failAt's page if failAt > 0.
type pagesQuerier struct {
	pages  int
	failAt int
	calls  atomic.Int64
	mu     sync.Mutex
	limits []int
}

var errDatabase = errors.New("database went away")

// wellFormedCursor has the layout of the store's cursors (version 1, Unix
// nanoseconds, row id), so the handler accepts it.
var wellFormedCursor = base64.RawURLEncoding.EncodeToString([]byte("1:1772355600000000000:1"))

func (q *pagesQuerier) Query(ctx context.Context, f audit.Filter) ([]audit.Event, string, error) {
	n := int(q.calls.Add(1))
	q.mu.Lock()
	q.limits = append(q.limits, f.Limit)
	q.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if q.failAt > 0 && n == q.failAt {
		return nil, "", errDatabase
	}
	evs := make([]audit.Event, f.Limit)
	for i := range evs {
		evs[i] = audit.Event{ID: uuid.NewString(), Action: "proxy.access", UserAgent: strings.Repeat("u", 200),
			CreatedAt: statsBase, Details: map[string]any{"page": n, "i": i}}
	}
	next := wellFormedCursor
	if q.pages >= 0 && n >= q.pages {
		next = ""
	}
	return evs, next, nil
}

func TestQueryHandlerExportStopsWhenClientLeaves(t *testing.T) {
	t.Parallel()
	q := &pagesQuerier{pages: -1} // an endless audit trail
	srv := serveAudit(t, audit.NewQueryHandler(q, audit.HandlerConfig{ExportPageSize: 100}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/audit?format=ndjson", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	// Rows arrive before the export ends: it is streamed, not buffered.
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for range 500 {
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
	}
	cancel()
	_ = res.Body.Close()
	// The handler notices and stops querying.
	var last int64
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(50 * time.Millisecond)
		n := q.calls.Load()
		if n == last {
			break
		}
		last = n
		if time.Now().After(deadline) {
			t.Fatalf("still querying after the client left: %d calls", n)
		}
	}
	// It stopped soon after: a few pages past what the client read,
	// whatever sat in socket buffers.
	t.Logf("%d pages queried for a client that read 5", last)
	if last > 1000 {
		t.Errorf("%d pages queried for a client that read 5", last)
	}
}

func TestQueryHandlerExportCutOnDatabaseError(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"ndjson", "csv"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			q := &pagesQuerier{pages: -1, failAt: 3}
			srv := serveAudit(t, audit.NewQueryHandler(q, audit.HandlerConfig{ExportPageSize: 10}))
			res, err := srv.Client().Get(srv.URL + "/audit?format=" + format)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK || err == nil {
				t.Fatalf("status %d, read error %v after %d bytes: a cut export must not end cleanly", res.StatusCode, err, len(body))
			}
		})
	}
	// A failure on the first page is an ordinary error answer.
	for _, q := range []string{"format=ndjson", "format=csv", ""} {
		srv := serveAudit(t, audit.NewQueryHandler(&pagesQuerier{pages: 2, failAt: 1}, audit.HandlerConfig{}))
		if r := get(t, srv, q); r.status != http.StatusInternalServerError {
			t.Errorf("%s: first page failing: %d %s", q, r.status, r.body)
		}
	}
}

func TestQueryHandlerExportPages(t *testing.T) {
	t.Parallel()
	q := &pagesQuerier{pages: 3}
	srv := serveAudit(t, audit.NewQueryHandler(q, audit.HandlerConfig{ExportPageSize: 4}))
	if got := len(decodeNDJSON(t, get(t, srv, "format=ndjson").body)); got != 12 {
		t.Errorf("3 pages of 4: %d items", got)
	}
	// With limit, the export stops after limit rows and asks for no more.
	q = &pagesQuerier{pages: -1}
	srv = serveAudit(t, audit.NewQueryHandler(q, audit.HandlerConfig{ExportPageSize: 4}))
	if got := len(decodeNDJSON(t, get(t, srv, "format=ndjson&limit=10").body)); got != 10 {
		t.Errorf("limit=10: %d items", got)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !slices.Equal(q.limits, []int{4, 4, 2}) {
		t.Errorf("page sizes asked for %v, want [4 4 2]", q.limits)
	}
	// An empty CSV export still has its header.
	srv = serveAudit(t, audit.NewQueryHandler(&emptyQuerier{}, audit.HandlerConfig{}))
	if r := get(t, srv, "format=csv"); string(r.body) != "id,created_at,action,user_id,ip_address,user_agent,resource,resource_id,details\n" {
		t.Errorf("empty csv: %q", r.body)
	}
	if r := get(t, srv, "format=ndjson"); len(r.body) != 0 || r.status != http.StatusOK {
		t.Errorf("empty ndjson: %d %q", r.status, r.body)
	}
	if p := decodePage(t, get(t, srv, "")); p.Items == nil || len(p.Items) != 0 || p.NextCursor != nil {
		t.Errorf("empty page: %+v", p)
	}
}

type emptyQuerier struct{}

func (emptyQuerier) Query(context.Context, audit.Filter) ([]audit.Event, string, error) {
	return nil, "", nil
}

// TestQueryHandlerCSVInjection: cells a spreadsheet would run as formulas
// come out as text, on both backends, whatever column holds them.
func TestQueryHandlerCSVInjection(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hostile := []string{"=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "=cmd|' /C calc'!A0"}
		var evs []audit.Event
		for i, h := range hostile {
			evs = append(evs, audit.Event{
				ID: uuid.NewString(), Action: "@" + fmt.Sprint(i), UserAgent: h, Resource: h, ResourceID: h, IP: h,
				CreatedAt: statsBase.Add(time.Duration(i) * time.Second), Details: map[string]any{"x": h},
			})
		}
		evs = append(evs, audit.Event{ID: uuid.NewString(), Action: "safe", UserAgent: "Mozilla/5.0 (a=b)", CreatedAt: statsBase.Add(time.Hour)})
		if err := audit.NewStore(db).Insert(ctx, evs); err != nil {
			t.Fatal(err)
		}
		srv := serveAudit(t, audit.NewQueryHandler(audit.NewStore(db), audit.HandlerConfig{}))
		rows, err := csv.NewReader(strings.NewReader(string(get(t, srv, "format=csv").body))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(evs)+1 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, row := range rows[1:] {
			for i, cell := range row {
				if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
					t.Errorf("column %s: cell %q starts a formula", rows[0][i], cell)
				}
			}
		}
		if rows[1][2] != "safe" || rows[1][5] != "Mozilla/5.0 (a=b)" {
			t.Errorf("a harmless row was changed: %q", rows[1])
		}
		if rows[2][5] != "'=cmd|' /C calc'!A0" || rows[2][2] != "'@6" {
			t.Errorf("hostile row: %q", rows[2])
		}
	})
}
