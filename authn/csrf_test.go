package authn_test

import (
	"strings"
	"testing"

	"github.com/portero/portero/authn"
)

func newTestCSRF(t testing.TB, secrets ...string) *authn.CSRF {
	t.Helper()
	var prev [][]byte
	for _, s := range secrets[1:] {
		prev = append(prev, []byte(s))
	}
	ring, err := authn.NewKeyring([]byte(secrets[0]), prev...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := authn.NewCSRF(ring)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	csrfSecretA = "csrf-test-secret-a-0123456789abcdef0123"
	csrfSecretB = "csrf-test-secret-b-0123456789abcdef0123"
)

func TestCSRFSessionTokens(t *testing.T) {
	t.Parallel()
	c := newTestCSRF(t, csrfSecretA)
	tok := c.SessionToken("cookie-1")
	if !c.ValidSession("cookie-1", tok) {
		t.Fatal("a fresh token does not verify")
	}
	if again := c.SessionToken("cookie-1"); again == tok || !c.ValidSession("cookie-1", again) {
		t.Error("tokens for one session should differ (salted) and all verify")
	}
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"another session":  c.SessionToken("cookie-2"),
		"empty":            "",
		"no dots":          "v1",
		"wrong version":    "v2" + tok[2:],
		"salt changed":     flip(tok, 4),
		"mac changed":      flip(tok, len(tok)-2),
		"mac cut":          tok[:len(tok)-4],
		"extra dot":        tok + ".x",
		"not base64":       "v1.!!!!.????",
		"huge":             strings.Repeat("A", 10000),
		"other secret":     newTestCSRF(t, csrfSecretB).SessionToken("cookie-1"),
		"the cookie value": "cookie-1",
	} {
		if c.ValidSession("cookie-1", bad) {
			t.Errorf("%s: accepted %q", name, bad)
		}
	}
	if c.ValidSession("", c.SessionToken("")) {
		t.Error("a token bound to an empty cookie verifies")
	}
}

func TestCSRFKeyRotation(t *testing.T) {
	t.Parallel()
	old := newTestCSRF(t, csrfSecretA)
	rotated := newTestCSRF(t, csrfSecretB, csrfSecretA)
	if !rotated.ValidSession("c", old.SessionToken("c")) {
		t.Error("a token of the previous secret stops verifying during rotation")
	}
	if old.ValidSession("c", rotated.SessionToken("c")) {
		t.Error("new tokens are made with the previous secret")
	}
	if newTestCSRF(t, csrfSecretB).ValidSession("c", old.SessionToken("c")) {
		t.Error("a removed secret's token still verifies")
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/app", "/app"},
		{"/app/samples?id=7&x=%2F", "/app/samples?id=7&x=%2F"},
		{"/app/%E2%9C%93", "/app/%E2%9C%93"},
		{"/a/b#frag", "/a/b#frag"},
		{"/@evil.example", "/@evil.example"},
		{"/javascript:alert(1)", "/javascript:alert(1)"},
		{"/%252F%252Fevil.example", "/%252F%252Fevil.example"}, // decodes once to /%2F%2F…: still a path here

		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{"/\\evil.example", "/"},
		{"\\\\evil.example", "/"},
		{"/a\\b", "/"},
		{"https://evil.example/", "/"},
		{"http:/evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"app", "/"},
		{"./app", "/"},
		{"?next=/", "/"},
		{"#/", "/"},
		{" /app", "/"},
		{"/ /evil.example", "/"},
		{"/\t/evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r\nSet-Cookie: x=1", "/"},
		{"/\x00", "/"},
		{"/\x7f", "/"},
		{"/ü", "/"},
		{"%2F%2Fevil.example", "/"},
		{"%2f%2fevil.example", "/"},
		{"/%2F/evil.example", "/"},
		{"/%2f%2fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/a%5Cb", "/"},
		{"/%09/evil.example", "/"},
		{"/%0d%0aSet-Cookie:x", "/"},
		{"/%00", "/"},
		{"/%zz", "/"},
		{"/%", "/"},
		{"/%C3%BC", "/%C3%BC"},
		{"/%C3", "/%C3"}, // not UTF-8 once decoded, but no separator either
		{"/my%20file", "/my%20file"},
		{"/" + strings.Repeat("a", 2047), "/" + strings.Repeat("a", 2047)},
		{"/" + strings.Repeat("a", 2048), "/"},
	} {
		if got := authn.SafeNext(tc.in); got != tc.want {
			t.Errorf("SafeNext(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
