package sessions

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// inlineSweepEvery limits how often a Create on a full MemoryStore scans for
// dead sessions: the scan holds the lock every request needs, so a login
// flood against a full store must not turn into a scan per login.
const inlineSweepEvery = time.Second

// MemoryStore keeps sessions in process: the embedded single-machine default
// (sessions.url: memory://). It behaves like RedisStore — same expiry rule,
// same contract suite — but its sessions die with the process and are not
// shared between instances. Memory is bounded by WithMaxSessions; a
// background sweeper, started by NewMemoryStore and stopped by Close, drops
// dead sessions.
type MemoryStore struct {
	st                 settings
	idle, absolute     time.Duration
	idleMs, throttleMs int64

	mu           sync.Mutex
	sessions     map[string]*Session            // by key; Key and IdleExpiresAt kept current
	byUser       map[string]map[string]struct{} // user id → keys
	lastInlineMs int64                          // clock of the last sweep done by Create

	sweeper *sweeper
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns a store with the given idle and absolute timeouts
// and starts its sweeper; call Close to stop it. Options: WithClock,
// WithTouchThrottle, WithMaxSessions, WithSweepInterval.
func NewMemoryStore(idle, absolute time.Duration, opts ...Option) (*MemoryStore, error) {
	st, err := newSettings(idle, absolute, opts)
	if err != nil {
		return nil, err
	}
	m := &MemoryStore{
		st:         st,
		idle:       idle,
		absolute:   absolute,
		idleMs:     idle.Milliseconds(),
		throttleMs: st.touchThrottle.Milliseconds(),
		sessions:   make(map[string]*Session),
		byUser:     make(map[string]map[string]struct{}),
	}
	m.sweeper = startSweeper(m.st.sweepInterval, func() {
		m.mu.Lock()
		m.sweepLocked(ms(m.st.now()))
		m.mu.Unlock()
	})
	return m, nil
}

// sweepLocked removes every session dead at nowMs. m.mu must be held.
func (m *MemoryStore) sweepLocked(nowMs int64) {
	for key, s := range m.sessions {
		if !m.aliveAt(s, nowMs) {
			m.removeLocked(key, s)
		}
	}
}

func (m *MemoryStore) aliveAt(s *Session, nowMs int64) bool {
	return alive(nowMs, ms(s.LastSeenAt), ms(s.AbsoluteExpiresAt), m.idleMs)
}

// removeLocked deletes a session and its index entry. m.mu must be held.
func (m *MemoryStore) removeLocked(key string, s *Session) {
	delete(m.sessions, key)
	if keys := m.byUser[s.UserID]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(m.byUser, s.UserID)
		}
	}
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, tok Token, s Session) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	now := m.st.now()
	s, err := prepare(tok, s, now, m.idle, m.absolute)
	if err != nil {
		return Session{}, err
	}
	nowMs := ms(now)

	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.sessions[s.Key]; ok {
		return Session{}, ErrExists
	}
	if len(m.sessions) >= m.st.maxSessions {
		if nowMs-m.lastInlineMs >= inlineSweepEvery.Milliseconds() || nowMs < m.lastInlineMs {
			m.lastInlineMs = nowMs
			m.sweepLocked(nowMs)
		}
		if len(m.sessions) >= m.st.maxSessions {
			return Session{}, ErrStoreFull
		}
	}
	stored := s.Clone()
	m.sessions[s.Key] = &stored
	keys := m.byUser[s.UserID]
	if keys == nil {
		keys = make(map[string]struct{})
		m.byUser[s.UserID] = keys
	}
	keys[s.Key] = struct{}{}
	return s, nil
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, key string) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok || !m.aliveAt(s, nowMs) {
		return Session{}, ErrNotFound
	}
	return s.Clone(), nil
}

// Touch implements Store.
func (m *MemoryStore) Touch(ctx context.Context, key string, now time.Time) (Session, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, err
	}
	nowMs := ms(now)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[key]
	if !ok || !m.aliveAt(s, nowMs) {
		return Session{}, ErrNotFound
	}
	if ls := ms(s.LastSeenAt); nowMs > ls && nowMs-ls >= m.throttleMs {
		s.LastSeenAt = fromMs(nowMs)
		s.IdleExpiresAt = fromMs(nowMs + m.idleMs)
	}
	return s.Clone(), nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sessions[key]; ok {
		m.removeLocked(key, s)
	}
	return nil
}

// ListByUser implements Store.
func (m *MemoryStore) ListByUser(ctx context.Context, userID string) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	out := make([]Session, 0, len(m.byUser[userID]))
	for key := range m.byUser[userID] {
		if s := m.sessions[key]; m.aliveAt(s, nowMs) {
			out = append(out, s.Clone())
		}
	}
	m.mu.Unlock()
	sortSessions(out)
	return out, nil
}

// sortSessions orders oldest first; the id breaks ties so the order is stable
// across stores.
func sortSessions(ss []Session) {
	slices.SortFunc(ss, func(a, b Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// DeleteByID implements Store.
func (m *MemoryStore) DeleteByID(ctx context.Context, userID, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	for key := range m.byUser[userID] {
		if s := m.sessions[key]; s.ID == id && m.aliveAt(s, nowMs) {
			m.removeLocked(key, s)
			return nil
		}
	}
	return ErrNotFound
}

// DeleteByUser implements Store.
func (m *MemoryStore) DeleteByUser(ctx context.Context, userID, exceptKey string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for key := range m.byUser[userID] {
		if key == exceptKey {
			continue
		}
		s := m.sessions[key]
		if m.aliveAt(s, nowMs) {
			n++
		}
		m.removeLocked(key, s)
	}
	return n, nil
}

// UpdateUser implements Store. fn runs without the store's lock held, so it
// may be slow or call the store; a session deleted meanwhile stays deleted.
func (m *MemoryStore) UpdateUser(ctx context.Context, userID string, fn func(*Session)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	var todo []Session
	for key := range m.byUser[userID] {
		if s := m.sessions[key]; m.aliveAt(s, nowMs) {
			todo = append(todo, s.Clone())
		}
	}
	m.mu.Unlock()

	for _, old := range todo {
		upd := applyUpdate(old, fn)
		m.mu.Lock()
		if s, ok := m.sessions[old.Key]; ok {
			s.Email, s.Roles, s.Permissions, s.LegacyID = upd.Email, upd.Roles, upd.Permissions, upd.LegacyID
		}
		m.mu.Unlock()
	}
	return nil
}

// Ping implements Store; an in-process store is always reachable.
func (m *MemoryStore) Ping(ctx context.Context) error { return ctx.Err() }

// Len returns how many sessions the store holds, dead ones not yet swept
// included (a gauge for metrics, and what WithMaxSessions bounds).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}

// Count implements Store: the sessions alive now, whatever the sweeper has
// not removed yet.
func (m *MemoryStore) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nowMs := ms(m.st.now())
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, s := range m.sessions {
		if m.aliveAt(s, nowMs) {
			n++
		}
	}
	return n, nil
}

// Close stops the sweeper and waits for it, or for ctx. The store keeps
// answering afterwards (nothing sweeps it any more). Close is idempotent.
func (m *MemoryStore) Close(ctx context.Context) error {
	return m.sweeper.close(ctx)
}
