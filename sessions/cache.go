package sessions

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// CachedStore is a Store that answers Touch from a short-lived copy of the
// sessions this instance validated a moment ago, so most requests cost no
// Redis round trip at all.
//
// Revocation stays immediate on every instance: each change to a session
// (Delete, DeleteByID, DeleteByUser, UpdateUser) is broadcast over Redis
// pub/sub, and the changing call returns only after every subscribed
// instance, this one included, has acknowledged dropping its copies. An
// instance whose subscription is down serves nothing from its cache and
// empties it when the subscription comes back (it may have missed
// messages). What remains is the case no broadcast can cover: an instance
// cut off from Redis that has not noticed yet (it pings every second).
// There a copy outlives a revocation by at most the cache TTL, which is why
// the TTL is short.
//
// A copy also never outlives the session's own expiry, nor the moment its
// idle expiry is due to slide (LastSeenAt plus the touch throttle), so the
// store behind still sees the writes that keep an active session alive.
type CachedStore struct {
	Store // the store behind, for what the cache does not change

	ttlMs, throttleMs int64
	maxEntries        int
	bus               *invalidationBus
	sweeper           *sweeper

	mu      sync.RWMutex
	gen     uint64 // bumped by every drop: a fill that raced one is discarded
	entries map[string]cacheEntry
	byUser  map[string]map[string]struct{}

	hits, misses, resets atomic.Uint64
}

type cacheEntry struct {
	s       Session
	untilMs int64
}

// CacheStats are the cache's counters since it started.
type CacheStats struct {
	Hits, Misses uint64
	// Broadcasts counts invalidations sent; AckTimeouts those for which
	// some instance did not acknowledge in time.
	Broadcasts, AckTimeouts uint64
	// Subscribed reports whether invalidations from other instances are
	// arriving (while false the cache is bypassed).
	Subscribed bool
	// Resets counts the times the cache was emptied because the
	// subscription went down or came (back) up.
	Resets  uint64
	Entries int
}

// Cache defaults.
const (
	DefaultCacheMaxEntries = 100_000
	// DefaultAckTimeout bounds how long a revocation waits for the other
	// instances' acknowledgements; an instance that stays silent serves a
	// revoked session at most the cache TTL.
	DefaultAckTimeout = 500 * time.Millisecond
	// cacheHealthInterval is how often an idle subscription is pinged;
	// three silent intervals and the cache stops serving.
	cacheHealthInterval = time.Second
)

// NewCachedRedisStore puts a cache of ttl in front of r, with
// invalidations broadcast through rdb (the client r uses) on a channel
// under the store's key prefix. throttle must be the store's touch
// throttle. Close stops the subscription; it does not close rdb.
func NewCachedRedisStore(r *RedisStore, rdb redis.UniversalClient, ttl time.Duration) (*CachedStore, error) {
	if ttl <= 0 {
		return nil, errors.New("sessions: cache ttl must be positive")
	}
	c := &CachedStore{
		Store:      r,
		ttlMs:      ttl.Milliseconds(),
		throttleMs: r.throttleMs,
		maxEntries: DefaultCacheMaxEntries,
		entries:    make(map[string]cacheEntry),
		byUser:     make(map[string]map[string]struct{}),
	}
	c.bus = startInvalidationBus(rdb, r.st.keyPrefix+"inval", DefaultAckTimeout, c.drop, c.dropAll)
	c.sweeper = startSweeper(max(ttl, time.Second), c.sweep)
	return c, nil
}

// Touch implements Store: a live copy if there is one, else the store's
// Touch, whose answer is kept for the next request.
func (c *CachedStore) Touch(ctx context.Context, key string, now time.Time) (Session, error) {
	nowMs := ms(now)
	subscribed := c.bus.subscribed.Load()
	c.mu.RLock()
	e, ok := c.entries[key]
	gen := c.gen
	c.mu.RUnlock()
	if subscribed && ok && nowMs < e.untilMs {
		c.hits.Add(1)
		return e.s.Clone(), nil
	}
	c.misses.Add(1)
	s, err := c.Store.Touch(ctx, key, now)
	if err != nil || !subscribed {
		return s, err
	}
	until := min(nowMs+c.ttlMs, ms(s.ExpiresAt()), ms(s.LastSeenAt)+c.throttleMs)
	if until <= nowMs {
		return s, nil
	}
	c.mu.Lock()
	if c.gen == gen && len(c.entries) < c.maxEntries {
		c.entries[key] = cacheEntry{s: s.Clone(), untilMs: until}
		keys := c.byUser[s.UserID]
		if keys == nil {
			keys = make(map[string]struct{}, 1)
			c.byUser[s.UserID] = keys
		}
		keys[key] = struct{}{}
	}
	c.mu.Unlock()
	return s, nil
}

// Delete implements Store, and revokes every instance's copy.
func (c *CachedStore) Delete(ctx context.Context, key string) error {
	return c.revoke(ctx, c.Store.Delete(ctx, key), "k:"+key)
}

// DeleteByID implements Store, and revokes the user's copies everywhere.
func (c *CachedStore) DeleteByID(ctx context.Context, userID, id string) error {
	err := c.Store.DeleteByID(ctx, userID, id)
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return c.revoke(ctx, err, "u:"+userID)
}

// DeleteByUser implements Store, and revokes the user's copies everywhere.
func (c *CachedStore) DeleteByUser(ctx context.Context, userID, exceptKey string) (int, error) {
	n, err := c.Store.DeleteByUser(ctx, userID, exceptKey)
	return n, c.revoke(ctx, err, "u:"+userID)
}

// UpdateUser implements Store, and drops the user's stale copies everywhere.
func (c *CachedStore) UpdateUser(ctx context.Context, userID string, fn func(*Session)) error {
	return c.revoke(ctx, c.Store.UpdateUser(ctx, userID, fn), "u:"+userID)
}

// revoke drops what target names here and on every other instance, after
// the store's change (whose error, if any, wins). It drops even when the
// change failed: a copy of a session in doubt is not worth keeping.
func (c *CachedStore) revoke(ctx context.Context, err error, target string) error {
	c.drop(target)
	if berr := c.bus.broadcast(ctx, target); err == nil {
		err = berr
	}
	return err
}

// drop forgets the copies target names: "k:"+key or "u:"+userID.
func (c *CachedStore) drop(target string) {
	kind, v, _ := strings.Cut(target, ":")
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch kind {
	case "k":
		if e, ok := c.entries[v]; ok {
			c.removeLocked(v, e.s.UserID)
		}
	case "u":
		for key := range c.byUser[v] {
			c.removeLocked(key, v)
		}
	}
}

// dropAll forgets every copy (the subscription broke or came back).
func (c *CachedStore) dropAll() {
	c.resets.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
	clear(c.byUser)
}

func (c *CachedStore) removeLocked(key, userID string) {
	delete(c.entries, key)
	if keys := c.byUser[userID]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(c.byUser, userID)
		}
	}
}

// sweep removes copies past their time, so the map does not fill up.
func (c *CachedStore) sweep() {
	nowMs := ms(time.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, e := range c.entries {
		if nowMs >= e.untilMs {
			c.removeLocked(key, e.s.UserID)
		}
	}
}

// Stats returns the cache's counters.
func (c *CachedStore) Stats() CacheStats {
	c.mu.RLock()
	n := len(c.entries)
	c.mu.RUnlock()
	return CacheStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(),
		Broadcasts: c.bus.broadcasts.Load(), AckTimeouts: c.bus.ackTimeouts.Load(),
		Subscribed: c.bus.subscribed.Load(), Resets: c.resets.Load(), Entries: n,
	}
}

// Close stops the subscription and the sweeper, then closes the store
// behind.
func (c *CachedStore) Close(ctx context.Context) error {
	return errors.Join(c.bus.close(ctx), c.sweeper.close(ctx), c.Store.Close(ctx))
}
