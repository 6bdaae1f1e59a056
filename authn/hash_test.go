package authn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// cheapParams make tests fast; they are valid but far below production cost.
func cheapParams() Argon2Params {
	return Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

func mustHash(tb testing.TB, p Argon2Params, pw string) string {
	tb.Helper()
	h, err := p.Hash(pw)
	if err != nil {
		tb.Fatalf("Hash: %v", err)
	}
	return h
}

func mustBcrypt(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		tb.Fatalf("bcrypt: %v", err)
	}
	return string(h)
}

func TestArgon2RoundTrip(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	for _, pw := range []string{"Tq7!vZp2wK", "", "Ñandú 🦙 contraseña", strings.Repeat("x", MaxPasswordBytes)} {
		encoded := mustHash(t, p, pw)
		want := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", p.Memory, p.Time, p.Threads)
		if !strings.HasPrefix(encoded, want) {
			t.Fatalf("Hash = %q, want prefix %q", encoded, want)
		}
		ok, rehash, err := p.Verify(pw, encoded)
		if !ok || rehash || err != nil {
			t.Errorf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		ok, rehash, err = p.Verify(pw+"x", encoded)
		if ok || rehash || err != nil {
			t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	}
	// Two hashes of one password differ (random salt).
	if first, second := mustHash(t, p, "same"), mustHash(t, p, "same"); first == second {
		t.Error("two hashes of the same password are equal: salt is not random")
	}
}

func TestArgon2ReferenceVector(t *testing.T) {
	t.Parallel()
	// Made by the reference C implementation:
	// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
	const ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	ok, rehash, err := cheapParams().Verify("password", ref)
	if !ok || !rehash || err != nil {
		t.Fatalf("Verify(reference) = %v, %v, %v; want true, true (other params), nil", ok, rehash, err)
	}
	h, err := parseArgon2id(ref)
	if err != nil {
		t.Fatal(err)
	}
	want := Argon2Params{Memory: 65536, Time: 2, Threads: 4, SaltLen: 8, KeyLen: 32}
	if h.params != want {
		t.Errorf("parsed %+v, want %+v", h.params, want)
	}
	if got := formatArgon2id(h); got != ref {
		t.Errorf("formats back as %q", got)
	}
}

func TestBcryptLegacyHashes(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	gen := mustBcrypt(t, "legacy-Pass1!")
	long := strings.Repeat("0123456789", 10) // 100 bytes
	cases := []struct {
		name, hash, right string
	}{
		{"$2a$ from x/crypto", gen, "legacy-Pass1!"},
		{"$2b$ as passlib writes it", "$2b$" + gen[4:], "legacy-Pass1!"},
		// pyca/bcrypt's test vector (OpenBSD's implementation).
		{"$2b$ reference", "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm", "Kk4DQuMMfZL9o"},
		// PHP manual's password_verify example.
		{"$2y$ reference", "$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq", "rasmuslerdorf"},
		// bcrypt only ever read 72 bytes; the legacy app stored a hash of
		// the first 72 and the user types all 100.
		{"over 72 bytes", mustBcrypt(t, long[:72]), long},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := p.Verify(tc.right, tc.hash)
			if !ok || !rehash || err != nil {
				t.Errorf("Verify(right) = %v, %v, %v; want true, true (upgrade to argon2id), nil", ok, rehash, err)
			}
			ok, rehash, err = p.Verify("#"+tc.right[1:], tc.hash)
			if ok || rehash || err != nil {
				t.Errorf("Verify(wrong) = %v, %v, %v; want false, false, nil", ok, rehash, err)
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	cur := cheapParams()
	with := func(f func(*Argon2Params)) Argon2Params { p := cur; f(&p); return p }
	cases := []struct {
		name   string
		made   Argon2Params
		rehash bool
	}{
		{"same params", cur, false},
		{"memory", with(func(p *Argon2Params) { p.Memory = 128 }), true},
		{"time", with(func(p *Argon2Params) { p.Time = 2 }), true},
		{"threads", with(func(p *Argon2Params) { p.Threads = 2 }), true},
		{"salt length", with(func(p *Argon2Params) { p.SaltLen = 32 }), true},
		{"key length", with(func(p *Argon2Params) { p.KeyLen = 16 }), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			encoded := mustHash(t, tc.made, "pw")
			ok, rehash, err := cur.Verify("pw", encoded)
			if !ok || rehash != tc.rehash || err != nil {
				t.Errorf("Verify = %v, %v, %v; want true, %v, nil", ok, rehash, err, tc.rehash)
			}
			// needsRehash is only ever reported for the right password.
			if _, rehash, _ := cur.Verify("nope", encoded); rehash {
				t.Error("needsRehash reported for a wrong password")
			}
		})
	}
}

func TestVerifyRejectsBadHashes(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	good := mustHash(t, p, "pw")
	salt := base64.RawStdEncoding.EncodeToString(make([]byte, 16))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	phc := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + key }
	gen := mustBcrypt(t, "pw")

	cases := []struct {
		name string
		hash string
		want error
	}{
		// Not ours.
		{"empty", "", ErrUnknownHashFormat},
		{"plain text", "hunter2", ErrUnknownHashFormat},
		{"argon2i", strings.Replace(good, "$argon2id$", "$argon2i$", 1), ErrUnknownHashFormat},
		{"argon2d", strings.Replace(good, "$argon2id$", "$argon2d$", 1), ErrUnknownHashFormat},
		{"bcrypt $2x$", "$2x$" + gen[4:], ErrUnknownHashFormat},
		{"bcrypt $2$", "$2$04$" + gen[7:], ErrUnknownHashFormat},
		{"pbkdf2", "$pbkdf2-sha256$29000$abc$def", ErrUnknownHashFormat},
		{"md5 crypt", "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", ErrUnknownHashFormat},

		// Hostile costs: refused before any allocation.
		{"m = 4 GiB", phc("m=4194304,t=1,p=1"), ErrHashTooCostly},
		{"m = uint32 max", phc("m=4294967295,t=1,p=1"), ErrHashTooCostly},
		{"m over bound by one", phc(fmt.Sprintf("m=%d,t=1,p=1", MaxArgon2Memory+1)), ErrHashTooCostly},
		{"t huge", phc("m=64,t=4294967295,p=1"), ErrHashTooCostly},
		{"p = 255", phc("m=65536,t=1,p=255"), ErrHashTooCostly},
		{"m*t over work bound", phc(fmt.Sprintf("m=%d,t=16,p=1", MaxArgon2Memory)), ErrHashTooCostly},
		{"huge salt", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 1<<20) + "$" + key, ErrMalformedHash},
		{"salt over bound", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(make([]byte, 65)) + "$" + key, ErrHashTooCostly},
		{"key over bound", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + base64.RawStdEncoding.EncodeToString(make([]byte, 129)), ErrHashTooCostly},
		{"bcrypt cost 31", "$2a$31$" + gen[7:], ErrHashTooCostly},
		{"bcrypt cost 17", "$2b$17$" + gen[7:], ErrHashTooCostly},

		// Broken.
		{"digits overflow", phc("m=99999999999,t=1,p=1"), ErrMalformedHash},
		{"version 16", strings.Replace(good, "v=19", "v=16", 1), ErrMalformedHash},
		{"no version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, ErrMalformedHash},
		{"params out of order", phc("t=1,m=64,p=1"), ErrMalformedHash},
		{"extra param", phc("m=64,t=1,p=1,keyid=x"), ErrMalformedHash},
		{"missing param", phc("m=64,t=1"), ErrMalformedHash},
		{"leading zero", phc("m=064,t=1,p=1"), ErrMalformedHash},
		{"sign", phc("m=+64,t=1,p=1"), ErrMalformedHash},
		{"t = 0", phc("m=64,t=0,p=1"), ErrMalformedHash},
		{"p = 0", phc("m=64,t=1,p=0"), ErrMalformedHash},
		{"m below 8p", phc("m=8,t=1,p=2"), ErrMalformedHash},
		{"bad base64 salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key, ErrMalformedHash},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + base64.StdEncoding.EncodeToString(make([]byte, 16)) + "$" + key, ErrMalformedHash},
		{"newline in base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:4] + "\n" + salt[4:] + "$" + key, ErrMalformedHash},
		{"non-canonical trailing bits", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:len(salt)-1] + "B$" + key, ErrMalformedHash},
		{"short salt", "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(make([]byte, 7)) + "$" + key, ErrMalformedHash},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + base64.RawStdEncoding.EncodeToString(make([]byte, 8)), ErrMalformedHash},
		{"missing key", "$argon2id$v=19$m=64,t=1,p=1$" + salt, ErrMalformedHash},
		{"extra field", good + "$x", ErrMalformedHash},
		{"bcrypt truncated", gen[:59], ErrMalformedHash},
		{"bcrypt too long", gen + "x", ErrMalformedHash},
		{"bcrypt cost 03", "$2a$03$" + gen[7:], ErrMalformedHash},
		{"bcrypt cost sign", "$2a$+4$" + gen[7:], ErrMalformedHash},
		{"bcrypt bad char", gen[:59] + "!", ErrMalformedHash},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			ok, rehash, err := p.Verify("pw", tc.hash)
			elapsed := time.Since(start)
			if ok || rehash || !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, %v, %v; want false, false, %v", ok, rehash, err, tc.want)
			}
			// The sentinel above proves the refusal came from the checks; this
			// is a backstop (a hostile m would take seconds), loose for a
			// loaded machine under -race.
			if elapsed > time.Second {
				t.Errorf("Verify took %v: a bad hash must be refused without computing", elapsed)
			}
		})
	}
}

func TestOverlongPasswordNeverMatches(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	huge := strings.Repeat("a", MaxPasswordBytes+1)
	if _, err := p.Hash(huge); !errors.Is(err, ErrPasswordTooLong) {
		t.Errorf("Hash(huge) = %v, want ErrPasswordTooLong", err)
	}
	for _, encoded := range []string{mustHash(t, p, "a"), mustBcrypt(t, "a")} {
		ok, _, err := p.Verify(huge, encoded)
		if ok || err != nil {
			t.Errorf("Verify(huge, %.10s…) = %v, %v; want false, nil", encoded, ok, err)
		}
	}
}

func TestArgon2ParamsValidate(t *testing.T) {
	t.Parallel()
	with := func(f func(*Argon2Params)) Argon2Params { p := DefaultArgon2Params(); f(&p); return p }
	cases := []struct {
		name string
		p    Argon2Params
		ok   bool
	}{
		{"default", DefaultArgon2Params(), true},
		{"cheap", cheapParams(), true},
		{"RFC 9106 second choice", Argon2Params{Memory: 65536, Time: 3, Threads: 4, SaltLen: 16, KeyLen: 32}, true},
		{"zero", Argon2Params{}, false},
		{"time 0", with(func(p *Argon2Params) { p.Time = 0 }), false},
		{"threads 0", with(func(p *Argon2Params) { p.Threads = 0 }), false},
		{"memory below 8p", with(func(p *Argon2Params) { p.Threads = 4; p.Memory = 31 }), false},
		{"memory over bound", with(func(p *Argon2Params) { p.Memory = MaxArgon2Memory + 1 }), false},
		{"work over bound", with(func(p *Argon2Params) { p.Memory = MaxArgon2Memory; p.Time = 5 }), false},
		{"short salt", with(func(p *Argon2Params) { p.SaltLen = 8 }), false},
		{"short key", with(func(p *Argon2Params) { p.KeyLen = 8 }), false},
		{"long key", with(func(p *Argon2Params) { p.KeyLen = 129 }), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidHashParams) {
				t.Errorf("Validate() = %v, want ErrInvalidHashParams", err)
			}
			if _, err := tc.p.Hash("pw"); (err == nil) != tc.ok {
				t.Errorf("Hash() error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDummyHash(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	dummy := p.DummyHash()
	h, err := parseArgon2id(dummy)
	if err != nil {
		t.Fatalf("DummyHash %q does not parse: %v", dummy, err)
	}
	if h.params != p {
		t.Errorf("dummy params %+v, want the current %+v", h.params, p)
	}
	for _, pw := range []string{"", "password", "Tq7!vZp2wK"} {
		if ok, _, err := p.Verify(pw, dummy); ok || err != nil {
			t.Errorf("Verify(%q, dummy) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}
