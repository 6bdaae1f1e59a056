package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// SpoolFullPolicy says what happens to an event that can be written neither
// to the database nor to the spool.
type SpoolFullPolicy string

const (
	// FailClosed refuses: Record and Enqueue return ErrSpoolFull, so the
	// caller refuses the request, until the spool has room again. Events
	// accepted before the spool filled are kept in memory and retried.
	FailClosed SpoolFullPolicy = "fail_closed"
	// FailOpen drops the event, counts it in Stats.Dropped and logs it;
	// Record returns nil so the caller keeps serving.
	FailOpen SpoolFullPolicy = "fail_open"
)

// WriterConfig configures a Writer. Zero fields take the defaults shown.
type WriterConfig struct {
	// SpoolDir is the spool's directory (created 0700 if missing). Required.
	// One Writer per directory: a second one is refused with ErrSpoolLocked.
	SpoolDir string
	// SpoolMaxBytes caps the spool's segment files (default 256 MiB).
	SpoolMaxBytes int64
	// SpoolSegmentBytes is the size at which a new segment file is started
	// (default 4 MiB, at most SpoolMaxBytes/4). A segment is deleted once
	// wholly delivered.
	SpoolSegmentBytes int64
	// OnSpoolFull is FailClosed (the default) or FailOpen.
	OnSpoolFull SpoolFullPolicy
	// QueueSize bounds the events Enqueue holds in memory (default 8192);
	// when it is reached Enqueue waits for the flusher (backpressure).
	// Record's events do not count: each has a caller waiting on it.
	QueueSize int
	// BatchSize is the most events written in one statement or spool
	// append (default 256).
	BatchSize int
	// FlushInterval is how long Enqueue'd events may wait for a batch to
	// fill (default 100ms). A Record'd event never waits for it.
	FlushInterval time.Duration
	// InsertTimeout bounds each database insert (default 2s): a database
	// slower than that counts as down, and the events go to the spool.
	InsertTimeout time.Duration
	// RetryInterval is the first wait before the spool's drainer retries a
	// failed database (default 500ms); it doubles up to RetryMax (default 15s).
	RetryInterval time.Duration
	RetryMax      time.Duration
	// Now stamps events that have no CreatedAt (default time.Now).
	Now func() time.Time
	// Logger (default: none).
	Logger *zap.Logger
}

func (c WriterConfig) withDefaults() (WriterConfig, error) {
	if c.SpoolDir == "" {
		return c, errors.New("audit: WriterConfig.SpoolDir is required")
	}
	if c.SpoolMaxBytes <= 0 {
		c.SpoolMaxBytes = 256 << 20
	}
	if c.SpoolSegmentBytes <= 0 {
		c.SpoolSegmentBytes = 4 << 20
	}
	c.SpoolSegmentBytes = max(min(c.SpoolSegmentBytes, c.SpoolMaxBytes/4), 1)
	switch c.OnSpoolFull {
	case "":
		c.OnSpoolFull = FailClosed
	case FailClosed, FailOpen:
	default:
		return c, fmt.Errorf("audit: WriterConfig.OnSpoolFull %q: want %q or %q", c.OnSpoolFull, FailClosed, FailOpen)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 8192
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.InsertTimeout <= 0 {
		c.InsertTimeout = 2 * time.Second
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 500 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Second
	}
	c.RetryMax = max(c.RetryMax, c.RetryInterval)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c, nil
}

// Writer is the one way events reach audit_logs. See the package comment
// for its guarantees. It is safe for concurrent use.
type Writer struct {
	store Inserter
	cfg   WriterConfig
	log   *zap.Logger
	spool *spool

	mu       sync.Mutex
	space    *sync.Cond // Enqueue waits on it for queue space
	queue    []item     // FIFO of events not yet taken by the flusher
	async    int        // Enqueue'd events in queue (bounded by QueueSize)
	sync     int        // Record'd events in queue
	closed   bool       // Close was called: nothing more is accepted
	refusing bool       // FailClosed and nowhere to put events: refuse new ones

	wake        chan struct{} // the flusher: new events
	drainWake   chan struct{} // the drainer: spool appended
	spaceFreed  chan struct{} // the flusher: the drainer freed spool space
	stop        chan struct{} // closed by Close: flush everything and exit
	flusherDone chan struct{}
	drainCtx    context.Context // cancelled to stop the drainer
	drainCancel context.CancelFunc
	drainerDone chan struct{}

	written, spooled, drained, dropped, refused, rejected, dbErrors atomic.Uint64
	// spoolErr is the last failure to write to the spool (ErrSpoolFull or
	// ErrSpoolFailed), cleared when the spool takes events again or the
	// drainer frees space. Healthy reports it.
	spoolErr atomic.Pointer[error]
	// dbDown is set while the database is failing, so that only changes
	// of state are logged, not every retry.
	dbDown atomic.Bool
}

// item is a queued event; done is nil for Enqueue and receives the
// outcome for Record.
type item struct {
	ev   Event
	done chan error
}

// NewWriter opens (or creates) the spool in cfg.SpoolDir and starts the
// flusher and the drainer. Events left in the spool by an earlier run are
// delivered in the background, before any new event.
func NewWriter(store Inserter, cfg WriterConfig) (*Writer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, cfg.SpoolSegmentBytes)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		store:       store,
		cfg:         cfg,
		log:         cfg.Logger,
		spool:       sp,
		wake:        make(chan struct{}, 1),
		drainWake:   make(chan struct{}, 1),
		spaceFreed:  make(chan struct{}, 1),
		stop:        make(chan struct{}),
		flusherDone: make(chan struct{}),
		drainerDone: make(chan struct{}),
	}
	w.space = sync.NewCond(&w.mu)
	w.drainCtx, w.drainCancel = context.WithCancel(context.Background())
	if st := sp.state(); st.events > 0 || st.corrupt > 0 {
		w.log.Info("audit: spool holds events from an earlier run; delivering them",
			zap.String("dir", cfg.SpoolDir), zap.Int("events", st.events),
			zap.Int64("bytes", st.bytes), zap.Int64("corrupt_bytes", st.corrupt))
	}
	go w.runFlusher()
	go w.runDrainer()
	return w, nil
}

// Record stores ev and returns once it is durable: committed to the
// database, or appended to the spool and fsynced. Use it for every event
// whose action answers a client, before answering, so a reply the client saw
// always has its row.
//
// It returns ErrInvalidEvent for an event that cannot be stored, ErrClosed
// after Close, and ErrSpoolFull under FailClosed when the event can go
// nowhere (the caller must then refuse the request). If ctx ends first,
// Record returns ctx.Err(), and the event may still be written afterwards.
func (w *Writer) Record(ctx context.Context, ev Event) error {
	ev, err := prepare(ev, w.cfg.Now)
	if err != nil {
		return err
	}
	it := item{ev: ev, done: make(chan error, 1)}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.refuseLocked() {
		w.mu.Unlock()
		w.refused.Add(1)
		return w.refusal()
	}
	w.queue = append(w.queue, it)
	w.sync++
	w.mu.Unlock()
	signal(w.wake)
	select {
	case err := <-it.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues ev for the next batch and returns without waiting for it
// to be written; for high-volume events (proxy.access). Events are written
// in the order they were queued (Record's included). When the queue is full
// Enqueue waits until the flusher takes a batch.
//
// It returns ErrInvalidEvent, ErrClosed, or ErrSpoolFull under FailClosed
// while events can go nowhere (the caller refuses the request).
func (w *Writer) Enqueue(ev Event) error {
	ev, err := prepare(ev, w.cfg.Now)
	if err != nil {
		return err
	}
	w.mu.Lock()
	for {
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if w.refuseLocked() {
			w.mu.Unlock()
			w.refused.Add(1)
			return w.refusal()
		}
		if w.async < w.cfg.QueueSize {
			break
		}
		w.space.Wait()
	}
	w.queue = append(w.queue, item{ev: ev})
	w.async++
	n := len(w.queue)
	w.mu.Unlock()
	// The flusher needs waking only to start its FlushInterval timer or
	// when a batch is full; otherwise it is already on its way.
	if n == 1 || n == w.cfg.BatchSize {
		signal(w.wake)
	}
	return nil
}

// refuseLocked reports whether new events are refused (FailClosed only):
// while accepted events are held for want of space, and while the spool is
// known to be full and not yet drained. It does not refuse when the spool
// is empty, so that the next event tries the database again: nothing else
// would notice the database coming back.
func (w *Writer) refuseLocked() bool {
	if w.cfg.OnSpoolFull != FailClosed {
		return false
	}
	return w.refusing || (w.spoolErr.Load() != nil && !w.spool.empty())
}

func (w *Writer) refusal() error {
	if p := w.spoolErr.Load(); p != nil {
		return *p
	}
	return ErrSpoolFull
}

// signal wakes the goroutine waiting on c, if any; signals coalesce.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Stats are the Writer's counters since NewWriter, for metrics.
type Stats struct {
	Written  uint64 // events the database confirmed, directly or from the spool
	Spooled  uint64 // events appended to the spool
	Drained  uint64 // spooled events since delivered (counted in Written too)
	Dropped  uint64 // events lost: FailOpen with the spool full, or Close unable to place them
	Refused  uint64 // Record and Enqueue calls answered ErrSpoolFull (FailClosed)
	Rejected uint64 // events the database refused, set aside in the spool's rejected.ndjson
	DBErrors uint64 // failed database inserts (each followed by spooling or a retry)

	QueueDepth    int // events waiting in memory
	QueueCapacity int // WriterConfig.QueueSize

	SpoolEvents       int   // events in the spool, not yet delivered
	SpoolBytes        int64 // size of the spool's segment files
	SpoolMaxBytes     int64 // WriterConfig.SpoolMaxBytes
	SpoolCorruptBytes int64 // spool bytes found unreadable (see the package comment)
	SpoolFull         bool  // the last spool write failed; Healthy reports an error
}

// Stats returns the current counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	depth := len(w.queue)
	w.mu.Unlock()
	st := w.spool.state()
	return Stats{
		Written:           w.written.Load(),
		Spooled:           w.spooled.Load(),
		Drained:           w.drained.Load(),
		Dropped:           w.dropped.Load(),
		Refused:           w.refused.Load(),
		Rejected:          w.rejected.Load(),
		DBErrors:          w.dbErrors.Load(),
		QueueDepth:        depth,
		QueueCapacity:     w.cfg.QueueSize,
		SpoolEvents:       st.events,
		SpoolBytes:        st.bytes,
		SpoolMaxBytes:     w.cfg.SpoolMaxBytes,
		SpoolCorruptBytes: st.corrupt,
		SpoolFull:         w.spoolErr.Load() != nil,
	}
}

// Healthy returns nil while events have somewhere to go: the database, or
// failing that the spool. It returns an error wrapping ErrSpoolFull (or
// ErrSpoolFailed) while the spool cannot take events, and ErrClosed after
// Close. A database outage alone is healthy: that is what the spool is for.
// Wire it into /-/readyz.
func (w *Writer) Healthy() error {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if p := w.spoolErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops accepting events, writes every queued event to the database
// or the spool, stops the drainer and releases the spool. Call it on
// SIGTERM. Events left in the spool are delivered by the next NewWriter on
// the same directory. It returns ctx.Err() if ctx ends first (queued events
// are then lost when the process exits), and an error wrapping
// ErrSpoolFull if events had to be dropped because they could go nowhere.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.closed = true
	w.space.Broadcast() // waiting Enqueues return ErrClosed
	w.mu.Unlock()
	dropped := w.dropped.Load()
	close(w.stop)
	select {
	case <-w.flusherDone:
	case <-ctx.Done():
		return fmt.Errorf("audit: close: queue not flushed: %w", ctx.Err())
	}
	w.drainCancel()
	select {
	case <-w.drainerDone:
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
	if err := w.spool.close(); err != nil {
		return fmt.Errorf("audit: close spool: %w", err)
	}
	if lost := w.dropped.Load() - dropped; lost > 0 {
		return fmt.Errorf("audit: close: %d events dropped: %w", lost, w.refusal())
	}
	return nil
}

// runFlusher takes batches off the queue and writes them: to the database
// while the spool is empty, to the spool otherwise (behind what it holds,
// so order is kept) or when the database fails.
func (w *Writer) runFlusher() {
	defer close(w.flusherDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch, ok := w.take(timer)
		if !ok {
			return
		}
		err := w.persist(batch)
		if err == nil {
			ack(batch, nil)
			continue
		}
		w.spoolFailed(err, len(batch))
		if w.cfg.OnSpoolFull == FailOpen {
			w.dropped.Add(uint64(len(batch)))
			ack(batch, nil)
			continue
		}
		w.holdAndRetry(batch, err, timer)
	}
}

// take waits for a batch: BatchSize events, or fewer once a Record'd event
// is waiting, FlushInterval has passed since the first one arrived, or
// Close was called. ok is false when closing and the queue is empty.
func (w *Writer) take(timer *time.Timer) (batch []item, ok bool) {
	var deadline time.Time
	for {
		w.mu.Lock()
		n := len(w.queue)
		stopping := w.closed
		if n > 0 && (n >= w.cfg.BatchSize || w.sync > 0 || stopping ||
			(!deadline.IsZero() && !time.Now().Before(deadline))) {
			batch = w.takeLocked(min(n, w.cfg.BatchSize))
			w.mu.Unlock()
			return batch, true
		}
		w.mu.Unlock()
		if n == 0 && stopping {
			return nil, false
		}
		if n > 0 && deadline.IsZero() {
			deadline = time.Now().Add(w.cfg.FlushInterval)
			timer.Reset(w.cfg.FlushInterval)
		}
		select {
		case <-w.wake:
		case <-timer.C:
		case <-w.stop:
			// Closing: loop once more to take whatever is queued.
		}
	}
}

// takeLocked removes the first n items from the queue.
func (w *Writer) takeLocked(n int) []item {
	batch := make([]item, n)
	copy(batch, w.queue)
	for _, it := range batch {
		if it.done != nil {
			w.sync--
		} else {
			w.async--
		}
	}
	// Shift down rather than reslice, so the backing array is reused
	// instead of growing forever.
	rest := copy(w.queue, w.queue[n:])
	clear(w.queue[rest:])
	w.queue = w.queue[:rest]
	w.space.Broadcast()
	return batch
}

func ack(batch []item, err error) {
	for _, it := range batch {
		if it.done != nil {
			it.done <- err
		}
	}
}

// persist writes a batch to the database if the spool is empty, and to the
// spool if it is not or the database fails. It returns an error only when
// the spool refused the batch too.
func (w *Writer) persist(batch []item) error {
	events := make([]Event, len(batch))
	for i := range batch {
		events[i] = batch[i].ev
	}
	if w.spool.empty() {
		err := w.insert(context.Background(), events)
		if err == nil {
			w.written.Add(uint64(len(events)))
			if w.spoolErr.Swap(nil) != nil {
				w.log.Info("audit: events have somewhere to go again")
			}
			return nil
		}
		w.dbFailed(err, "write")
	}
	buf := make([]byte, 0, 512*len(events))
	for i := range events {
		p, err := encodeEvent(&events[i])
		if err != nil {
			// Unreachable for a prepared event; kept so a bug shows.
			return fmt.Errorf("%w: encode: %w", ErrSpoolFailed, err)
		}
		buf = appendRecord(buf, p)
	}
	if err := w.spool.append(buf, len(events)); err != nil {
		return err
	}
	w.spooled.Add(uint64(len(events)))
	if w.spoolErr.Swap(nil) != nil {
		w.log.Info("audit: spool takes events again")
	}
	signal(w.drainWake)
	return nil
}

// insert calls the store with the per-call timeout.
func (w *Writer) insert(ctx context.Context, events []Event) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
	defer cancel()
	err := w.store.Insert(ctx, events)
	if err == nil && w.dbDown.Swap(false) {
		w.log.Info("audit: database writes succeed again")
	}
	return err
}

func (w *Writer) dbFailed(err error, op string) {
	w.dbErrors.Add(1)
	if !w.dbDown.Swap(true) {
		w.log.Warn("audit: database write failed; events go to the spool until it is back",
			zap.String("op", op), zap.Error(err))
	}
}

// spoolFailed records that the spool refused n events, and says so loudly.
func (w *Writer) spoolFailed(err error, n int) {
	if w.spoolErr.Swap(&err) == nil {
		w.log.Error("audit: events can be written neither to the database nor to the spool",
			zap.String("policy", string(w.cfg.OnSpoolFull)), zap.Int("events", n), zap.Error(err))
	}
}

// holdAndRetry is FailClosed with nowhere to put batch: the Record'd
// events in it and in the queue are refused (their callers refuse their
// requests, so no row must appear for them later), new events are refused
// until the held ones are placed, and the held Enqueue'd events (already
// accepted) are retried until they fit. On Close, one last try; what still
// does not fit is dropped and counted.
func (w *Writer) holdAndRetry(batch []item, err error, timer *time.Timer) {
	w.mu.Lock()
	w.refusing = true
	w.space.Broadcast()
	// Refuse the Record'd events still queued; keep the Enqueue'd ones.
	kept := w.queue[:0]
	var refused []item
	for _, it := range w.queue {
		if it.done != nil {
			refused = append(refused, it)
			w.sync--
		} else {
			kept = append(kept, it)
		}
	}
	clear(w.queue[len(kept):])
	w.queue = kept
	w.mu.Unlock()

	var held []item
	for _, it := range batch {
		if it.done != nil {
			refused = append(refused, it)
		} else {
			held = append(held, it)
		}
	}
	w.refused.Add(uint64(len(refused))) // before the callers see it
	for _, it := range refused {
		it.done <- err
	}

	wait := w.cfg.RetryInterval
	for len(held) > 0 {
		timer.Reset(wait)
		closing := false
		select {
		case <-timer.C:
		case <-w.spaceFreed:
			timer.Stop()
		case <-w.stop:
			timer.Stop()
			closing = true
		}
		err = w.persist(held)
		if err == nil {
			break
		}
		if closing {
			w.dropped.Add(uint64(len(held)))
			w.log.Error("audit: closing with events that fit nowhere; dropped",
				zap.Int("events", len(held)), zap.Error(err))
			break
		}
		wait = min(2*wait, w.cfg.RetryMax)
	}
	w.mu.Lock()
	w.refusing = false
	w.space.Broadcast()
	w.mu.Unlock()
}

// runDrainer delivers the spool to the database, oldest first, retrying
// with backoff while the database fails.
func (w *Writer) runDrainer() {
	defer close(w.drainerDone)
	ctx := w.drainCtx
	wait := w.cfg.RetryInterval
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		if w.spool.empty() {
			select {
			case <-w.drainWake:
				continue
			case <-ctx.Done():
				return
			}
		}
		err := w.drainOnce(ctx)
		if err == nil {
			wait = w.cfg.RetryInterval
			continue
		}
		if ctx.Err() != nil {
			return
		}
		retry.Reset(wait)
		select {
		case <-retry.C:
		case <-ctx.Done():
			retry.Stop()
			return
		}
		wait = min(2*wait, w.cfg.RetryMax)
	}
}

// drainOnce delivers one batch from the head of the spool.
func (w *Writer) drainOnce(ctx context.Context) error {
	payloads, pos, err := w.spool.read(w.cfg.BatchSize)
	if err != nil {
		w.log.Error("audit: reading the spool failed", zap.Error(err))
		return err
	}
	events := make([]Event, 0, len(payloads))
	var bad [][]byte
	for _, p := range payloads {
		ev, err := decodeEvent(p)
		if err != nil {
			bad = append(bad, p)
			continue
		}
		events = append(events, ev)
	}
	if err := w.deliver(ctx, events); err != nil {
		return err
	}
	if len(bad) > 0 {
		if err := w.setAside(bad, errors.New("spool record does not decode as an event")); err != nil {
			return err
		}
	}
	w.spool.commit(pos)
	if w.spoolErr.Swap(nil) != nil {
		w.log.Info("audit: spool has room again")
	}
	signal(w.spaceFreed)
	return nil
}

// deliver inserts spooled events. Rows the database rejects are found by
// halving the batch and set aside in the dead-letter file, so one bad row
// never blocks the spool. If a later half fails for another reason the
// whole batch is retried: re-inserted rows are no-ops, and a rejected row
// may be set aside twice (the dead-letter file is at-least-once).
func (w *Writer) deliver(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	err := w.insert(ctx, events)
	if err == nil {
		w.written.Add(uint64(len(events)))
		w.drained.Add(uint64(len(events)))
		return nil
	}
	if !errors.Is(err, ErrRejected) && !errors.Is(err, ErrInvalidEvent) {
		w.dbFailed(err, "drain")
		return err
	}
	if len(events) == 1 {
		p, encErr := encodeEvent(&events[0])
		if encErr != nil {
			p = []byte(events[0].ID)
		}
		return w.setAside([][]byte{p}, err)
	}
	half := len(events) / 2
	if err := w.deliver(ctx, events[:half]); err != nil {
		return err
	}
	return w.deliver(ctx, events[half:])
}

// setAside appends payloads to the dead-letter file and counts them.
func (w *Writer) setAside(payloads [][]byte, cause error) error {
	if err := w.spool.reject(payloads); err != nil {
		w.log.Error("audit: writing rejected events to the dead-letter file failed", zap.Error(err))
		return err
	}
	w.rejected.Add(uint64(len(payloads)))
	w.log.Error("audit: events set aside in the spool's "+rejectedName+" (the database cannot take them)",
		zap.Int("events", len(payloads)), zap.Error(cause))
	return nil
}
