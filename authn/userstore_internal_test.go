package authn

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestEmailAsStored(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"Ana@Example.COM", "Ana@Example.COM"},
		{"  ana@example.com\t\n", "ana@example.com"},
		{"ÉLODIE@Exemple.fr", "éLODIE@Exemple.fr"},
		{"\u00a0Ünal@x.TR ", "ünal@x.TR"}, // Unicode spaces trimmed too
		{"", ""},
		{"   ", ""},
	} {
		if got := emailAsStored(tc.in); got != tc.want {
			t.Errorf("emailAsStored(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []cursor{
		{Key: "ana@example.com", ID: "0190b3a6-8f4e-7cc1-9a55-3f0e2b6c1d2e"},
		{Key: "élodie \"q\" <x>@example.fr", ID: "00000000-0000-4000-8000-000000000000"},
	} {
		got, err := decodeCursor(encodeCursor(c))
		c.V = cursorVersion
		if err != nil || got != c {
			t.Errorf("decodeCursor(encodeCursor(%+v)) = %+v, %v", c, got, err)
		}
	}
}

func TestDecodeCursorRejects(t *testing.T) {
	t.Parallel()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	const id = "0190b3a6-8f4e-7cc1-9a55-3f0e2b6c1d2e"
	for name, in := range map[string]string{
		"not base64":      "@@@",
		"padded base64":   base64.URLEncoding.EncodeToString([]byte(`{"v":1,"k":"a","i":"` + id + `"}`)),
		"not JSON":        enc("hello"),
		"empty object":    enc("{}"),
		"wrong version":   enc(`{"v":2,"k":"a","i":"` + id + `"}`),
		"no key":          enc(`{"v":1,"k":"","i":"` + id + `"}`),
		"NUL in key":      enc(`{"v":1,"k":"a\u0000b","i":"` + id + `"}`),
		"bad id":          enc(`{"v":1,"k":"a","i":"nope"}`),
		"upper-case id":   enc(`{"v":1,"k":"a","i":"` + strings.ToUpper(id) + `"}`),
		"braced id":       enc(`{"v":1,"k":"a","i":"{` + id + `}"}`),
		"unknown field":   enc(`{"v":1,"k":"a","i":"` + id + `","x":1}`),
		"trailing data":   enc(`{"v":1,"k":"a","i":"` + id + `"} {}`),
		"array":           enc(`[1,"a","` + id + `"]`),
		"too long":        strings.Repeat("A", maxCursorLen+1),
		"key wrong type":  enc(`{"v":1,"k":7,"i":"` + id + `"}`),
		"version as text": enc(`{"v":"1","k":"a","i":"` + id + `"}`),
	} {
		if c, err := decodeCursor(in); !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("%s: decodeCursor(%.40q) = %+v, %v; want ErrInvalidCursor", name, in, c, err)
		}
	}
}

// FuzzDecodeCursor: a cursor comes from the client. Decoding never panics,
// and whatever it accepts is a well-formed position that encodes back to a
// cursor decoding to the same position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{Key: "ana@example.com", ID: "0190b3a6-8f4e-7cc1-9a55-3f0e2b6c1d2e"}))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"k":"\ud800","i":"00000000-0000-4000-8000-000000000000"}`)))
	f.Add("e30")
	f.Add("")
	f.Add("@@@")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidCursor) {
				t.Fatalf("decodeCursor(%q): %v, want ErrInvalidCursor", s, err)
			}
			return
		}
		if id, ok := canonicalUUID(c.ID); !ok || id != c.ID || c.Key == "" || strings.IndexByte(c.Key, 0) >= 0 {
			t.Fatalf("decodeCursor(%q) accepted %+v", s, c)
		}
		again, err := decodeCursor(encodeCursor(c))
		if err != nil || again != c {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", c, again, err)
		}
	})
}
