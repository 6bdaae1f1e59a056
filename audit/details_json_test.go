package audit

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// sameAsEncodingJSON checks that the fast encoding of details decodes to
// exactly what encoding/json's (sanitised) encoding decodes to.
func sameAsEncodingJSON(t *testing.T, details map[string]any) {
	t.Helper()
	fast, ok := appendFlatJSON(nil, details)
	if !ok {
		t.Fatalf("appendFlatJSON refused %#v", details)
	}
	slow, err := json.Marshal(details)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(fast, &got); err != nil {
		t.Fatalf("fast encoding is not JSON: %v\n%s", err, fast)
	}
	if err := json.Unmarshal(sanitizeJSON(slow), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fast encoding\n%s\ndecodes to %#v, encoding/json's to %#v", fast, got, want)
	}
}

func TestAppendFlatJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		details map[string]any
	}{
		{"access row", map[string]any{"method": "GET", "path": "/api/samples/1", "route": "/api/samples", "mode": "gateway",
			"status": 200, "duration_ms": 0.412, "request_id": "0af7651916cd43dd8448eb211c80319c"}},
		{"empty", map[string]any{}},
		{"quotes and backslashes", map[string]any{"path": `/a"b\c`, `k"ey`: "v"}},
		{"control characters", map[string]any{"s": "a\nb\rc\td\x01e\x1f"}},
		{"NUL", map[string]any{"s": "a\x00b"}},
		{"invalid UTF-8", map[string]any{"s": "a\xffb\xc3", "k\xfe": 1}},
		{"line separators", map[string]any{"s": "a\u2028b\u2029c"}},
		{"non-ASCII", map[string]any{"s": "Grüße, 日本"}},
		{"HTML", map[string]any{"s": "<script>&</script>"}},
		{"numbers", map[string]any{"i": -7, "i64": int64(math.MaxInt64), "f": 1e-7, "g": 1e21, "h": -0.5, "z": 0.0}},
		{"bool and null", map[string]any{"t": true, "f": false, "n": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) { sameAsEncodingJSON(t, tc.details) })
	}
}

// TestAppendFlatJSONRefuses: values it cannot encode are left to
// encoding/json (which then encodes or refuses them).
func TestAppendFlatJSONRefuses(t *testing.T) {
	t.Parallel()
	for _, v := range []any{math.NaN(), math.Inf(1), []string{"a"}, map[string]any{}, uint8(1), struct{}{}} {
		if _, ok := appendFlatJSON(nil, map[string]any{"v": v}); ok {
			t.Errorf("appendFlatJSON took %#v", v)
		}
	}
}

// FuzzAppendFlatJSON: whatever a client puts in a path or header that ends
// up in details, the fast encoding stays JSON that means the same.
func FuzzAppendFlatJSON(f *testing.F) {
	f.Add("/api/samples", "GET", 200, 0.5)
	f.Add("/a\x00b\xff\u2028\"\\", "\t", -1, 1e-9)
	f.Fuzz(func(t *testing.T, path, method string, status int, dur float64) {
		if math.IsNaN(dur) || math.IsInf(dur, 0) {
			return
		}
		sameAsEncodingJSON(t, map[string]any{path: method, "path": path, "method": method, "status": status, "duration_ms": dur})
	})
}

// Access rows skip the map, and must be stored exactly as the map was.
func TestAccessDetailsEncodeAsTheirMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"", "GET", "/api/x?y", "a\x00b", "\xc3\x28", `"quoted" \ back`, "line\u2028sep", "tab\tnew\nline", "ünï", "\x01\x1f", "gateway"}
	pick := func() string { return pieces[rng.IntN(len(pieces))] + pieces[rng.IntN(len(pieces))] }
	for range 2000 {
		a := &AccessDetails{
			Method: pick(), Path: pick(), Route: pick(), Mode: pick(), RequestID: pick(), Reason: pick(),
			Status: rng.IntN(700) - 50, DurationMs: []float64{0, 0.001, 12.345, 1e-7, 3e21, float64(rng.IntN(100000)) / 1000}[rng.IntN(6)],
		}
		want, ok := appendFlatJSON(nil, a.Map())
		if !ok {
			t.Fatalf("%+v: the map form is not flat", a)
		}
		if got := a.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("%+v:\n got %s\nwant %s", a, got, want)
		}
	}
}
