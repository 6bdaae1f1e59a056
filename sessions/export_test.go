package sessions

import (
	"context"
	"time"
)

// Internals the external tests and benchmarks use.
var DecodeSession = decodeSession

// TouchScripted and TouchThrottled expose the two Touch paths so the
// benchmarks can compare them on the same workload.
func (r *RedisStore) TouchScripted(ctx context.Context, key string, now time.Time) (Session, error) {
	return r.touchScripted(ctx, key, now)
}

func (r *RedisStore) TouchThrottled(ctx context.Context, key string, now time.Time) (Session, error) {
	return r.touchThrottled(ctx, key, now)
}
