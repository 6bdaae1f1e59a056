package authn

import (
	"errors"
	"testing"
)

// FuzzParseArgon2id feeds arbitrary stored-hash strings to the PHC parser. It
// must never panic, must answer with one of its sentinels, must keep every
// accepted hash within the cost bounds, and must accept only canonical
// strings (each formats back to itself).
func FuzzParseArgon2id(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=64,t=1,p=1,keyid=x$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHQ=$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2id$",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseArgon2id(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrHashTooCostly) && !errors.Is(err, ErrUnknownHashFormat) {
				t.Fatalf("parseArgon2id(%q) = %v: not a sentinel", s, err)
			}
			return
		}
		p := h.params
		if p.Memory > MaxArgon2Memory || p.Time > MaxArgon2Time || p.Threads > MaxArgon2Threads ||
			uint64(p.Memory)*uint64(p.Time) > MaxArgon2Work || p.Time < 1 || p.Threads < 1 || p.Memory < 8*uint32(p.Threads) {
			t.Fatalf("parseArgon2id(%q) accepted out-of-bounds params %+v", s, p)
		}
		if len(h.salt) < minArgon2SaltLen || len(h.salt) > maxArgon2SaltLen || len(h.key) < minArgon2KeyLen || len(h.key) > maxArgon2KeyLen {
			t.Fatalf("parseArgon2id(%q) accepted salt %d / key %d bytes", s, len(h.salt), len(h.key))
		}
		if int(p.SaltLen) != len(h.salt) || int(p.KeyLen) != len(h.key) {
			t.Fatalf("params %+v disagree with salt %d / key %d", p, len(h.salt), len(h.key))
		}
		if got := formatArgon2id(h); got != s {
			t.Fatalf("accepted a non-canonical hash: %q formats as %q", s, got)
		}
	})
}

// FuzzCheckBcrypt feeds arbitrary strings to the bcrypt shape check that
// guards x/crypto/bcrypt: no panic, only sentinels, and nothing accepted that
// x/crypto would refuse or that costs more than MaxBcryptCost.
func FuzzCheckBcrypt(f *testing.F) {
	for _, s := range []string{
		"$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",
		"$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq",
		"$2a$31$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",
		"$2x$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",
		"$2a$-4$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm",
		"$2a$04$",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkBcrypt(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) && !errors.Is(err, ErrHashTooCostly) && !errors.Is(err, ErrUnknownHashFormat) {
				t.Fatalf("checkBcrypt(%q) = %v: not a sentinel", s, err)
			}
			return
		}
		if len(s) != 60 || !isBcrypt(s) {
			t.Fatalf("checkBcrypt accepted %q", s)
		}
		cost := int(s[4]-'0')*10 + int(s[5]-'0')
		if cost < 4 || cost > MaxBcryptCost {
			t.Fatalf("checkBcrypt accepted cost %d in %q", cost, s)
		}
		if cost <= 5 {
			// Cheap enough to run: a hash that passed the check must not
			// make the real verification fail on its format.
			if _, err := verifyBcrypt("pw", s); err != nil && !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("verifyBcrypt(%q) = %v", s, err)
			}
		}
	})
}
