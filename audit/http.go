package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// Querier is what GET /audit needs of a Store.
type Querier interface {
	Query(ctx context.Context, f Filter) ([]Event, string, error)
}

// HandlerConfig holds GET /audit's optional settings; zero values take the
// defaults.
type HandlerConfig struct {
	// Logger receives exports cut short by a database error (the client
	// already has a 200 by then, so the log is the only trace). Default: none.
	Logger *zap.Logger
	// ExportPageSize is how many rows an export reads per database query
	// (default and maximum MaxLimit). Only one page is held in memory.
	ExportPageSize int
	// WriteTimeout bounds each write of an export to the client, so that a
	// client that stops reading does not hold the handler forever
	// (default 1m). The public listener has no write timeout of its own.
	WriteTimeout time.Duration
}

// Output formats of GET /audit.
const (
	formatJSON   = "json"
	formatNDJSON = "ndjson"
	formatCSV    = "csv"
)

const (
	mimeNDJSON = "application/x-ndjson"
	mimeCSV    = "text/csv"
)

// ParamIssue is one refused query parameter of GET /audit.
type ParamIssue struct {
	Param string // the query parameter
	Msg   string // for the client
	Type  string // pydantic-style error type, e.g. "uuid_parsing"
}

// ParamsError lists every query parameter GET /audit refused. It wraps
// ErrInvalidFilter; the HTTP layer answers 422 with one entry per issue,
// located at ["query", Param].
type ParamsError struct {
	Issues []ParamIssue
}

func (e *ParamsError) Error() string {
	names := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		names[i] = is.Param
	}
	return "audit: invalid query parameters: " + strings.Join(names, ", ")
}

func (e *ParamsError) Unwrap() error { return ErrInvalidFilter }

// auditRequest is a parsed GET /audit query.
type auditRequest struct {
	filter Filter
	format string
	// limited: the client set limit; an export then stops after that many
	// rows instead of running over every page.
	limited bool
}

// NewQueryHandler returns the handler of GET /audit. It does no
// authentication of its own: mount it behind the admin check.
//
// Query parameters, each optional:
//
//	user_id  a user's UUID
//	action   an action and its family, on dot boundaries: "auth.login"
//	         matches auth.login and auth.login.failed, not auth.loginx;
//	         "auth." and "auth.*" match every auth action
//	since    RFC 3339 time, inclusive
//	until    RFC 3339 time, exclusive (must be after since)
//	ip       a client address (normalised, so ::FFFF:a.b.c.d finds a.b.c.d)
//	cursor   next_cursor of a previous page, with the same filters
//	limit    page size, 1 to 1000 (default 100)
//	format   json (default), ndjson or csv; without it the Accept header
//	         decides (application/x-ndjson, text/csv, else JSON)
//
// JSON (one page, newest first):
//
//	{"items": [{"id": "<event uuid>", "created_at": "2026-03-01T09:00:00.123456Z",
//	            "action": "auth.login.failed", "user_id": "<uuid>"|null,
//	            "ip_address": "203.0.113.9"|null, "user_agent": "…"|null,
//	            "resource": "user"|null, "resource_id": "…"|null,
//	            "details": {…}|null}, …],
//	 "next_cursor": "<opaque>"|null}
//
// NDJSON and CSV are exports: they run over every page from cursor (or the
// newest row) to the oldest match, or stop after limit rows when limit is
// given. They read the database a page at a time and flush each page to
// the client, so memory stays bounded whatever the size of the export, and
// they stop as soon as the client goes away. NDJSON has one item (as above)
// per line. CSV has a header row, the same columns in the same order, and
// details as a JSON string; a cell that a spreadsheet would run as a formula
// (starting with = + - @, tab or carriage return) is prefixed with a single
// quote. An export that fails after it has started is cut off (the
// connection is aborted) rather than ended cleanly, so a truncated file is
// never mistaken for a complete one.
//
// Refused parameters return a *ParamsError listing every one of them.
func NewQueryHandler(q Querier, cfg HandlerConfig) echo.HandlerFunc {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ExportPageSize <= 0 || cfg.ExportPageSize > MaxLimit {
		cfg.ExportPageSize = MaxLimit
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = time.Minute
	}
	h := &queryHandler{q: q, cfg: cfg}
	return h.serve
}

type queryHandler struct {
	q   Querier
	cfg HandlerConfig
}

func (h *queryHandler) serve(c echo.Context) error {
	r := c.Request()
	req, err := parseAuditRequest(r.URL.RawQuery, r.Header.Values("Accept"))
	if err != nil {
		return err
	}
	if req.format == formatJSON {
		return h.page(c, req)
	}
	return h.export(c, req)
}

func (h *queryHandler) page(c echo.Context, req auditRequest) error {
	ctx := c.Request().Context()
	events, next, err := h.q.Query(ctx, req.filter)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the client went away; nobody to answer
		}
		return err
	}
	out := struct {
		Items      []eventJSON `json:"items"`
		NextCursor *string     `json:"next_cursor"`
	}{Items: make([]eventJSON, len(events))}
	for i := range events {
		out.Items[i] = toJSON(&events[i])
	}
	if next != "" {
		out.NextCursor = &next
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("audit: encode page: %w", err)
	}
	noStore(c)
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
}

func noStore(c echo.Context) {
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
}

// export streams every page as NDJSON or CSV. The first page is read before
// anything is written, so a database that fails at once still gets an
// ordinary error answer.
func (h *queryHandler) export(c echo.Context, req auditRequest) error {
	ctx := c.Request().Context()
	f := req.filter
	remaining := -1 // no cap
	if req.limited {
		remaining = f.Limit
	}
	f.Limit = h.cfg.ExportPageSize
	if remaining >= 0 {
		f.Limit = min(f.Limit, remaining)
	}
	events, next, err := h.q.Query(ctx, f)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}

	w := c.Response()
	noStore(c)
	ctype, ext := mimeNDJSON, "ndjson"
	if req.format == formatCSV {
		ctype, ext = mimeCSV+"; charset=utf-8", "csv"
	}
	w.Header().Set(echo.HeaderContentType, ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="audit.`+ext+`"`)
	w.WriteHeader(http.StatusOK)

	rc := http.NewResponseController(w)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := newEncoder(req.format, bw)
	for {
		if remaining >= 0 && len(events) > remaining {
			events = events[:remaining]
		}
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout)) // ErrNotSupported: nothing to bound
		for i := range events {
			if err := enc.encode(&events[i]); err != nil {
				return nil // the client is gone or stopped reading
			}
		}
		if err := enc.flush(); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return nil
		}
		if remaining >= 0 {
			remaining -= len(events)
		}
		if next == "" || remaining == 0 || ctx.Err() != nil {
			return nil
		}
		f.Cursor = next
		if remaining > 0 {
			f.Limit = min(h.cfg.ExportPageSize, remaining)
		}
		events, next, err = h.q.Query(ctx, f)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			h.cfg.Logger.Error("audit export cut short", zap.String("format", req.format), zap.Error(err))
			// Abort the connection: a clean end would pass the truncated
			// export off as complete.
			panic(http.ErrAbortHandler)
		}
	}
}

// eventJSON is an event as GET /audit shows it; absent values are null.
type eventJSON struct {
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

func toJSON(ev *Event) eventJSON {
	return eventJSON{
		ID: ev.ID, CreatedAt: ev.CreatedAt.UTC(), Action: ev.Action,
		UserID: strPtr(ev.UserID), IP: strPtr(ev.IP), UserAgent: strPtr(ev.UserAgent),
		Resource: strPtr(ev.Resource), ResourceID: strPtr(ev.ResourceID), Details: ev.Details,
	}
}

// csvHeader names the CSV columns, in eventJSON's order.
var csvHeader = []string{"id", "created_at", "action", "user_id", "ip_address", "user_agent", "resource", "resource_id", "details"}

// exportEncoder writes events in one export format.
type exportEncoder interface {
	encode(ev *Event) error
	flush() error
}

func newEncoder(format string, bw *bufio.Writer) exportEncoder {
	if format == formatCSV {
		return &csvEncoder{w: csv.NewWriter(bw), bw: bw, row: make([]string, len(csvHeader))}
	}
	return &ndjsonEncoder{enc: json.NewEncoder(bw), bw: bw}
}

type ndjsonEncoder struct {
	enc *json.Encoder
	bw  *bufio.Writer
}

// encode writes one line: json.Encoder ends each value with "\n" and
// escapes none of its own output into a raw newline.
func (e *ndjsonEncoder) encode(ev *Event) error { return e.enc.Encode(toJSON(ev)) }
func (e *ndjsonEncoder) flush() error           { return e.bw.Flush() }

type csvEncoder struct {
	w      *csv.Writer
	bw     *bufio.Writer
	row    []string
	header bool
}

func (e *csvEncoder) encode(ev *Event) error {
	if !e.header {
		e.header = true
		if err := e.w.Write(csvHeader); err != nil {
			return err
		}
	}
	details := ""
	if ev.Details != nil {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return err
		}
		details = string(b)
	}
	vals := [...]string{ev.ID, ev.CreatedAt.UTC().Format(time.RFC3339Nano), ev.Action, ev.UserID, ev.IP,
		ev.UserAgent, ev.Resource, ev.ResourceID, details}
	for i, v := range vals {
		e.row[i] = csvSafe(v)
	}
	return e.w.Write(e.row)
}

// flush writes the header of an empty export too, so that every CSV has one.
func (e *csvEncoder) flush() error {
	if !e.header {
		e.header = true
		if err := e.w.Write(csvHeader); err != nil {
			return err
		}
	}
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return err
	}
	return e.bw.Flush()
}

// csvSafe defuses CSV (formula) injection: spreadsheets run a cell that
// starts with = + - or @ (and, in some, tab or carriage return) as a
// formula. A leading single quote makes it text, and shows.
func csvSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// maxQueryLen bounds the query string parsed at all.
const maxQueryLen = 4096

// parseAuditRequest reads GET /audit's query string and Accept header,
// collecting every problem before it answers.
func parseAuditRequest(rawQuery string, accept []string) (auditRequest, error) {
	var issues []ParamIssue
	bad := func(param, msg, typ string) { issues = append(issues, ParamIssue{Param: param, Msg: msg, Type: typ}) }
	if len(rawQuery) > maxQueryLen {
		return auditRequest{}, &ParamsError{Issues: []ParamIssue{{Param: "query", Msg: "query string too long", Type: "string_too_long"}}}
	}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return auditRequest{}, &ParamsError{Issues: []ParamIssue{{Param: "query", Msg: "malformed query string", Type: "value_error"}}}
	}
	get := func(k string) (string, bool) {
		v, ok := vals[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		if len(v) > 1 {
			bad(k, "given more than once", "value_error")
		}
		return v[0], true
	}

	var req auditRequest
	f := &req.filter
	if v, ok := get("user_id"); ok {
		id, err := uuid.Parse(v)
		if err != nil {
			bad("user_id", "Input should be a valid UUID", "uuid_parsing")
		} else {
			f.UserID = id.String()
		}
	}
	if v, ok := get("action"); ok {
		a, msg := parseAction(v)
		if msg != "" {
			bad("action", msg, "value_error")
		}
		f.Action = a
	}
	if v, ok := get("since"); ok {
		t, err := parseTime(v)
		if err != nil {
			bad("since", "Input should be an RFC 3339 date and time, e.g. 2026-03-01T09:00:00Z", "datetime_parsing")
		}
		f.Since = t
	}
	if v, ok := get("until"); ok {
		t, err := parseTime(v)
		if err != nil {
			bad("until", "Input should be an RFC 3339 date and time, e.g. 2026-03-01T09:00:00Z", "datetime_parsing")
		}
		f.Until = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		bad("until", "until must be after since", "value_error")
	}
	if v, ok := get("ip"); ok {
		a, err := netip.ParseAddr(v)
		if err != nil || len(v) > 64 {
			bad("ip", "Input should be a valid IP address", "ip_address_parsing")
		} else {
			f.IP = a.Unmap().String()
		}
	}
	if v, ok := get("cursor"); ok && v != "" {
		if _, _, err := decodeCursor(v); err != nil {
			bad("cursor", "not a cursor this endpoint issued", "value_error")
		} else {
			f.Cursor = v
		}
	}
	f.Limit = DefaultLimit
	if v, ok := get("limit"); ok {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			bad("limit", "Input should be a valid integer", "int_parsing")
		case n < 1:
			bad("limit", "Input should be greater than or equal to 1", "greater_than_equal")
		case n > MaxLimit:
			bad("limit", "Input should be less than or equal to "+strconv.Itoa(MaxLimit), "less_than_equal")
		default:
			f.Limit, req.limited = n, true
		}
	}
	req.format = negotiate(accept)
	if v, ok := get("format"); ok {
		switch v {
		case formatJSON, formatNDJSON, formatCSV:
			req.format = v
		default:
			bad("format", "Input should be 'json', 'ndjson' or 'csv'", "enum")
		}
	}
	if len(issues) > 0 {
		return auditRequest{}, &ParamsError{Issues: issues}
	}
	return req, nil
}

// parseAction checks an action filter and returns it as Filter.Action
// takes it, or a message for the client.
func parseAction(v string) (string, string) {
	if strings.HasSuffix(v, ".*") {
		v = strings.TrimSuffix(v, "*") // "auth.*" is "auth."
	}
	switch {
	case v == "" || v == ".":
		return "", "action must not be empty"
	case len(v) > maxActionLen:
		return "", "action is longer than " + strconv.Itoa(maxActionLen) + " bytes"
	case !utf8.ValidString(v):
		return "", "action is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "", "action contains a control character"
		}
	}
	return v, ""
}

// parseTime reads an RFC 3339 time. A "+" in an unencoded query string
// arrives as a space ("…T09:00:00 01:00"), which is put back, since RFC 3339
// has no space there.
func parseTime(v string) (time.Time, error) {
	if len(v) > 64 {
		return time.Time{}, errors.New("too long")
	}
	if i := strings.LastIndexByte(v, ' '); i > 0 && strings.IndexByte(v, 'T') >= 0 {
		v = v[:i] + "+" + v[i+1:]
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// negotiate picks the output format from Accept values: the acceptable
// format with the highest q, the earlier one on a tie; JSON when nothing
// there names NDJSON or CSV.
func negotiate(accept []string) string {
	best, bestQ := formatJSON, -1.0
	n := 0
	for _, line := range accept {
		for part := range strings.SplitSeq(line, ",") {
			if n++; n > 32 {
				return best
			}
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			var f string
			switch mt {
			case mimeNDJSON:
				f = formatNDJSON
			case mimeCSV:
				f = formatCSV
			case echo.MIMEApplicationJSON, "application/*", "*/*":
				f = formatJSON
			default:
				continue
			}
			if q > bestQ && q > 0 {
				best, bestQ = f, q
			}
		}
	}
	return best
}
