package audit

import "errors"

var (
	// ErrInvalidEvent means an event cannot be stored as given: no action, an
	// ID or UserID that is not a UUID, details that do not marshal to JSON,
	// or an event larger than a spool record may be. It is returned at once
	// by Record and Enqueue, so nothing unstorable ever reaches the spool.
	ErrInvalidEvent = errors.New("audit: invalid event")

	// ErrSpoolFull means an event could be written neither to the database
	// nor to the spool, because the spool holds its maximum size. Under the
	// fail_closed policy Record and Enqueue return it and the caller refuses
	// the request it was about to answer; Healthy returns it under either
	// policy while the condition lasts, so /-/readyz reports it.
	ErrSpoolFull = errors.New("audit: spool full")

	// ErrSpoolFailed means writing to the spool failed for a reason other
	// than its size cap (a disk error, a failed fsync). The writer treats it
	// like ErrSpoolFull: the configured policy decides.
	ErrSpoolFailed = errors.New("audit: spool write failed")

	// ErrSpoolLocked means another process (or another Writer in this one)
	// holds the spool directory. Two writers appending to and draining the
	// same files would corrupt them, so NewWriter refuses.
	ErrSpoolLocked = errors.New("audit: spool directory is in use by another writer")

	// ErrClosed means the Writer has been closed.
	ErrClosed = errors.New("audit: writer closed")

	// ErrRejected means the database answered but refused the data itself
	// (a constraint or data error), as opposed to not answering. Retrying the
	// same rows cannot succeed, so the writer sets them aside instead of
	// retrying them forever and blocking every event behind them. Stores
	// wrap their driver's error with it.
	ErrRejected = errors.New("audit: database rejected the event")

	// ErrInvalidFilter means a Query filter cannot be used: a user_id that is
	// not a UUID, or a cursor that this package did not issue. Handlers
	// answer 422.
	ErrInvalidFilter = errors.New("audit: invalid filter")
)
