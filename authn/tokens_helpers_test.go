package authn

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"sync"
	"testing"
	"time"
)

// testEpoch is the start of every fake clock: a fixed instant, so tests are
// reproducible and never depend on the machine's time.
var testEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is an injected clock tests move forward instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: testEpoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSecret returns a deterministic secret of n bytes, distinct per seed.
func testSecret(seed byte, n int) []byte {
	return bytes.Repeat([]byte{'a' + seed%26}, n)
}

func testKeyring(tb testing.TB, current []byte, previous ...[]byte) *Keyring {
	tb.Helper()
	k, err := NewKeyring(current, previous...)
	if err != nil {
		tb.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func derivedKey(tb testing.TB, k *Keyring, purpose string) DerivedKey {
	tb.Helper()
	d, err := k.Derive(purpose)
	if err != nil {
		tb.Fatalf("Derive(%q): %v", purpose, err)
	}
	return d.Current()
}

var b64 = base64.RawURLEncoding

// jwtParts splits a compact JWS and decodes header and payload into maps
// (numbers kept as json.Number).
func jwtParts(tb testing.TB, token string) (header, payload map[string]any, sig string) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	return decodeSegment(tb, parts[0]), decodeSegment(tb, parts[1]), parts[2]
}

func decodeSegment(tb testing.TB, seg string) map[string]any {
	tb.Helper()
	raw, err := b64.DecodeString(seg)
	if err != nil {
		tb.Fatalf("decode segment: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("decode json: %v", err)
	}
	return m
}

func encodeSegment(tb testing.TB, v any) string {
	tb.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("encode segment: %v", err)
	}
	return b64.EncodeToString(raw)
}

// hmacSign builds a token the way an attacker (or another library) would:
// by hand, from header and payload maps, HMAC-signed with key using h.
// With h nil the signature part is left empty (alg "none" style).
func hmacSign(tb testing.TB, h func() hash.Hash, key []byte, header, payload map[string]any) string {
	tb.Helper()
	input := encodeSegment(tb, header) + "." + encodeSegment(tb, payload)
	if h == nil {
		return input + "."
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// withOriginalSignature swaps in a new payload and keeps the original
// signature: the "changed claims" forgery.
func withOriginalSignature(tb testing.TB, token string, edit func(payload map[string]any)) string {
	tb.Helper()
	header, payload, sig := jwtParts(tb, token)
	edit(payload)
	return encodeSegment(tb, header) + "." + encodeSegment(tb, payload) + "." + sig
}

// withHeader re-encodes the header with edit applied and keeps payload and
// signature.
func withHeader(tb testing.TB, token string, edit func(header map[string]any)) string {
	tb.Helper()
	header, _, _ := jwtParts(tb, token)
	edit(header)
	parts := strings.Split(token, ".")
	return encodeSegment(tb, header) + "." + parts[1] + "." + parts[2]
}

// nonCanonicalSig sets an unused trailing bit of the signature's last
// base64 character: a second spelling of the same signature bytes, which a
// lenient decoder would accept.
func nonCanonicalSig(token string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := token[len(token)-1]
	i := strings.IndexByte(alphabet, last)
	return token[:len(token)-1] + string(alphabet[i|1])
}

var (
	sha256New = sha256.New
	sha384New = sha512.New384
	sha512New = sha512.New
)
