package sessions

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	legacy := int64(9_007_199_254_740_993)
	created := time.UnixMilli(1_780_000_000_123).UTC()
	in := Session{
		ID: "0123456789abcdef0123456789abcdef", Key: "k", UserID: "u-1", Email: "a@example.test",
		Roles: []string{"admin"}, Permissions: []string{"x:y"}, LegacyID: &legacy,
		IP: "2001:db8::1", UserAgent: "curl/8 \"q\" \u2028",
		CreatedAt: created,
	}
	v, err := encodeRecord(&in)
	if err != nil {
		t.Fatal(err)
	}
	ls, ax := ms(created)+5000, ms(created)+3_600_000
	out, err := decodeSession("k", v, strconv.FormatInt(ls, 10), strconv.FormatInt(ax, 10), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != in.ID || out.UserID != in.UserID || out.Email != in.Email || out.IP != in.IP ||
		out.UserAgent != in.UserAgent || *out.LegacyID != legacy || out.Roles[0] != "admin" ||
		out.Permissions[0] != "x:y" || out.Key != "k" || !out.CreatedAt.Equal(created) {
		t.Fatalf("round trip: %+v", out)
	}
	if !out.LastSeenAt.Equal(fromMs(ls)) || !out.IdleExpiresAt.Equal(fromMs(ls+60_000)) || !out.AbsoluteExpiresAt.Equal(fromMs(ax)) {
		t.Fatalf("times: %+v", out)
	}
	// Compact: short keys, no key, no RFC 3339 strings.
	if len(v) > 200 || strings.Contains(v, `"k"`) || strings.Contains(v, "user_id") {
		t.Fatalf("record not compact: %s (%d bytes)", v, len(v))
	}
}

func TestSessionJSONHidesKey(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Session{ID: "id", Key: "secret-lookup-key", UserID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret-lookup-key") {
		t.Fatalf("Key encoded: %s", b)
	}
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	cases := map[string][3]string{
		"not json":      {"{", "1", "2"},
		"no id":         {`{"u":"x","c":1}`, "1", "2"},
		"no user":       {`{"i":"x","c":1}`, "1", "2"},
		"bad last seen": {`{"i":"x","u":"y","c":1}`, "x", "2"},
		"bad absolute":  {`{"i":"x","u":"y","c":1}`, "1", ""},
	}
	for name, c := range cases {
		if _, err := decodeSession("k", c[0], c[1], c[2], time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeSession: whatever sits in Redis, decoding never panics and never
// yields a session without an id and a user.
func FuzzDecodeSession(f *testing.F) {
	f.Add(`{"i":"0123","u":"u-1","e":"a@b","r":["x"],"l":12,"c":1}`, "1000", "2000")
	f.Add(`{"i":"a","u":"b","l":9007199254740993,"c":-1}`, "-5", "9223372036854775807")
	f.Add(`null`, "", "")
	f.Add(`{"i":1}`, "1", "1")
	f.Fuzz(func(t *testing.T, v, ls, ax string) {
		s, err := decodeSession("k", v, ls, ax, time.Minute)
		if err != nil {
			return
		}
		if s.ID == "" || s.UserID == "" || s.Key != "k" {
			t.Fatalf("decoded an incomplete session: %+v", s)
		}
	})
}
