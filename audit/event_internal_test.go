package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestPrepare(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 7200))
	clock := func() time.Time { return now }
	ev, err := prepare(Event{Action: ActionLogout, Details: map[string]any{"a": 1}}, clock)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ID) != 36 || ev.ID[14] != '7' {
		t.Errorf("ID = %q, want a UUIDv7", ev.ID)
	}
	if want := now.UTC().Truncate(time.Microsecond); !ev.CreatedAt.Equal(want) || ev.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, want %v", ev.CreatedAt, want)
	}
	if string(ev.details) != `{"a":1}` {
		t.Errorf("details = %s", ev.details)
	}
	for name, bad := range map[string]Event{
		"no action":      {},
		"long action":    {Action: strings.Repeat("a", maxActionLen+1)},
		"bad id":         {ID: "x", Action: "a"},
		"bad user":       {UserID: "x", Action: "a"},
		"unmarshalable":  {Action: "a", Details: map[string]any{"f": func() {}}},
		"huge details":   {Action: "a", Details: map[string]any{"s": strings.Repeat("x", maxDetailsLen)}},
		"nan in details": {Action: "a", Details: map[string]any{"n": nanValue()}},
	} {
		if _, err := prepare(bad, clock); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: error = %v, want ErrInvalidEvent", name, err)
		}
	}
	if _, err := prepare(Event{ID: "0190a5f2-7c1e-7000-8000-000000000000", Action: "a"}, nil); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("no clock and no CreatedAt: error = %v", err)
	}
}

func nanValue() float64 {
	var zero float64
	return zero / zero
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abc", 2, "ab"}, {"añb", 2, "a"}, {"añb", 3, "añ"}, {"ñ", 1, ""},
	} {
		if got := clip(tt.in, tt.n); got != tt.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func FuzzSanitizeJSON(f *testing.F) {
	for _, s := range []string{"", "a\x00b", `\u0000`, "\\\x00", "\xff\x00\xfe", `\\u0000`} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, k, v string) {
		b, err := json.Marshal(map[string]any{k: v, "n": []any{v, 1}})
		if err != nil {
			t.Skip()
		}
		out := sanitizeJSON(b)
		if !json.Valid(out) {
			t.Fatalf("sanitizeJSON(%s) = %s: not JSON", b, out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		// No NUL survives anywhere, and nothing else changes.
		for key, val := range m {
			if strings.ContainsRune(key, 0) || (key != "n" && strings.ContainsRune(val.(string), 0)) {
				t.Fatalf("NUL survived in %q: %q", key, val)
			}
		}
		if !bytes.Contains(b, []byte(`\u0000`)) && !bytes.Equal(out, b) {
			t.Fatalf("changed JSON without \\u0000: %s -> %s", b, out)
		}
		// Everything else is as encoding/json decodes the input.
		var m0 map[string]any
		if err := json.Unmarshal(b, &m0); err != nil {
			t.Fatal(err)
		}
		for key, val := range m0 {
			nk := strings.ReplaceAll(key, "\x00", "\uFFFD")
			if s, ok := val.(string); ok && m[nk] != strings.ReplaceAll(s, "\x00", "\uFFFD") {
				t.Fatalf("%q: value = %q, want %q", nk, m[nk], s)
			}
		}
	})
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Date(2025, 1, 1, 0, 0, 0, 1000, time.UTC), 42))
	f.Add("")
	f.Add("MTox")
	f.Add("MToxOjI")
	f.Add("MTotMTotMQ")
	f.Fuzz(func(t *testing.T, c string) {
		tm, id, err := decodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrInvalidFilter) {
				t.Fatalf("decodeCursor(%q) error %v does not wrap ErrInvalidFilter", c, err)
			}
			return
		}
		if id < 0 || !utf8.ValidString(c) {
			t.Fatalf("decodeCursor(%q) = %v, %d", c, tm, id)
		}
		// A valid cursor round-trips.
		if again := encodeCursor(tm, id); again != c {
			t2, id2, _ := decodeCursor(again)
			if !t2.Equal(tm) || id2 != id {
				t.Fatalf("cursor %q -> (%v, %d) -> %q", c, tm, id, again)
			}
		}
	})
}
