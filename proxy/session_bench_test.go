package proxy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/proxy"
)

// BenchmarkSessionCheck is the session check of one gateway or dual
// request, as the router makes it (authn.Credentials, wired as cmd/portero
// wires it), against each session store, with the production touch
// throttle (so the measured requests read the session and write nothing):
//
//	go test -run '^$' -bench SessionCheck -benchmem ./proxy
//
// "legacy-jwt" is a dual route's fallback: the bearer token is not
// Portero's, so the session check declines and the legacy JWT is verified
// (the user lookup behind it is cached).
func BenchmarkSessionCheck(b *testing.B) {
	for _, be := range []backend{embedded, {name: "redis+sqlite", redis: true}} {
		st := newStack(b, stackOptions{backend: be})
		u := st.login(b, st.addUser(b, "bench@example.com", 2, 7, false))
		creds := authn.NewCredentials(st.svc, e2eCookie, st.legacy)
		legacy := legacyJWT(b, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(7))
		for _, tc := range []struct{ name, header, value string }{
			{"cookie", "Cookie", u.cookie()},
			{"bearer", "Authorization", "Bearer " + u.login.Bearer},
			{"legacy-jwt", "Authorization", "Bearer " + legacy},
		} {
			b.Run(be.name+"/"+tc.name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "http://portero.example/api/samples/1", nil)
				req.Header.Set(tc.header, tc.value)
				ctx := context.Background()
				check := func() error {
					_, err := creds.Session(ctx, req, true)
					if errors.Is(err, proxy.ErrNoCredentials) {
						_, err = creds.Legacy(ctx, req)
					}
					return err
				}
				if err := check(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := check(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAssertion is the X-Auth-Assertion of one request: "reused" is
// the Minter's answer for a user it signed for a moment ago (what a busy
// user costs), "signed" a fresh HS256 signature (a user's first request, or
// every request once half the assertion's lifetime has passed).
func BenchmarkAssertion(b *testing.B) {
	st := newStack(b, stackOptions{backend: embedded})
	legacyID := int64(7)
	id := proxy.Identity{UserID: "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", Email: "analyst@example.test",
		Roles: []string{"analyst"}, LegacyID: &legacyID, Via: "cookie"}
	b.Run("reused", func(b *testing.B) {
		m := authn.NewMinter(st.assertions, st.legacy, authn.LegacySubjectID, 0, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Assertion(id, e2eAudience); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.assertions.Mint(authn.Identity{UserID: id.UserID, Email: id.Email, Roles: id.Roles, LegacyID: id.LegacyID}, e2eAudience); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOwnToken is what a legacy or shadow route asks of every request
// carrying a bearer token: is it Portero's (to count it, and to keep it from
// the upstream)? The answer is remembered, so this is a cache lookup, not a
// signature check.
func BenchmarkOwnToken(b *testing.B) {
	st := newStack(b, stackOptions{backend: embedded})
	u := st.login(b, st.addUser(b, "bench@example.com", 2, 7, false))
	creds := authn.NewCredentials(st.svc, e2eCookie, st.legacy)
	legacy := legacyJWT(b, jwt.SigningMethodHS256, []byte(e2eLegacySecret), validLegacyClaims(7))
	for _, tc := range []struct {
		name, token string
		own         bool
	}{{"portero", u.login.Bearer, true}, {"foreign", legacy, false}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if creds.OwnToken(tc.token) != tc.own {
					b.Fatalf("OwnToken(%s) != %v", tc.name, tc.own)
				}
			}
		})
	}
}
