package authn

import (
	"strings"
	"testing"
)

func TestCommonPasswordListLoads(t *testing.T) {
	t.Parallel()
	set := commonPasswordSet()
	if n := len(set); n < 8000 {
		t.Fatalf("embedded list has %d entries, want about 9k", n)
	}
	for pw := range set {
		if pw != strings.ToLower(pw) || strings.TrimSpace(pw) != pw || strings.HasPrefix(pw, "#!") || len([]rune(pw)) < minCommonStem {
			t.Errorf("entry %q is not normalised", pw)
		}
	}
}

func TestIsCommonPassword(t *testing.T) {
	t.Parallel()
	set := parseCommonPasswords("#! comment\n#! another\n\npassword\nDragon\nabc\r\nab\n")
	cases := []struct {
		pw   string
		want bool
	}{
		{"password", true},
		{"PassWord", true},
		{"Password1!", true},
		{"Password!!2024", true},
		{"1Password", true}, // leading digits stripped
		{"!@Dragon99", true},
		{"dragon", true}, // entries are lower-cased on load
		{"abc123", true},
		{"ab12", false}, // stems shorter than 3 are not looked up
		{"ab", true},    // ... but whole passwords are
		{"Pass1word", false},
		{"passwords", false},
		{"# comment", false},
		{"", false},
		{"Tq7!vZp2wK", false},
	}
	for _, tc := range cases {
		if got := isCommonPassword(set, tc.pw); got != tc.want {
			t.Errorf("isCommonPassword(%q) = %v, want %v", tc.pw, got, tc.want)
		}
	}
}

func TestCommonPasswordsFromTheRealList(t *testing.T) {
	t.Parallel()
	set := commonPasswordSet()
	for _, pw := range []string{"123456", "qwerty", "Letmein", "iloveyou", "Trustno1", "monkey", "football1!"} {
		if !isCommonPassword(set, pw) {
			t.Errorf("%q should be on the embedded list", pw)
		}
	}
}
