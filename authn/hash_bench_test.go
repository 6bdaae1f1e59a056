package authn

import (
	"testing"
	"time"
)

// BenchmarkArgon2idHash is the raw cost of one new hash with the default
// (OWASP) parameters: the floor for registration and the yardstick the login
// benchmark's overhead is measured against.
func BenchmarkArgon2idHash(b *testing.B) {
	p := DefaultArgon2Params()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Hash("Tq7!vZp2wK"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkArgon2idVerify is one login's verification with default
// parameters (parse + argon2id + constant-time compare).
func BenchmarkArgon2idVerify(b *testing.B) {
	p := DefaultArgon2Params()
	encoded := mustHash(b, p, "Tq7!vZp2wK")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := p.Verify("Tq7!vZp2wK", encoded); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkHasherVerify is the same through the pool, to show what the pool
// adds (a channel send and receive per call) and saves (its argon2 memory is
// reused instead of allocated and zeroed per call).
func BenchmarkHasherVerify(b *testing.B) {
	p := DefaultArgon2Params()
	h := newTestHasher(b, p, 1, 0, time.Minute)
	encoded := mustHash(b, p, "Tq7!vZp2wK")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := h.Verify(b.Context(), "Tq7!vZp2wK", encoded); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
