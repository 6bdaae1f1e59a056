package authn

import (
	"errors"
	"strings"
	"testing"
)

// Hashes made by the Python tools a FastAPI app uses (passlib 1.7.4 and
// python-bcrypt 3.2.2, Debian bookworm), with the passwords they were made
// from: Portero must verify exactly what those libraries wrote.
var passlibLongPassword = "Ñandú-" + strings.Repeat("x", 100) + "Aa1!"

const (
	passlibPassword = "Legacy-Pass-1!"

	// passlib.hash.bcrypt.using(rounds=4).hash(passlibPassword)
	passlibBcrypt = "$2b$04$QeKz8rWEIGRz63t2FD0LPOBUGA3cSIb3L7XHI8q0RST7bvVdSgnpu"
	// bcrypt.hashpw(passlibPassword, bcrypt.gensalt(rounds=4))
	pyBcrypt = "$2b$04$0iR/BJbux1bB/R9GPZ4yQO3RWLHzCDfsvR/clmSBCv3VuOyStnujm"
	// bcrypt.hashpw(passlibPassword, bcrypt.gensalt(rounds=4, prefix=b"2a"))
	pyBcrypt2a = "$2a$04$zBq95BBfsnnTGe8UVIOIvO6KVkpCf9mbh5OAidD09k2ggbT.76NvC"
	// passlib.hash.bcrypt_sha256.using(rounds=4).hash(passlibPassword): v2
	passlibSHA256v2 = "$bcrypt-sha256$v=2,t=2b,r=4$X5osKoybtWR8CQ0Gr3xO2O$.7KTJWJcuvGxBxEzGmrpBCoFkbR4AxK"
	// passlib.hash.bcrypt_sha256.using(rounds=4, version=1).hash(passlibPassword)
	passlibSHA256v1 = "$bcrypt-sha256$2b,4$PS8v4iRZzAH6yRip.nq9Je$TvtxStTYhjAcQ6b96MzNZQrC.B0d.ji"
	// passlib.hash.bcrypt_sha256.using(rounds=5, version=1, ident="2a").hash(passlibPassword)
	passlibSHA256v1a = "$bcrypt-sha256$2a,5$3bFx5M1DzCYWMpGqIjo.ne$1Y11azP0rqL1jV8F3O4JWfoOE6O8DGq"
	// passlib.hash.bcrypt_sha256.using(rounds=5).hash(passlibLongPassword):
	// the whole long password counts, not its first 72 bytes.
	passlibSHA256Long = "$bcrypt-sha256$v=2,t=2b,r=5$6E/f.rtXG9grHyqz5C0a..$7Az5.TzLDT2nYo8bOGMe58Tkf3.Oa9y"
	// passlib.hash.bcrypt_sha256.using(rounds=17).hash(passlibPassword): too costly to check.
	passlibSHA256Costly = "$bcrypt-sha256$v=2,t=2b,r=17$BfpAcpxdP78frY0huZBcre$L4zbwUwiqrBVg8eW7esWYuk0bg1329C"
)

func TestVerifyPythonHashes(t *testing.T) {
	t.Parallel()
	p := cheapParams()
	cases := []struct {
		name, hash, password string
	}{
		{"passlib bcrypt", passlibBcrypt, passlibPassword},
		{"python-bcrypt 2b", pyBcrypt, passlibPassword},
		{"python-bcrypt 2a", pyBcrypt2a, passlibPassword},
		{"passlib bcrypt_sha256 v2", passlibSHA256v2, passlibPassword},
		{"passlib bcrypt_sha256 v1", passlibSHA256v1, passlibPassword},
		{"passlib bcrypt_sha256 v1 2a", passlibSHA256v1a, passlibPassword},
		{"passlib bcrypt_sha256 long", passlibSHA256Long, passlibLongPassword},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckStoredHash(tc.hash); err != nil {
				t.Fatalf("CheckStoredHash = %v", err)
			}
			ok, rehash, err := p.Verify(tc.password, tc.hash)
			if err != nil || !ok || !rehash {
				t.Fatalf("Verify(right password) = %v, %v, %v; want true, true (upgrade to argon2id), nil", ok, rehash, err)
			}
			for _, wrong := range []string{tc.password + "x", strings.ToLower(tc.password), ""} {
				if ok, _, err := p.Verify(wrong, tc.hash); ok || err != nil {
					t.Fatalf("Verify(%q) = %v, %v; want false, nil", wrong, ok, err)
				}
			}
		})
	}
	// bcrypt_sha256 hashes all of a long password: a different tail fails.
	if ok, _, _ := p.Verify(passlibLongPassword[:80]+"tail differs", passlibSHA256Long); ok {
		t.Fatal("bcrypt_sha256 accepted a long password with only its first bytes right")
	}
}

func TestBcryptSHA256Refusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, hash string
		want       error
	}{
		{"too costly", passlibSHA256Costly, ErrHashTooCostly},
		{"cost below minimum", strings.Replace(passlibSHA256v2, "r=4", "r=3", 1), ErrMalformedHash},
		{"three-digit rounds", strings.Replace(passlibSHA256v2, "r=4", "r=004", 1), ErrMalformedHash},
		{"unknown variant", strings.Replace(passlibSHA256v2, "t=2b", "t=2y", 1), ErrMalformedHash},
		{"unknown version", strings.Replace(passlibSHA256v2, "v=2", "v=3", 1), ErrMalformedHash},
		{"short salt", strings.Replace(passlibSHA256v2, "$X5os", "$X5o", 1), ErrMalformedHash},
		{"missing checksum", passlibSHA256v2[:strings.LastIndexByte(passlibSHA256v2, '$')], ErrMalformedHash},
		{"bad alphabet", strings.Replace(passlibSHA256v2, "X5os", "X5o!", 1), ErrMalformedHash},
		{"extra field", passlibSHA256v2 + "$x", ErrMalformedHash},
		{"huge", bcryptSHA256Prefix + strings.Repeat("a", 600), ErrMalformedHash},
		{"not passlib", "$pbkdf2-sha256$29000$abc$def", ErrUnknownHashFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckStoredHash(tc.hash); !errors.Is(err, tc.want) {
				t.Fatalf("CheckStoredHash = %v, want %v", err, tc.want)
			}
			if ok, _, err := cheapParams().Verify(passlibPassword, tc.hash); ok || !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, %v; want false, %v", ok, err, tc.want)
			}
		})
	}
}

func FuzzParseBcryptSHA256(f *testing.F) {
	for _, s := range []string{passlibSHA256v2, passlibSHA256v1, passlibSHA256v1a, passlibSHA256Costly, "$bcrypt-sha256$", "$bcrypt-sha256$v=2,t=2b,r=$$", "$bcrypt-sha256$2b,99$a$b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseBcryptSHA256(s)
		if err != nil {
			return
		}
		// Anything accepted is a well-formed bcrypt hash within the bounds.
		if checkBcrypt(h.bcrypt) != nil || (h.version != 1 && h.version != 2) || len(h.saltText) != 22 {
			t.Fatalf("accepted %q as %+v", s, h)
		}
	})
}
