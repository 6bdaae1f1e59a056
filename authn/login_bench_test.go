package authn_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
	"github.com/portero/portero/sessions/counterstest"
	"github.com/portero/portero/storage/storagetest"
)

// BenchmarkLoginVsRawHash measures a whole password login (user lookup,
// lockout reservation in Redis, argon2id verify with the default cost,
// session in Redis, bearer token, login bookkeeping and a durable audit row
// in PostgreSQL) against the raw argon2id verification it contains. The
// difference is Portero's overhead outside hashing (issue 3: <= 10%).
func BenchmarkLoginVsRawHash(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	db := storagetest.NewPostgres(b)
	rdb, prefix := counterstest.RedisClient(b)
	users := authn.NewUserStore(db)
	store, err := sessions.NewRedisStore(rdb, time.Hour, 12*time.Hour, sessions.WithKeyPrefix(prefix+"s:"))
	if err != nil {
		b.Fatal(err)
	}
	counters, err := sessions.NewRedisCounters(rdb, sessions.WithCounterKeyPrefix(prefix+"c:"))
	if err != nil {
		b.Fatal(err)
	}
	lockout, err := authn.NewLockout(counters, authn.LockoutPolicy{IPMaxAttempts: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	params := authn.DefaultArgon2Params()
	hasher, err := authn.NewHasher(params, 1, 16, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	ring, _ := authn.NewKeyring([]byte("bench-secret-key-0123456789abcdef-0123"))
	tokens, _ := authn.NewSessionTokens(ring, nil)
	writer, err := audit.NewWriter(audit.NewStore(db), audit.WriterConfig{SpoolDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = writer.Close(ctx) })
	svc := authn.NewService(authn.ServiceDeps{Users: users, Sessions: store, Hasher: hasher, Lockout: lockout,
		Tokens: tokens, Audit: writer, Log: zap.NewNop()}, authn.ServiceConfig{Registration: "open", Policy: authn.DefaultPasswordPolicy()})

	const password = "Bench-Pass-2026!"
	hash, err := params.Hash(password)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := users.CreateUser(ctx, authn.User{Email: "bench@example.com", HashedPassword: hash, IsActive: true}); err != nil {
		b.Fatal(err)
	}
	meta := authn.ClientMeta{IP: "192.0.2.1", UserAgent: "bench"}

	// The raw side verifies through the same pool, so both reuse its
	// memory and the difference is the login's work outside hashing.
	rawVerify := func() time.Duration {
		t0 := time.Now()
		if ok, _, err := hasher.Verify(ctx, password, hash); !ok || err != nil {
			b.Fatal("raw verify failed", err)
		}
		return time.Since(t0)
	}
	doLogin := func() time.Duration {
		t0 := time.Now()
		if _, err := svc.Login(ctx, "bench@example.com", password, meta); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	// Alternate the order so neither side always runs first (on a warmer
	// cache, or right after the other's garbage).
	var raw, login time.Duration
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			raw += rawVerify()
			login += doLogin()
		} else {
			login += doLogin()
			raw += rawVerify()
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(raw.Microseconds())/n/1000, "raw_hash_ms")
	b.ReportMetric(float64(login.Microseconds())/n/1000, "login_ms")
	b.ReportMetric(100*(float64(login)-float64(raw))/float64(raw), "overhead_%")
}
