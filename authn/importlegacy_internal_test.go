package authn

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzLegacyValues feeds the legacy row converters text as a legacy column
// could hold it: they must never panic, and what they accept must mean what
// it says.
func FuzzLegacyValues(f *testing.F) {
	for _, s := range []string{"12", " 7 ", "-1", "9223372036854775808", "yes", "F", "on", "maybe", "", "1.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := legacyInt(s); err == nil && strconv.FormatInt(n, 10) != strings.TrimLeft(strings.TrimSpace(s), "+") &&
			strconv.FormatInt(n, 10) != strings.TrimSpace(s) {
			// ParseInt accepts leading zeros and a sign; the value must still be s's.
			if back, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil || back != n {
				t.Fatalf("legacyInt(%q) = %d", s, n)
			}
		}
		if b, err := legacyBool(s); err == nil {
			v := strings.ToLower(strings.TrimSpace(s))
			if b != (v == "t" || v == "true" || v == "1" || v == "y" || v == "yes" || v == "on") {
				t.Fatalf("legacyBool(%q) = %v", s, b)
			}
		}
		_, _ = mapLegacyColumns(strings.Split(s, ","))
		lu := legacyUserFrom(1, map[string]int{"id": 0, "email": 1, "hashed_password": 2, "first_name": -1, "last_name": -1, "role": -1, "active": 3}, []any{s, s, s, s})
		if lu.Problem == "" && lu.Email != s {
			t.Fatalf("row from %q = %+v", s, lu)
		}
	})
}
