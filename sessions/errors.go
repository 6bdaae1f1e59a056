package sessions

import "errors"

var (
	// ErrNotFound means no live session has that key (or that public id for
	// that user): it never existed, it was deleted, or it expired (idle or
	// absolute). Callers answer 401 (or 404 for revocation by id).
	ErrNotFound = errors.New("sessions: session not found")

	// ErrInvalidToken means a string is not a token this package issued:
	// wrong length or a character outside the base64url alphabet. It says
	// nothing about whether a session exists.
	ErrInvalidToken = errors.New("sessions: invalid token")

	// ErrInvalidSession means Create was given a session it cannot store
	// (no user id).
	ErrInvalidSession = errors.New("sessions: invalid session")

	// ErrExists means Create was given a token whose key is already in use.
	// With 256-bit random tokens this only happens when a caller reuses a
	// token, which is a bug worth surfacing rather than overwriting.
	ErrExists = errors.New("sessions: session already exists")

	// ErrStoreFull means the in-process store holds its maximum number of live
	// sessions. The store refuses new sessions rather than evicting live ones,
	// so a flood of logins cannot sign other users out; callers answer 503.
	ErrStoreFull = errors.New("sessions: store full")

	// ErrConflict means UpdateUser kept losing a race with concurrent writers
	// of the same session and gave up.
	ErrConflict = errors.New("sessions: concurrent update conflict")
)

// Errors of the counter stores (CounterStore).
var (
	// ErrUnavailable means a counter store could not do its work: Redis did
	// not answer, refused the connection or replied with an error. The
	// cause is wrapped. Lockout cannot count without the store, so callers
	// fail closed: login answers 503, never unlimited guessing.
	ErrUnavailable = errors.New("sessions: counter store unavailable")

	// ErrCountersFull means the in-process counter store holds its maximum
	// number of live keys. It refuses new keys rather than evicting live
	// counters or locks; callers treat it like ErrUnavailable (503).
	ErrCountersFull = errors.New("sessions: counter store full")

	// ErrInvalidCounter means a counter key or Limit is unusable: an empty
	// or overlong key, a key with '{' or '}', Max below 1, a window below
	// 1ms. It is a programming error, not something a client can cause.
	ErrInvalidCounter = errors.New("sessions: invalid counter key or limit")
)
