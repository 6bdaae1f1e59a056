package sessions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout of the counters (prefix P, default DefaultCounterKeyPrefix):
//
//	P+"{"+key+"}:n"   hash {f: failures, r: attempts in flight}; PEXPIRE = the window,
//	                  set when the counter is created and never pushed forward
//	P+"{"+key+"}:l"   the lock, "1"; PX = the lock duration, set once (never extended)
//
// Both keys of a counter carry the same hash tag, so they live in one Redis
// Cluster slot and every operation is one script over both: atomic on a
// single Redis, Sentinel and Cluster alike. Expiry is Redis's own (PEXPIRE,
// PX), decided by one clock for every Portero instance.

// counterReserveScript: ARGV max, window ms, lock ms. Returns {state, n, ms}:
// state 0 allowed (n counts this attempt), 1 refused with the counter full
// (ms until the window ends), 2 locked (ms until the lock lifts).
//
// The TTL repairs (a lock or counter without a TTL) never happen with keys
// these scripts wrote; they stop a stray PERSIST from locking a key forever.
var counterReserveScript = redis.NewScript(`
local lt = redis.call('PTTL', KEYS[2])
if lt == -1 then
  if tonumber(ARGV[3]) > 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    lt = tonumber(ARGV[3])
  else
    redis.call('DEL', KEYS[2])
    lt = -2
  end
end
if lt ~= -2 then return {2, 0, lt} end
local c = redis.call('HMGET', KEYS[1], 'f', 'r')
local f = tonumber(c[1]) or 0
local r = tonumber(c[2]) or 0
if f + r >= tonumber(ARGV[1]) then
  local ct = redis.call('PTTL', KEYS[1])
  if ct == -1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    ct = tonumber(ARGV[2])
  end
  return {1, f + r, ct}
end
r = redis.call('HINCRBY', KEYS[1], 'r', 1)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {0, f + r, 0}
`)

// counterFailScript: ARGV max, window ms, lock ms. Returns {failures,
// lockedNow}: {0, 0} during a lock (nothing counted). The lock is written only after checking, inside
// the same script, that none exists, so exactly one failure sets it; the
// counter goes with it so the count starts afresh after the lock.
var counterFailScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0} end
local r = tonumber(redis.call('HGET', KEYS[1], 'r')) or 0
if r > 0 then redis.call('HINCRBY', KEYS[1], 'r', -1) end
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if tonumber(ARGV[3]) > 0 and f >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return {f, 1}
end
return {f, 0}
`)

// counterSucceedScript returns -2 when the success was recorded, otherwise
// the lock's PTTL (the key is locked and nothing changed).
var counterSucceedScript = redis.NewScript(`
local lt = redis.call('PTTL', KEYS[2])
if lt ~= -2 then return lt end
local r = tonumber(redis.call('HGET', KEYS[1], 'r')) or 0
if r <= 1 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'f', 0, 'r', r - 1)
end
return -2
`)

// counterReleaseScript ends one attempt in flight; an empty counter is
// deleted rather than left to expire.
var counterReleaseScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'f', 'r')
local f = tonumber(c[1]) or 0
local r = tonumber(c[2]) or 0
if r <= 0 then return 0 end
if r == 1 and f == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('HINCRBY', KEYS[1], 'r', -1)
end
return 1
`)

// counterUnlockScript deletes both keys and returns 1 if a lock existed.
var counterUnlockScript = redis.NewScript(`
local l = redis.call('DEL', KEYS[2])
redis.call('DEL', KEYS[1])
return l
`)

// counterStatusScript returns {f, r, counter PTTL, lock PTTL} read at one
// instant.
var counterStatusScript = redis.NewScript(`
local c = redis.call('HMGET', KEYS[1], 'f', 'r')
return {tonumber(c[1]) or 0, tonumber(c[2]) or 0, redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2])}
`)

// RedisCounters keeps counters in Redis (single, Sentinel or Cluster). Every
// Portero instance sharing the Redis shares the counts and the locks.
type RedisCounters struct {
	rdb     redis.UniversalClient
	prefix  string
	timeout time.Duration
}

var _ CounterStore = (*RedisCounters)(nil)

// NewRedisCounters returns a counter store on rdb, which the caller owns and
// closes (NewRedisClient makes one that fails fast). Options:
// WithCounterKeyPrefix, WithCounterTimeout. It does not contact Redis; use
// Ping for readiness.
func NewRedisCounters(rdb redis.UniversalClient, opts ...CounterOption) (*RedisCounters, error) {
	if rdb == nil {
		return nil, errors.New("sessions: counters: nil redis client")
	}
	st, err := newCounterSettings(opts)
	if err != nil {
		return nil, err
	}
	return &RedisCounters{rdb: rdb, prefix: st.keyPrefix, timeout: st.timeout}, nil
}

// bounded gives one call its deadline (see WithCounterTimeout); a caller's
// earlier deadline wins.
func (r *RedisCounters) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// keys returns the counter and lock keys of key, sharing one hash tag.
func (r *RedisCounters) keys(key string) []string {
	base := r.prefix + "{" + key + "}:"
	return []string{base + "n", base + "l"}
}

// unavailable wraps a Redis failure: whatever went wrong (no connection, a
// timeout, READONLY during a failover, CLUSTERDOWN), the count could not be
// kept, and callers must fail closed.
func unavailable(op string, err error) error {
	return fmt.Errorf("sessions: redis counters %s: %w: %w", op, ErrUnavailable, err)
}

// Reserve implements CounterStore.
func (r *RedisCounters) Reserve(ctx context.Context, key string, lim Limit) (Reservation, error) {
	if err := checkCall(key, lim); err != nil {
		return Reservation{}, err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	v, err := counterReserveScript.Run(ctx, r.rdb, r.keys(key),
		lim.Max, lim.Window.Milliseconds(), lim.LockFor.Milliseconds()).Int64Slice()
	if err != nil {
		return Reservation{}, unavailable("reserve", err)
	}
	if len(v) != 3 {
		return Reservation{}, unavailable("reserve", fmt.Errorf("unexpected reply %v", v))
	}
	switch v[0] {
	case 0:
		return Reservation{Allowed: true, N: int(v[1])}, nil
	case 1:
		return Reservation{RetryAfter: atLeastMs(v[2]), N: int(v[1])}, nil
	default:
		return Reservation{Locked: true, RetryAfter: atLeastMs(v[2])}, nil
	}
}

// Fail implements CounterStore.
func (r *RedisCounters) Fail(ctx context.Context, key string, lim Limit) (int, bool, error) {
	if err := checkCall(key, lim); err != nil {
		return 0, false, err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	v, err := counterFailScript.Run(ctx, r.rdb, r.keys(key),
		lim.Max, lim.Window.Milliseconds(), lim.LockFor.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, unavailable("fail", err)
	}
	if len(v) != 2 {
		return 0, false, unavailable("fail", fmt.Errorf("unexpected reply %v", v))
	}
	return int(v[0]), v[1] == 1, nil
}

// Succeed implements CounterStore.
func (r *RedisCounters) Succeed(ctx context.Context, key string) (time.Duration, error) {
	if err := checkCounterKey(key); err != nil {
		return 0, err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	lt, err := counterSucceedScript.Run(ctx, r.rdb, r.keys(key)).Int64()
	if err != nil {
		return 0, unavailable("succeed", err)
	}
	if lt == -2 {
		return 0, nil
	}
	return atLeastMs(lt), nil
}

// Release implements CounterStore.
func (r *RedisCounters) Release(ctx context.Context, key string) error {
	if err := checkCounterKey(key); err != nil {
		return err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	if err := counterReleaseScript.Run(ctx, r.rdb, r.keys(key)).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}

// Unlock implements CounterStore.
func (r *RedisCounters) Unlock(ctx context.Context, key string) (bool, error) {
	if err := checkCounterKey(key); err != nil {
		return false, err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	n, err := counterUnlockScript.Run(ctx, r.rdb, r.keys(key)).Int64()
	if err != nil {
		return false, unavailable("unlock", err)
	}
	return n == 1, nil
}

// Status implements CounterStore.
func (r *RedisCounters) Status(ctx context.Context, key string) (CounterStatus, error) {
	if err := checkCounterKey(key); err != nil {
		return CounterStatus{}, err
	}
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	v, err := counterStatusScript.Run(ctx, r.rdb, r.keys(key)).Int64Slice()
	if err != nil {
		return CounterStatus{}, unavailable("status", err)
	}
	if len(v) != 4 {
		return CounterStatus{}, unavailable("status", fmt.Errorf("unexpected reply %v", v))
	}
	st := CounterStatus{Failures: int(v[0]), InFlight: int(v[1])}
	if v[2] != -2 {
		st.WindowLeft = atLeastMs(v[2])
	}
	if v[3] != -2 {
		st.LockedFor = atLeastMs(v[3])
	}
	return st, nil
}

// Ping implements CounterStore.
func (r *RedisCounters) Ping(ctx context.Context) error {
	ctx, cancel := r.bounded(ctx)
	defer cancel()
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close implements CounterStore. The client belongs to the caller.
func (r *RedisCounters) Close(context.Context) error { return nil }
