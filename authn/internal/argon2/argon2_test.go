package argon2

import (
	"bytes"
	"math/rand/v2"
	"testing"

	upstream "golang.org/x/crypto/argon2"
)

// garbage fills m's blocks with pseudo-random words, as a previous hash of
// other inputs would leave them.
func garbage(m *Memory, n uint32, r *rand.Rand) {
	for i := range m.get(n) {
		for j := range m.blocks[i] {
			m.blocks[i][j] = r.Uint64()
		}
	}
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// The whole point of the fork is to compute upstream's function in memory
// that is not fresh; every case runs on the garbage of the previous ones.
func TestIDKeyMatchesUpstream(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var mem Memory
	garbage(&mem, 4096, r)
	for i := range 120 {
		password := randomBytes(r, r.IntN(80))
		salt := randomBytes(r, 8+r.IntN(24))
		time := 1 + r.Uint32N(3)
		threads := uint8(1 + r.IntN(4))
		memory := 8*uint32(threads) + r.Uint32N(3000) // also not a multiple of 4×threads
		keyLen := 4 + r.Uint32N(130)                  // across blake2b's 64-byte output
		want := upstream.IDKey(password, salt, time, memory, threads, keyLen)
		if got := IDKey(&mem, password, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
			t.Fatalf("case %d (t=%d m=%d p=%d keyLen=%d): got %x, want %x", i, time, memory, threads, keyLen, got, want)
		}
		if i%10 == 0 {
			if got := IDKey(nil, password, salt, time, memory, threads, keyLen); !bytes.Equal(got, want) {
				t.Fatalf("case %d without memory: got %x, want %x", i, got, want)
			}
		}
	}
}

// Portero's default parameters, once, on memory another hash just used.
func TestIDKeyDefaultParameters(t *testing.T) {
	var mem Memory
	_ = IDKey(&mem, []byte("someone else's password"), []byte("another salt 123"), 2, 19456, 1, 32)
	salt := []byte("0123456789abcdef")
	want := upstream.IDKey([]byte("correct horse"), salt, 2, 19456, 1, 32)
	if got := IDKey(&mem, []byte("correct horse"), salt, 2, 19456, 1, 32); !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestMemoryGrowsOnlyWhenNeeded(t *testing.T) {
	var mem Memory
	IDKey(&mem, []byte("pw"), []byte("saltsalt"), 1, 64, 1, 32)
	first := &mem.blocks[0]
	IDKey(&mem, []byte("pw"), []byte("saltsalt"), 1, 32, 1, 32)
	if &mem.blocks[0] != first || len(mem.blocks) != 64 {
		t.Fatalf("a smaller hash replaced the memory (len %d)", len(mem.blocks))
	}
	IDKey(&mem, []byte("pw"), []byte("saltsalt"), 1, 128, 1, 32)
	if len(mem.blocks) != 128 {
		t.Fatalf("memory not grown for a larger hash: len %d", len(mem.blocks))
	}
}

func FuzzIDKeyMatchesUpstream(f *testing.F) {
	f.Add([]byte("password"), []byte("somesalt"), uint8(1), uint16(32), uint8(1), uint8(32), uint64(0))
	f.Add([]byte(""), []byte("saltsaltsalt"), uint8(2), uint16(100), uint8(3), uint8(100), uint64(7))
	var mem Memory
	f.Fuzz(func(t *testing.T, password, salt []byte, time uint8, memory uint16, threads uint8, keyLen uint8, seed uint64) {
		time = 1 + time%3
		threads = 1 + threads%4
		m := 8*uint32(threads) + uint32(memory)%512
		kl := 4 + uint32(keyLen)
		garbage(&mem, m, rand.New(rand.NewPCG(seed, seed)))
		want := upstream.IDKey(password, salt, uint32(time), m, threads, kl)
		if got := IDKey(&mem, password, salt, uint32(time), m, threads, kl); !bytes.Equal(got, want) {
			t.Fatalf("t=%d m=%d p=%d keyLen=%d: got %x, want %x", time, m, threads, kl, got, want)
		}
	})
}

// Portero's default cost, two hashes at a time as on a two-core machine's
// hashing pool: upstream allocating per hash, and this package reusing one
// Memory per worker.
func BenchmarkIDKey(b *testing.B) {
	password, salt := []byte("correct horse"), []byte("0123456789abcdef")
	b.Run("upstream", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				upstream.IDKey(password, salt, 2, 19456, 1, 32)
			}
		})
	})
	b.Run("reused-memory", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var mem Memory
			for pb.Next() {
				IDKey(&mem, password, salt, 2, 19456, 1, 32)
			}
		})
	})
}
