package proxy

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestCredentialKind(t *testing.T) {
	t.Parallel()
	own := func(tok string) bool { return tok == "mine" }
	cases := []struct {
		name   string
		authz  []string
		cookie string
		want   string
	}{
		{"nothing", nil, "", CredentialNone},
		{"session cookie", nil, "sess", CredentialPortero},
		{"other cookie", nil, "other", CredentialNone},
		{"portero bearer", []string{"Bearer mine"}, "", CredentialPortero},
		{"lower-case scheme", []string{"bearer mine"}, "", CredentialPortero},
		{"legacy bearer", []string{"Bearer theirs"}, "", CredentialLegacy},
		{"legacy bearer beside a session cookie: the cookie, as authentication reads it", []string{"Bearer theirs"}, "sess", CredentialPortero},
		{"basic auth", []string{"Basic dXNlcjpwdw=="}, "", CredentialNone},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		for _, v := range tc.authz {
			r.Header.Add("Authorization", v)
		}
		if tc.cookie != "" {
			r.AddCookie(&http.Cookie{Name: tc.cookie, Value: "v"})
		}
		if got := credentialKind(r, "sess", own); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestProgressConcurrent: counting from many goroutines loses nothing.
func TestProgressConcurrent(t *testing.T) {
	t.Parallel()
	p := NewProgress(time.Unix(0, 0))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				p.add([]string{"/a", "/b"}[i%2], []string{CredentialPortero, CredentialLegacy, CredentialNone}[i%3])
			}
		}()
	}
	wg.Wait()
	var total int64
	for _, r := range p.Migration().Routes {
		total += r.Total
	}
	if total != 8*500 {
		t.Errorf("counted %d, want %d", total, 8*500)
	}
	var nilP *Progress
	nilP.add("/a", CredentialNone) // a nil Progress counts nothing, safely
}
