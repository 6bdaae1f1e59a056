// Command hashrate is the load harness's yardstick for logins: argon2id
// verifications per second with Portero's default parameters on every core,
// in a fresh process of its own that does nothing else (measured inside the
// harness, the rate paid for the harness's own heap and goroutines).
//
//	hashrate -impl xcrypto -duration 4s   golang.org/x/crypto's IDKey, as the issue measures it
//	hashrate -impl pool -duration 4s      Portero's hashing pool (authn.Hasher), no HTTP, no stores
//
// It prints `hashes/s=N` on stdout. It lives under testdata so `go build
// ./...` leaves it alone; the harness builds it by path.
package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"log"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/portero/portero/authn"
)

const password = "Tq7!vZp2wK-harness"

func main() {
	impl := flag.String("impl", "xcrypto", "xcrypto or pool")
	duration := flag.Duration("duration", 4*time.Second, "how long to hash")
	flag.Parse()
	hash, err := verifier(*impl)
	if err != nil {
		log.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(*duration)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := hash(); err != nil {
					log.Fatal(err)
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("hashes/s=%.2f\n", float64(n.Load())/time.Since(start).Seconds())
}

// verifier returns one verification of the right password.
func verifier(impl string) (func() error, error) {
	p := authn.DefaultArgon2Params()
	switch impl {
	case "xcrypto":
		salt := []byte("0123456789abcdef")
		key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		return func() error {
			if subtle.ConstantTimeCompare(argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen), key) != 1 {
				return fmt.Errorf("x/crypto: the same inputs gave another key")
			}
			return nil
		}, nil
	case "pool":
		workers := runtime.GOMAXPROCS(0)
		h, err := authn.NewHasher(p, workers, workers, time.Minute)
		if err != nil {
			return nil, err
		}
		encoded, err := p.Hash(password)
		if err != nil {
			return nil, err
		}
		return func() error {
			if ok, _, err := h.Verify(context.Background(), password, encoded); !ok || err != nil {
				return fmt.Errorf("hashing pool: verify = %v, %v", ok, err)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("-impl %q: want xcrypto or pool", impl)
}
