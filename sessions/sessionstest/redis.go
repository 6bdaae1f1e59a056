package sessionstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portero/portero/sessions"
)

// DefaultRedis is the Redis tests use when PORTERO_TEST_REDIS is unset.
const DefaultRedis = "redis://127.0.0.1:6379/0"

// RedisClient connects to PORTERO_TEST_REDIS (default DefaultRedis) and
// fails the test — never skips it — when nothing answers. It returns the
// client and a key prefix of the test's own (named after area); when the
// test ends every key under the prefix is deleted and the client closed, so
// tests run in parallel and leave nothing behind.
func RedisClient(tb testing.TB, area string) (redis.UniversalClient, string) {
	tb.Helper()
	url := os.Getenv("PORTERO_TEST_REDIS")
	if url == "" {
		url = DefaultRedis
	}
	rdb, err := sessions.NewRedisClient(url)
	if err != nil {
		tb.Fatalf("PORTERO_TEST_REDIS: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		tb.Fatalf("these tests need a Redis at PORTERO_TEST_REDIS (default %s): %v", DefaultRedis, err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "portero-test:" + area + ":" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		defer func() { _ = rdb.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := PrefixKeys(ctx, rdb, prefix)
		if err != nil {
			tb.Errorf("redis cleanup: %v", err)
			return
		}
		for _, k := range keys {
			if err := rdb.Del(ctx, k).Err(); err != nil {
				tb.Errorf("redis cleanup: del %s: %v", k, err)
			}
		}
	})
	return rdb, prefix
}

// PrefixKeys lists the keys under prefix.
func PrefixKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// Keys is PrefixKeys for a test: it fails the test when Redis cannot list
// them.
func Keys(tb testing.TB, rdb redis.UniversalClient, prefix string) []string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := PrefixKeys(ctx, rdb, prefix)
	if err != nil {
		tb.Fatalf("scan %s*: %v", prefix, err)
	}
	return keys
}
