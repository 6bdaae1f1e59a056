// Package audit owns Portero's audit trail: the Event type and its action
// names, the audit_logs store (PostgreSQL and SQLite behind one Store
// interface, with the contract suite in audit/audittest), the Writer every
// package sends its events through, and background retention.
//
// # Writing events
//
// There is one Writer per process. It has two entry points:
//
//   - Record(ctx, ev) is synchronous and durable. It returns nil only once
//     the event is committed to the database or appended to the local spool
//     and fsynced. Call it before answering a client for every action that
//     answers one (logins, lockouts, password changes, revocations, …): a
//     reply the client saw then always has its row.
//   - Enqueue(ev) is for high-volume events (proxy.access). It puts the
//     event on a bounded in-memory queue and returns; the Writer flushes
//     batches of BatchSize events, or whatever is queued after
//     FlushInterval, in one statement.
//
// Both feed one FIFO, so one Writer stores events in the order its callers
// handed them over, Record's and Enqueue's interleaved. A Record therefore
// waits for the Enqueue'd events ahead of it (at most QueueSize of them).
// Across instances of a fleet there is no global order; queries sort by
// created_at, then by row id.
//
// Every event has a UUID (event_id, a time-ordered UUIDv7 assigned when the
// caller leaves it empty), and stores skip an event_id they already hold.
// Anything the Writer delivers at least once (a retried batch, a spool
// segment re-read after a crash) is therefore stored exactly once.
// Strings from clients are cut to fixed lengths and made valid UTF-8 without
// NUL, and \u0000 in details is replaced, because PostgreSQL would refuse
// such a row, and a refused row is a lost event.
//
// # Outages: the spool
//
// Each database insert has a deadline (InsertTimeout, 2s): a database that
// is down or slower than that counts as down. The batch then goes to the
// spool, a local directory (SpoolDir, capped at SpoolMaxBytes), and so does
// every later batch until the spool is empty again, so nothing overtakes
// what is spooled. A drainer goroutine delivers the spool to the database,
// oldest first, BatchSize events at a time, retrying with backoff
// (RetryInterval doubling to RetryMax). NewWriter scans the spool at start,
// so events spooled before a restart or a crash are delivered before any new
// one.
//
// Format: the directory holds segment files NNNNNNNNNNNNNNNNNNNN.seg (a
// sequence number), each starting with the 8-byte magic "PAUDSPL\x01" and
// followed by records: a 4-byte big-endian length, a 4-byte CRC-32C of the
// length and the payload, and the payload, the event as JSON. A segment is
// written only by appending, rotated at SpoolSegmentBytes and deleted once
// every record in it is in the database. A LOCK file held with flock keeps
// a second process from using the same directory (ErrSpoolLocked).
//
// Fsync policy: each batch is appended with one write and then fsynced;
// only after the fsync are its Record callers answered. A new segment file
// is fsynced, and so is the directory, before any record in it is
// acknowledged. Deletions are not fsynced: a delivered segment that
// reappears after a power loss is delivered again, which is a no-op.
//
// A record that is torn or fails its checksum ends its segment: the bytes
// from it on are counted in Stats.SpoolCorruptBytes and logged, the records
// before it are delivered, and the segment is then kept renamed to
// NNNN.corrupt (not counted against the cap) for an operator to look at
// and delete. Segments found at start are never appended to again, so a torn
// tail is never followed by good records.
//
// A row the database refuses as data (ErrRejected: a constraint or data
// error, not a failure to answer) would block every event behind it if it
// were retried forever. The drainer finds it by halving the batch and sets
// it aside in SpoolDir/rejected.ndjson (one JSON event a line, fsynced,
// at least once), counted in Stats.Rejected.
//
// # A full spool
//
// When a batch can be written neither to the database nor to the spool
// (full, or failing), OnSpoolFull decides:
//
//   - FailClosed (the default): Record returns ErrSpoolFull and the caller
//     must refuse the request; so does Enqueue, and the access-audit
//     middleware refuses requests on audited routes. Events Enqueue had
//     already accepted are held in memory and retried until they fit.
//   - FailOpen: the batch is dropped, counted in Stats.Dropped and logged;
//     Record returns nil and requests keep being served without their rows.
//
// Either way Healthy returns an error wrapping ErrSpoolFull until the
// spool has room again; wire it into /-/readyz. A database outage alone is
// healthy: the spool is there for it.
//
// # Shutdown, SIGKILL and power loss
//
// Close (call it on SIGTERM) stops accepting events, writes every queued
// event to the database (or, if the spool is not empty or the database
// fails, to the spool), stops the drainer and releases the spool. Nothing
// queued is lost, unless Close's context ends first or events fit nowhere
// (FailClosed with the spool still full), which Close reports as an error.
//
// A SIGKILL (or a crash, or the OOM killer) costs:
//
//   - the Enqueue'd events still in memory: the queue (up to QueueSize) and
//     the batch being written: typically what was queued in the last
//     FlushInterval, at most QueueSize+BatchSize events, all of which
//     Enqueue had returned nil for. Since batches are written in order,
//     what survives is a prefix of what was queued.
//   - nothing that Record returned nil for: it is in the database or
//     fsynced in the spool. A Record in progress may or may not be stored;
//     its caller never answered the client.
//   - nothing written to the spool, fsynced or not: the kernel still has it.
//
// A power loss costs the same, plus spool records written but not yet
// fsynced (whose Record callers had not been answered); a torn last record
// is detected and skipped as described above. Fsynced records survive.
// Rows the database acknowledged survive as far as the database promises:
// PostgreSQL with synchronous_commit=on (the default) does; SQLite as
// package storage opens it (WAL, synchronous=NORMAL) may lose its last
// commits on a power loss (not on a process crash), Record's included.
//
// Delivered spool records are re-read after a crash when their segment was
// not yet deleted; they are skipped by event_id, unless retention has
// pruned them meanwhile (only for events spooled longer than the retention
// period).
//
// # Metrics
//
// Stats returns counters for the integrator to export: events written
// (directly or from the spool), spooled, drained, dropped, refused,
// rejected, database errors, queue depth and capacity, and the spool's
// events, bytes, cap and corrupt bytes.
//
// # Queries and retention
//
// Store.Query serves GET /audit: filters on user_id, action prefix
// (segment-wise: "auth.login" matches auth.login.failed, not
// auth.loginx), since, until and ip, newest first, with an opaque keyset
// cursor on (created_at, id). Store.Prune deletes old rows in small
// batches; Retention runs it periodically.
package audit
