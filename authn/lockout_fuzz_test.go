package authn_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
)

// FuzzLockoutKeys feeds arbitrary account keys and client addresses to
// Begin. Whatever the input, Lockout either refuses it as invalid input or
// derives store keys the store accepts: a bad address or key must never
// reach the store as ErrInvalidCounter (or, worse, a brace that moves a
// counter and its lock to different Redis Cluster slots). Every parseable
// address must be accepted.
func FuzzLockoutKeys(f *testing.F) {
	for _, seed := range [][2]string{
		{"u:8d0f6a9e-3c1f-4b7e-9d2a-0a1b2c3d4e5f", "192.0.2.1"},
		{"e:0123456789abcdef0123456789abcdef", "2001:db8::1"},
		{"u:1", "::ffff:192.0.2.1"},
		{"u:1", "[2001:db8::1%eth0]:443"},
		{"u:1", "fe80::1%eth0"},
		{"u:1", "192.0.2.1:8080"},
		{"u:{1}", "192.0.2.1"},
		{"", ""},
		{"u:1", " 10.0.0.1 "},
		{strings.Repeat("k", 300), "1.2.3.4"},
		{"u:1", "1.2.3.4/24"},
		{"u:1", "::"},
	} {
		f.Add(seed[0], seed[1])
	}
	store, err := sessions.NewMemoryCounters()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close(context.Background()) })
	lo, err := authn.NewLockout(store, authn.LockoutPolicy{MaxAttempts: 1 << 20, IPMaxAttempts: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, account, ip string) {
		att, err := lo.Begin(ctx, account, ip)
		if err != nil {
			if !errors.Is(err, authn.ErrInvalidLockoutInput) || errors.Is(err, sessions.ErrInvalidCounter) {
				t.Fatalf("Begin(%q, %q) = %v, want nil or ErrInvalidLockoutInput from Lockout itself", account, ip, err)
			}
			_, addrErr := netip.ParseAddr(strings.TrimSpace(ip))
			validAccount := account != "" && !strings.ContainsAny(account, "{}") && len(account) <= sessions.MaxCounterKeyLen-len("acct:")
			if addrErr == nil && validAccount {
				t.Fatalf("Begin(%q, %q) refused a valid account and address: %v", account, ip, err)
			}
			return
		}
		if err := att.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})
}
