package sessions

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout (prefix P, default DefaultKeyPrefix):
//
//	P+"s:"+key          hash {v: record JSON, ls: last seen ms, ax: absolute expiry ms}
//	                    PEXPIRE = min(ls+idle, ax) - now: Redis drops dead sessions itself
//	P+"u:{"+userID+"}"  sorted set of the user's session keys, scored by ax;
//	                    PEXPIRE = the latest ax - now
//
// A session is looked up by its key alone (the proxy does not know the user
// before it has the session), so a session and its user index cannot share a
// Cluster slot. Every command and script therefore touches exactly one key;
// operations that span both (Create, Delete, DeleteByUser) issue separate
// commands, in an order that errs on the safe side: Create indexes first, so
// a session that exists is always found by DeleteByUser.

// touchScript is Touch without a throttle, in one round trip: read the
// session, check it is alive at ARGV[1], store the new last-seen time and
// slide the TTL, never past ax. Returns {v, ls, ax}, or nil when the session
// is missing or dead. The comparisons are exactly those of alive.
var touchScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'v', 'ls', 'ax')
if not f[1] then return false end
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local ls = tonumber(f[2])
local ax = tonumber(f[3])
if not ls or not ax or now >= ls + idle or now >= ax then return false end
if now > ls then
  redis.call('HSET', KEYS[1], 'ls', ARGV[1])
  local exp = now + idle
  if exp > ax then exp = ax end
  redis.call('PEXPIRE', KEYS[1], exp - now)
  return {f[1], ARGV[1], f[3]}
end
return {f[1], f[2], f[3]}
`)

// slideScript is the write half of a throttled Touch: the client has read
// the session with HMGET and found the last write older than the throttle.
// It rechecks liveness (the session may have been deleted or slid since the
// read), then moves ls forward and slides the TTL. Returns the resulting ls,
// or nil when the session is missing or dead. Doing this in a script rather
// than HSET+PEXPIRE from the client means a Touch racing a Delete can never
// recreate the session as a partial hash.
var slideScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'ls', 'ax')
if not f[1] then return false end
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local ls = tonumber(f[1])
local ax = tonumber(f[2])
if not ls or not ax or now >= ls + idle or now >= ax then return false end
if now > ls then
  redis.call('HSET', KEYS[1], 'ls', ARGV[1])
  local exp = now + idle
  if exp > ax then exp = ax end
  redis.call('PEXPIRE', KEYS[1], exp - now)
  return ARGV[1]
end
return f[1]
`)

// createScript writes a new session unless the key is taken.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ls', ARGV[2], 'ax', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// indexAddScript adds a session key to a user's index, drops members past
// their absolute expiry (so the index of a user who never logs out stays
// small) and keeps the index alive as long as its longest-lived member.
var indexAddScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[2]) - tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// deleteScript deletes a session and returns its record, so the caller can
// find the user index to clean.
var deleteScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if v then redis.call('DEL', KEYS[1]) end
return v
`)

// casScript replaces the record only if it is still ARGV[1]: 1 done,
// 0 changed meanwhile, -1 gone. Only "v" is written, so a concurrent Touch
// (which writes "ls") never conflicts, and a deleted session is never
// resurrected as a partial hash.
var casScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
return 1
`)

// casAttempts bounds UpdateUser's retries per session.
const casAttempts = 5

// RedisStore keeps sessions in Redis (single, Sentinel or Cluster). Any
// number of Portero instances share it.
type RedisStore struct {
	rdb                redis.UniversalClient
	st                 settings
	idle, absolute     time.Duration
	idleMs, throttleMs int64
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a store on rdb, which the caller owns and closes.
// Options: WithClock, WithTouchThrottle, WithKeyPrefix. It does not contact
// Redis; use Ping for readiness.
func NewRedisStore(rdb redis.UniversalClient, idle, absolute time.Duration, opts ...Option) (*RedisStore, error) {
	if rdb == nil {
		return nil, errors.New("sessions: nil redis client")
	}
	st, err := newSettings(idle, absolute, opts)
	if err != nil {
		return nil, err
	}
	return &RedisStore{
		rdb:        rdb,
		st:         st,
		idle:       idle,
		absolute:   absolute,
		idleMs:     idle.Milliseconds(),
		throttleMs: st.touchThrottle.Milliseconds(),
	}, nil
}

func (r *RedisStore) sessKey(key string) string    { return r.st.keyPrefix + "s:" + key }
func (r *RedisStore) userKey(userID string) string { return r.st.keyPrefix + "u:{" + userID + "}" }

// Create implements Store.
func (r *RedisStore) Create(ctx context.Context, tok Token, s Session) (Session, error) {
	now := r.st.now()
	s, err := prepare(tok, s, now, r.idle, r.absolute)
	if err != nil {
		return Session{}, err
	}
	v, err := encodeRecord(&s)
	if err != nil {
		return Session{}, err
	}
	nowMs, axMs := ms(now), ms(s.AbsoluteExpiresAt)
	ttl := min(r.idleMs, axMs-nowMs)

	// Index first: if the second step fails, a dangling index member is
	// harmless (pruned later); an unindexed session would survive
	// DeleteByUser.
	if err := indexAddScript.Run(ctx, r.rdb, []string{r.userKey(s.UserID)}, nowMs, axMs, s.Key).Err(); err != nil {
		return Session{}, fmt.Errorf("sessions: redis index session: %w", err)
	}
	n, err := createScript.Run(ctx, r.rdb, []string{r.sessKey(s.Key)}, v, nowMs, axMs, ttl).Int()
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis create session: %w", err)
	}
	if n == 0 {
		return Session{}, ErrExists
	}
	return s, nil
}

// Get implements Store: one HMGET.
func (r *RedisStore) Get(ctx context.Context, key string) (Session, error) {
	f, err := r.rdb.HMGet(ctx, r.sessKey(key), "v", "ls", "ax").Result()
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis get session: %w", err)
	}
	s, ok, err := r.decodeFields(key, f)
	if err != nil {
		return Session{}, err
	}
	if !ok || !alive(ms(r.st.now()), ms(s.LastSeenAt), ms(s.AbsoluteExpiresAt), r.idleMs) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// decodeFields turns an HMGET v ls ax reply into a session; ok is false when
// the session does not exist.
func (r *RedisStore) decodeFields(key string, f []any) (s Session, ok bool, err error) {
	if len(f) != 3 || f[0] == nil {
		return Session{}, false, nil
	}
	v, _ := f[0].(string)
	ls, _ := f[1].(string)
	ax, _ := f[2].(string)
	s, err = decodeSession(key, v, ls, ax, r.idle)
	if err != nil {
		return Session{}, false, err
	}
	return s, true, nil
}

// Touch implements Store in one round trip in the common case.
//
// Without a throttle every Touch writes, and touchScript reads, checks and
// writes in one EVALSHA (two round trips, HMGET then slideScript, measured
// 60% slower). With a throttle most Touches only read, and a plain HMGET is
// far cheaper for Redis than a script: on Redis 7.0 about 0.8µs of server
// time per HMGET against 10µs per EVALSHA of touchScript that does not write
// (INFO commandstats), and 20% less latency from Go; the write, when due, is
// a second round trip to slideScript. See BenchmarkRequestPath.
func (r *RedisStore) Touch(ctx context.Context, key string, now time.Time) (Session, error) {
	if r.throttleMs == 0 {
		return r.touchScripted(ctx, key, now)
	}
	return r.touchThrottled(ctx, key, now)
}

// touchScripted is Touch as one EVALSHA of touchScript.
func (r *RedisStore) touchScripted(ctx context.Context, key string, now time.Time) (Session, error) {
	f, err := touchScript.Run(ctx, r.rdb, []string{r.sessKey(key)}, ms(now), r.idleMs).Slice()
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis touch session: %w", err)
	}
	s, ok, err := r.decodeFields(key, f)
	if err != nil {
		return Session{}, err
	}
	if !ok {
		return Session{}, ErrNotFound
	}
	return s, nil
}

// touchThrottled is Touch as an HMGET, plus slideScript when the last write
// is at least the throttle old.
func (r *RedisStore) touchThrottled(ctx context.Context, key string, now time.Time) (Session, error) {
	sk := r.sessKey(key)
	f, err := r.rdb.HMGet(ctx, sk, "v", "ls", "ax").Result()
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis touch session: %w", err)
	}
	s, ok, err := r.decodeFields(key, f)
	if err != nil {
		return Session{}, err
	}
	nowMs, lsMs := ms(now), ms(s.LastSeenAt)
	if !ok || !alive(nowMs, lsMs, ms(s.AbsoluteExpiresAt), r.idleMs) {
		return Session{}, ErrNotFound
	}
	if nowMs <= lsMs || nowMs-lsMs < r.throttleMs {
		return s, nil
	}
	ls, err := slideScript.Run(ctx, r.rdb, []string{sk}, nowMs, r.idleMs).Int64()
	if errors.Is(err, redis.Nil) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: redis slide session: %w", err)
	}
	s.LastSeenAt = fromMs(ls)
	s.IdleExpiresAt = fromMs(ls + r.idleMs)
	return s, nil
}

// Delete implements Store.
func (r *RedisStore) Delete(ctx context.Context, key string) error {
	v, err := deleteScript.Run(ctx, r.rdb, []string{r.sessKey(key)}).Text()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sessions: redis delete session: %w", err)
	}
	// The session is gone; cleaning its index entry is housekeeping that
	// later index writes and reads would also do, but do it now while the
	// user id is at hand.
	s, err := decodeSession(key, v, "0", "0", r.idle)
	if err != nil {
		return nil
	}
	if err := r.rdb.ZRem(ctx, r.userKey(s.UserID), key).Err(); err != nil {
		return fmt.Errorf("sessions: redis unindex session: %w", err)
	}
	return nil
}

// indexed is one member of a user's index as read back from Redis.
type indexed struct {
	key  string
	raw  string // the stored record, for UpdateUser's compare-and-set
	s    Session
	live bool // decoded and alive now
	gone bool // the session key no longer exists
}

// userSessions reads a user's index and every session it names: one ZRANGE
// and one pipeline of HMGETs (which a ClusterClient splits per node).
// Members whose session is gone are removed from the index on the way.
func (r *RedisStore) userSessions(ctx context.Context, userID string) ([]indexed, error) {
	uk := r.userKey(userID)
	keys, err := r.rdb.ZRange(ctx, uk, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("sessions: redis read user index: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, r.sessKey(k), "v", "ls", "ax")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("sessions: redis read user sessions: %w", err)
	}
	nowMs := ms(r.st.now())
	out := make([]indexed, len(keys))
	var gone []any
	for i, k := range keys {
		out[i].key = k
		s, ok, err := r.decodeFields(k, cmds[i].Val())
		switch {
		case err != nil:
			// Corrupt: never live, but still deletable by DeleteByUser.
		case !ok || s.UserID != userID:
			// Gone, or (only after a Create refused with ErrExists) another
			// user's session: either way not this user's to list or end.
			out[i].gone = true
			gone = append(gone, k)
		default:
			out[i].s = s
			out[i].raw, _ = cmds[i].Val()[0].(string)
			out[i].live = alive(nowMs, ms(s.LastSeenAt), ms(s.AbsoluteExpiresAt), r.idleMs)
		}
	}
	if len(gone) > 0 {
		if err := r.rdb.ZRem(ctx, uk, gone...).Err(); err != nil {
			return nil, fmt.Errorf("sessions: redis prune user index: %w", err)
		}
	}
	return out, nil
}

// ListByUser implements Store.
func (r *RedisStore) ListByUser(ctx context.Context, userID string) ([]Session, error) {
	all, err := r.userSessions(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(all))
	for _, e := range all {
		if e.live {
			out = append(out, e.s)
		}
	}
	sortSessions(out)
	return out, nil
}

// DeleteByID implements Store.
func (r *RedisStore) DeleteByID(ctx context.Context, userID, id string) error {
	all, err := r.userSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, e := range all {
		if e.live && e.s.ID == id {
			return r.Delete(ctx, e.key)
		}
	}
	return ErrNotFound
}

// DeleteByUser implements Store: it reads the index, deletes every session
// but exceptKey in one pipeline, then removes them from the index.
func (r *RedisStore) DeleteByUser(ctx context.Context, userID, exceptKey string) (int, error) {
	all, err := r.userSessions(ctx, userID)
	if err != nil {
		return 0, err
	}
	pipe := r.rdb.Pipeline()
	var members []any
	var live []*redis.IntCmd
	for _, e := range all {
		if e.key == exceptKey || e.gone {
			continue
		}
		del := pipe.Del(ctx, r.sessKey(e.key))
		if e.live {
			live = append(live, del)
		}
		members = append(members, e.key)
	}
	if len(members) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("sessions: redis delete user sessions: %w", err)
	}
	n := 0
	for _, d := range live {
		n += int(d.Val())
	}
	if err := r.rdb.ZRem(ctx, r.userKey(userID), members...).Err(); err != nil {
		return n, fmt.Errorf("sessions: redis unindex user sessions: %w", err)
	}
	return n, nil
}

// UpdateUser implements Store. Each session is rewritten with a
// compare-and-set on its record, retried when a concurrent UpdateUser got
// there first, so fn always sees the latest identity.
func (r *RedisStore) UpdateUser(ctx context.Context, userID string, fn func(*Session)) error {
	all, err := r.userSessions(ctx, userID)
	if err != nil {
		return err
	}
	for _, e := range all {
		if !e.live {
			continue
		}
		if err := r.updateOne(ctx, e.s, e.raw, fn); err != nil {
			return err
		}
	}
	return nil
}

// updateOne rewrites one session whose stored record was old.
func (r *RedisStore) updateOne(ctx context.Context, cur Session, old string, fn func(*Session)) error {
	sk := r.sessKey(cur.Key)
	for range casAttempts {
		upd := applyUpdate(cur, fn)
		v, err := encodeRecord(&upd)
		if err != nil {
			return err
		}
		n, err := casScript.Run(ctx, r.rdb, []string{sk}, old, v).Int()
		if err != nil {
			return fmt.Errorf("sessions: redis update session: %w", err)
		}
		switch n {
		case 1, -1: // written, or deleted meanwhile (nothing to update)
			return nil
		}
		// Changed meanwhile: reread and apply fn to the new identity.
		f, err := r.rdb.HMGet(ctx, sk, "v", "ls", "ax").Result()
		if err != nil {
			return fmt.Errorf("sessions: redis reread session: %w", err)
		}
		s, ok, err := r.decodeFields(cur.Key, f)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		cur = s
		old, _ = f[0].(string)
	}
	return ErrConflict
}

// Count implements Store. It walks the session keys with SCAN (never KEYS,
// which would stall Redis), on every master of a cluster, so it costs a round
// trip per thousand sessions: fine for a scrape every few seconds. Redis
// expires idle sessions by their TTL, so the count is of live ones.
func (r *RedisStore) Count(ctx context.Context) (int, error) {
	pattern := globEscape(r.st.keyPrefix) + "s:*"
	var total atomic.Int64
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			total.Add(1)
		}
		return iter.Err()
	}
	var err error
	if cluster, ok := r.rdb.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, r.rdb)
	}
	if err != nil {
		return 0, fmt.Errorf("sessions: redis count: %w", err)
	}
	return int(total.Load()), nil
}

// globEscape quotes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Ping implements Store.
func (r *RedisStore) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("sessions: redis ping: %w", err)
	}
	return nil
}

// Close implements Store. The client belongs to the caller, so there is
// nothing to release.
func (r *RedisStore) Close(context.Context) error { return nil }
