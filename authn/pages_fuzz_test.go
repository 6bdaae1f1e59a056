package authn_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/portero/portero/authn"
)

// FuzzSafeNext checks that whatever comes in, the return path a browser is
// sent to stays on this origin: resolved against Portero's URL (as a
// browser resolves Location), it names the same scheme and host, and
// decoding it once changes none of that.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/app?x=1", "//evil.example", "/\\evil.example", "/%2F%2Fevil.example",
		"%2F%2Fevil.example", "/%5Cevil.example", "https://evil.example", "/\t/evil.example", "/%09/x",
		"/%252F%252Fx", "/.%2E/x", "/@evil.example", "\\/evil.example", "/%E2%80%AE", "/\u3000/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://portero.example/app/")
	f.Fuzz(func(t *testing.T, in string) {
		out := authn.SafeNext(in)
		if out != "/" && out != in {
			t.Fatalf("SafeNext(%q) = %q: neither the input nor /", in, out)
		}
		for i, s := range []string{out, mustUnescape(t, out)} {
			if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.Contains(s, "\\") {
				t.Fatalf("SafeNext(%q) = %q, which reads %q", in, out, s)
			}
			for _, c := range []byte(s) {
				if c < 0x20 || c == 0x7f || (i == 0 && (c == ' ' || c > 0x7f)) {
					t.Fatalf("SafeNext(%q) = %q holds byte %#x", in, out, c)
				}
			}
			u, err := base.Parse(s)
			if err != nil {
				continue // a browser would not follow it anywhere
			}
			if u.Scheme != "https" || u.Host != "portero.example" || u.User != nil {
				t.Fatalf("SafeNext(%q) = %q resolves to %s", in, out, u)
			}
		}
	})
}

func mustUnescape(t *testing.T, s string) string {
	d, err := url.PathUnescape(s)
	if err != nil {
		t.Fatalf("SafeNext returned %q, which does not decode: %v", s, err)
	}
	return d
}
