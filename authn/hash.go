package authn

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/portero/portero/authn/internal/argon2"
)

// Argon2Params are the argon2id cost parameters used for new hashes. Hashes
// made with other parameters still verify, and report needsRehash.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon2Params is OWASP's argon2id recommendation (m=19 MiB, t=2, p=1)
// with a 16-byte salt and a 32-byte key.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on argon2id and bcrypt parameters, for configured parameters and for
// hashes read from the database alike. A hash row is data, not code: if a
// hostile or corrupt row could choose m=4194304 the gateway would allocate
// 4 GiB per login attempt. The bounds sit well above every published
// recommendation (OWASP, RFC 9106's second choice of 64 MiB, t=3, p=4).
const (
	MaxArgon2Memory  = 256 * 1024 // KiB (256 MiB)
	MaxArgon2Time    = 16
	MaxArgon2Threads = 16
	// MaxArgon2Work bounds Memory×Time (KiB×passes), which is what a
	// verification costs in time: 1 GiB of memory passes, about a second.
	MaxArgon2Work = 1 << 20

	minArgon2SaltLen = 8 // PHC string format minimum
	maxArgon2SaltLen = 64
	minArgon2KeyLen  = 16
	maxArgon2KeyLen  = 128

	// maxEncodedHashLen is checked before any parsing; every valid hash
	// within the bounds above is shorter.
	maxEncodedHashLen = 512

	// MaxBcryptCost bounds legacy bcrypt hashes: cost 16 is 2^16 rounds,
	// several seconds; passlib's default is 12. bcrypt allows up to 31,
	// which would take days.
	MaxBcryptCost = 16
)

// Validate reports whether p can be used to make hashes.
func (p Argon2Params) Validate() error {
	var problems []string
	if p.Time < 1 || p.Time > MaxArgon2Time {
		problems = append(problems, fmt.Sprintf("time must be in [1, %d]", MaxArgon2Time))
	}
	if p.Threads < 1 || p.Threads > MaxArgon2Threads {
		problems = append(problems, fmt.Sprintf("threads must be in [1, %d]", MaxArgon2Threads))
	}
	// argon2 needs 8 KiB per lane; x/crypto would silently round up.
	if p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > MaxArgon2Memory {
		problems = append(problems, fmt.Sprintf("memory must be in [8*threads, %d] KiB", MaxArgon2Memory))
	}
	if uint64(p.Memory)*uint64(p.Time) > MaxArgon2Work {
		problems = append(problems, fmt.Sprintf("memory*time must be at most %d", MaxArgon2Work))
	}
	if p.SaltLen < 16 || p.SaltLen > maxArgon2SaltLen {
		// 16 is the RFC 9106 recommendation for new hashes; older ones with
		// 8-byte salts still verify.
		problems = append(problems, fmt.Sprintf("salt length must be in [16, %d]", maxArgon2SaltLen))
	}
	if p.KeyLen < minArgon2KeyLen || p.KeyLen > maxArgon2KeyLen {
		problems = append(problems, fmt.Sprintf("key length must be in [%d, %d]", minArgon2KeyLen, maxArgon2KeyLen))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidHashParams, strings.Join(problems, "; "))
}

// Hash returns a new argon2id hash of password in PHC string form,
// $argon2id$v=19$m=…,t=…,p=…$<salt>$<key> (unpadded standard base64, as the
// reference implementation writes it). It is CPU- and memory-heavy: run it
// through a Hasher, not directly on a request goroutine.
func (p Argon2Params) Hash(password string) (string, error) {
	return p.hash(nil, password)
}

// hash is Hash computing in mem (nil: fresh memory).
func (p Argon2Params) hash(mem *argon2.Memory, password string) (string, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("authn: reading salt: %w", err)
	}
	key := argon2.IDKey(mem, []byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return formatArgon2id(argon2idHash{params: p, salt: salt, key: key}), nil
}

// Verify checks password against an encoded hash: argon2id in PHC form, or
// bcrypt ($2a$, $2b$, $2y$) from the legacy app. A wrong password is
// (false, false, nil); an error means the stored hash itself is unusable.
// needsRehash is true after a successful check when the hash is bcrypt or
// argon2id with parameters other than p, so the caller stores Hash(password)
// in its place. Passwords over MaxPasswordBytes never match.
func (p Argon2Params) Verify(password, encoded string) (ok, needsRehash bool, err error) {
	return p.verify(nil, password, encoded)
}

// verify is Verify computing an argon2id hash in mem (nil: fresh memory).
func (p Argon2Params) verify(mem *argon2.Memory, password, encoded string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		h, err := parseArgon2id(encoded)
		if err != nil {
			return false, false, err
		}
		if len(password) > MaxPasswordBytes {
			return false, false, nil
		}
		if h.params.Memory > p.Memory {
			// Reused memory is sized for the current cost; a costlier old
			// hash gets memory of its own, let go after this check.
			mem = nil
		}
		if !h.matches(mem, password) {
			return false, false, nil
		}
		return true, h.params != p, nil
	case isBcrypt(encoded):
		ok, err := verifyBcrypt(password, encoded)
		// Any bcrypt hash is upgraded to argon2id on the next login.
		return ok, ok, err
	case isBcryptSHA256(encoded):
		ok, err := verifyBcryptSHA256(password, encoded) // passlib's; see hash_passlib.go
		return ok, ok, err
	default:
		return false, false, ErrUnknownHashFormat
	}
}

// DummyHash is an argon2id hash with the parameters p and a fixed salt and
// key that no password produces (finding one means inverting argon2id).
// Verifying against it costs exactly what verifying a current user's hash
// costs, which is the point: see VerifyDummy.
func (p Argon2Params) DummyHash() string {
	salt := make([]byte, p.SaltLen)
	key := make([]byte, p.KeyLen)
	for i := range salt {
		salt[i] = byte(i)
	}
	for i := range key {
		key[i] = 0xA5
	}
	return formatArgon2id(argon2idHash{params: p, salt: salt, key: key})
}

// VerifyDummy spends the time of one real verification and learns nothing.
// Login calls it for an unknown e-mail so that "no such user" and "wrong
// password" take the same time and reveal nothing by timing. (A user whose
// row still holds a legacy bcrypt hash, or older argon2 parameters, verifies
// at that hash's cost instead, until the next login rehashes it.)
func (p Argon2Params) VerifyDummy(password string) {
	// The parse, the bound check and the compare all run as for a real hash.
	_, _, _ = p.Verify(password, p.DummyHash())
}

// argon2idHash is a parsed PHC argon2id string. params.SaltLen and KeyLen are
// the actual lengths of salt and key.
type argon2idHash struct {
	params Argon2Params
	salt   []byte
	key    []byte
}

func (h argon2idHash) matches(mem *argon2.Memory, password string) bool {
	got := argon2.IDKey(mem, []byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

func formatArgon2id(h argon2idHash) string {
	var b strings.Builder
	b.Grow(64 + base64.RawStdEncoding.EncodedLen(len(h.salt)) + base64.RawStdEncoding.EncodedLen(len(h.key)))
	b.WriteString("$argon2id$v=")
	b.WriteString(strconv.Itoa(argon2.Version))
	b.WriteString("$m=")
	b.WriteString(strconv.FormatUint(uint64(h.params.Memory), 10))
	b.WriteString(",t=")
	b.WriteString(strconv.FormatUint(uint64(h.params.Time), 10))
	b.WriteString(",p=")
	b.WriteString(strconv.FormatUint(uint64(h.params.Threads), 10))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(h.salt))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(h.key))
	return b.String()
}

// parseArgon2id parses $argon2id$v=19$m=M,t=T,p=P$salt$key strictly: the
// canonical form the reference implementation writes, nothing else (no
// optional keyid/data fields, no leading zeros, no padding), so that every
// accepted string formats back to itself. Cost bounds are checked before
// anything is decoded or allocated.
func parseArgon2id(s string) (argon2idHash, error) {
	var h argon2idHash
	if len(s) > maxEncodedHashLen {
		return h, fmt.Errorf("%w: argon2id hash longer than %d bytes", ErrMalformedHash, maxEncodedHashLen)
	}
	rest, ok := strings.CutPrefix(s, "$argon2id$")
	if !ok {
		return h, ErrUnknownHashFormat
	}
	version, rest, _ := strings.Cut(rest, "$")
	if version != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("%w: argon2id version field %q, want v=%d", ErrMalformedHash, version, argon2.Version)
	}
	params, rest, _ := strings.Cut(rest, "$")
	saltB64, keyB64, found := strings.Cut(rest, "$")
	if !found || strings.Contains(keyB64, "$") {
		return h, fmt.Errorf("%w: argon2id hash needs 5 $-separated fields", ErrMalformedHash)
	}

	mStr, params, _ := strings.Cut(params, ",")
	tStr, pStr, _ := strings.Cut(params, ",")
	m, err1 := phcDecimal(mStr, "m=")
	t, err2 := phcDecimal(tStr, "t=")
	p, err3 := phcDecimal(pStr, "p=")
	if err1 != nil || err2 != nil || err3 != nil {
		return h, fmt.Errorf("%w: argon2id parameters must be m=<n>,t=<n>,p=<n>", ErrMalformedHash)
	}
	if m > MaxArgon2Memory || t > MaxArgon2Time || p > MaxArgon2Threads || m*t > MaxArgon2Work {
		return h, fmt.Errorf("%w: argon2id m=%d,t=%d,p=%d", ErrHashTooCostly, m, t, p)
	}
	if t < 1 || p < 1 || m < 8*p {
		return h, fmt.Errorf("%w: argon2id m=%d,t=%d,p=%d below the minimum", ErrMalformedHash, m, t, p)
	}
	if len(saltB64) > base64.RawStdEncoding.EncodedLen(maxArgon2SaltLen) ||
		len(keyB64) > base64.RawStdEncoding.EncodedLen(maxArgon2KeyLen) {
		return h, fmt.Errorf("%w: argon2id salt or key too long", ErrHashTooCostly)
	}
	salt, err := phcBase64(saltB64)
	if err != nil || len(salt) < minArgon2SaltLen {
		return h, fmt.Errorf("%w: argon2id salt must be %d to %d bytes of unpadded base64", ErrMalformedHash, minArgon2SaltLen, maxArgon2SaltLen)
	}
	key, err := phcBase64(keyB64)
	if err != nil || len(key) < minArgon2KeyLen {
		return h, fmt.Errorf("%w: argon2id key must be %d to %d bytes of unpadded base64", ErrMalformedHash, minArgon2KeyLen, maxArgon2KeyLen)
	}
	h.params = Argon2Params{
		Memory:  uint32(m),
		Time:    uint32(t),
		Threads: uint8(p),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	h.salt, h.key = salt, key
	return h, nil
}

// phcDecimal parses "<name><decimal>" with no sign, no leading zero and at
// most 10 digits, so the result fits comfortably in a uint64 product.
func phcDecimal(s, name string) (uint64, error) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || len(digits) > 10 || (len(digits) > 1 && digits[0] == '0') {
		return 0, ErrMalformedHash
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, ErrMalformedHash
		}
	}
	return strconv.ParseUint(digits, 10, 64)
}

// phcBase64 decodes unpadded standard base64 and insists on the canonical
// encoding: the decoder alone would skip CR/LF and ignore stray trailing
// bits, so two different strings could name the same hash.
func phcBase64(s string) ([]byte, error) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, ErrMalformedHash
	}
	return b, nil
}

// isBcrypt reports whether encoded carries one of the bcrypt prefixes we
// accept. $2x$ (crypt_blowfish's marker for hashes made with its
// sign-extension bug) and the original $2$ are not accepted: they would not
// verify correctly here and must be reset.
func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") ||
		strings.HasPrefix(encoded, "$2b$") ||
		strings.HasPrefix(encoded, "$2y$")
}

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// verifyBcrypt checks a legacy hash. The hash is validated here (length,
// alphabet, cost bound) before x/crypto sees it, so a hostile $2a$31$ row is
// refused instead of computing for days.
//
// $2b$ (OpenBSD's and passlib's marker) and $2y$ (PHP's) denote the same
// algorithm as a correct $2a$; Go's implementation never had the bugs the
// markers distinguish, so $2y$ is read as $2a$. Like every bcrypt, only the
// first 72 bytes of the password count, as they did in the legacy app.
func verifyBcrypt(password, encoded string) (bool, error) {
	if err := checkBcrypt(encoded); err != nil {
		return false, err
	}
	if len(password) > MaxPasswordBytes {
		return false, nil
	}
	if strings.HasPrefix(encoded, "$2y$") {
		encoded = "$2a$" + encoded[4:]
	}
	err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %w", ErrMalformedHash, err)
	}
}

// checkBcrypt validates the shape of a bcrypt hash: $2a$, $2b$ or $2y$, a
// two-digit cost within [bcrypt.MinCost, MaxBcryptCost], then 53 characters
// of bcrypt's base64 (22 of salt, 31 of hash).
func checkBcrypt(encoded string) error {
	if !isBcrypt(encoded) {
		return ErrUnknownHashFormat
	}
	if len(encoded) != 60 || encoded[6] != '$' {
		return fmt.Errorf("%w: bcrypt hash must be $2?$NN$ and 53 characters", ErrMalformedHash)
	}
	d1, d2 := encoded[4], encoded[5]
	if d1 < '0' || d1 > '9' || d2 < '0' || d2 > '9' {
		return fmt.Errorf("%w: bcrypt cost %q", ErrMalformedHash, encoded[4:6])
	}
	cost := int(d1-'0')*10 + int(d2-'0')
	if cost < bcrypt.MinCost {
		return fmt.Errorf("%w: bcrypt cost %d below %d", ErrMalformedHash, cost, bcrypt.MinCost)
	}
	if cost > MaxBcryptCost {
		return fmt.Errorf("%w: bcrypt cost %d", ErrHashTooCostly, cost)
	}
	for i := 7; i < len(encoded); i++ {
		if strings.IndexByte(bcryptAlphabet, encoded[i]) < 0 {
			return fmt.Errorf("%w: bcrypt hash has a character outside its alphabet", ErrMalformedHash)
		}
	}
	return nil
}
