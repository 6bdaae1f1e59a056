package audit

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spool is a directory of append-only segment files holding events that
// could not be written to the database yet, oldest first. See the package
// comment for the format and the fsync policy.
//
// One goroutine appends (the Writer's flusher) and one consumes (the
// drainer); mu guards the bookkeeping, and is held across the append's
// write and fsync so the drainer never sees a record before it is durable.
type spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	lock     *os.File // holds the directory's flock

	mu      sync.Mutex
	segs    []*segment // oldest first; only the last one may be active
	active  *os.File   // append handle of the last segment, nil when sealed
	readOff int64      // offset of the next unconsumed record in segs[0]
	readF   *os.File   // read handle of segs[0]
	br      *bufio.Reader
	total   int64 // bytes of all segment files, for the size cap
	pending int   // records not yet consumed
	nextSeq uint64
	corrupt int64 // bytes found unreadable since open
	rejectF *os.File
}

type segment struct {
	seq     uint64
	path    string
	size    int64 // end of the last good record
	onDisk  int64 // the file's size; more than size when its tail is bad
	records int
}

const (
	segmentSuffix = ".seg"
	corruptSuffix = ".corrupt"
	lockName      = "LOCK"
	rejectedName  = "rejected.ndjson"
	// segmentMagic starts every segment; the last byte is the format version.
	segmentMagic = "PAUDSPL\x01"
	headerLen    = int64(len(segmentMagic))
	// recordHeader is a record's big-endian length and CRC-32C.
	recordHeader = 8
	// maxRecordLen bounds a record; an event is far smaller (maxDetailsLen
	// plus a few short strings), so a larger length means a corrupt file.
	maxRecordLen = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openSpool opens (creating it if needed) the spool in dir, takes its lock
// and scans the segments left by an earlier run. Every segment found is
// sealed: new records go to a new segment, so a torn tail left by a crash is
// never followed by good records.
func openSpool(dir string, maxBytes, segBytes int64) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, lock: lock, nextSeq: 1}
	if err := s.scan(); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return s, nil
}

func (s *spool) scan() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("audit: spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segmentSuffix) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, segmentSuffix), 10, 64)
		if err != nil || seq == 0 {
			continue // not ours
		}
		seg, err := scanSegment(filepath.Join(s.dir, name), seq)
		if err != nil {
			return err
		}
		s.nextSeq = max(s.nextSeq, seq+1)
		if seg.onDisk > headerLen {
			s.corrupt += seg.onDisk - max(seg.size, headerLen)
		}
		if seg.records == 0 {
			s.retire(seg)
			continue
		}
		s.segs = append(s.segs, seg)
		s.total += seg.onDisk
		s.pending += seg.records
	}
	slices.SortFunc(s.segs, func(a, b *segment) int { return cmpUint(a.seq, b.seq) })
	s.readOff = headerLen
	return nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// scanSegment reads a segment to find its last good record.
func scanSegment(path string, seq uint64) (*segment, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: spool: %w", err)
	}
	seg := &segment{seq: seq, path: path, onDisk: int64(len(data))}
	if len(data) < int(headerLen) || string(data[:headerLen]) != segmentMagic {
		return seg, nil // a crash while creating it, or not ours: no records
	}
	off := headerLen
	for {
		_, n, err := decodeRecord(data[off:])
		if err != nil {
			break
		}
		off += int64(n)
		seg.records++
	}
	seg.size = off
	return seg, nil
}

// errBadRecord means the bytes at an offset are not a whole, intact record:
// the end of the good part of a segment.
var errBadRecord = errors.New("audit: spool: bad record")

// decodeRecord returns the payload of the record at the start of b and the
// record's length.
func decodeRecord(b []byte) ([]byte, int, error) {
	if len(b) < recordHeader {
		return nil, 0, errBadRecord
	}
	n := binary.BigEndian.Uint32(b[0:4])
	if n == 0 || n > maxRecordLen || int(n) > len(b)-recordHeader {
		return nil, 0, errBadRecord
	}
	payload := b[recordHeader : recordHeader+int(n)]
	crc := crc32.Update(crc32.Checksum(b[0:4], castagnoli), castagnoli, payload)
	if crc != binary.BigEndian.Uint32(b[4:8]) {
		return nil, 0, errBadRecord
	}
	return payload, recordHeader + int(n), nil
}

// appendRecord appends the record for payload to b.
func appendRecord(b, payload []byte) []byte {
	var h [recordHeader]byte
	binary.BigEndian.PutUint32(h[0:4], uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum(h[0:4], castagnoli), castagnoli, payload)
	binary.BigEndian.PutUint32(h[4:8], crc)
	return append(append(b, h[:]...), payload...)
}

// spoolEvent is an event as the spool stores it (JSON).
type spoolEvent struct {
	ID         string          `json:"id"`
	UserID     string          `json:"user_id,omitempty"`
	Action     string          `json:"action"`
	Resource   string          `json:"resource,omitempty"`
	ResourceID string          `json:"resource_id,omitempty"`
	IP         string          `json:"ip,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Details    json.RawMessage `json:"details,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
}

func encodeEvent(ev *Event) ([]byte, error) {
	return json.Marshal(spoolEvent{
		ID: ev.ID, UserID: ev.UserID, Action: ev.Action, Resource: ev.Resource,
		ResourceID: ev.ResourceID, IP: ev.IP, UserAgent: ev.UserAgent,
		Details: ev.details, CreatedAt: ev.CreatedAt,
	})
}

func decodeEvent(b []byte) (Event, error) {
	var se spoolEvent
	if err := json.Unmarshal(b, &se); err != nil {
		return Event{}, err
	}
	ev := Event{
		ID: se.ID, UserID: se.UserID, Action: se.Action, Resource: se.Resource,
		ResourceID: se.ResourceID, IP: se.IP, UserAgent: se.UserAgent, CreatedAt: se.CreatedAt,
	}
	if len(se.Details) > 0 && string(se.Details) != "null" {
		if err := json.Unmarshal(se.Details, &ev.Details); err != nil {
			return Event{}, err
		}
		ev.details = se.Details
	}
	// Through prepare again, so that a record written by an older or buggy
	// build still meets what the stores require, or is set aside.
	return prepare(ev, nil)
}

// append writes the records (each the output of appendRecord, concatenated
// in buf) and fsyncs them. n is the number of records. It fails with
// ErrSpoolFull when they would push the spool past its cap, and with
// ErrSpoolFailed when the disk fails; either way nothing was added.
func (s *spool) append(buf []byte, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := int64(len(buf))
	var last *segment
	if len(s.segs) > 0 {
		last = s.segs[len(s.segs)-1]
	}
	// A new segment when there is none to append to, or when this batch
	// would take the current one past segBytes (a batch larger than
	// segBytes gets a segment of its own).
	rotate := s.active == nil || (last.size > headerLen && last.size+need > s.segBytes)
	if rotate {
		need += headerLen
	}
	if s.total+need > s.maxBytes {
		return fmt.Errorf("%w: %d of %d bytes used, %d more needed", ErrSpoolFull, s.total, s.maxBytes, need)
	}
	if rotate {
		if err := s.rotateLocked(); err != nil {
			return err
		}
		last = s.segs[len(s.segs)-1]
	}
	if _, err := s.active.Write(buf); err != nil {
		s.sealAfterFailure(last)
		return fmt.Errorf("%w: %w", ErrSpoolFailed, err)
	}
	// fsync: the records are acknowledged only once they would survive
	// a power loss.
	if err := s.active.Sync(); err != nil {
		s.sealAfterFailure(last)
		return fmt.Errorf("%w: fsync: %w", ErrSpoolFailed, err)
	}
	last.size += int64(len(buf))
	last.onDisk = last.size
	last.records += n
	s.total += int64(len(buf))
	s.pending += n
	return nil
}

// rotateLocked seals the active segment and starts a new one.
func (s *spool) rotateLocked() error {
	if s.active != nil {
		_ = s.active.Close()
		s.active = nil
	}
	seq := s.nextSeq
	path := filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, segmentSuffix))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpoolFailed, err)
	}
	s.nextSeq++
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("%w: new segment: %w", ErrSpoolFailed, err)
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		return fail(err)
	}
	// The file's directory entry must be durable before any record in it
	// is acknowledged; the records' own fsync does not cover it.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		return fail(err)
	}
	s.active = f
	s.segs = append(s.segs, &segment{seq: seq, path: path, size: headerLen, onDisk: headerLen})
	s.total += headerLen
	return nil
}

// sealAfterFailure gives up on the active segment after a failed write or
// fsync: the file may now end in a partial record, and after a failed fsync
// the kernel may have dropped the dirty pages, so nothing more is appended
// to it. Its good records before the failure stay and are drained (a
// segment left with none is dropped when it reaches the head).
func (s *spool) sealAfterFailure(seg *segment) {
	_ = s.active.Truncate(seg.size)
	_ = s.active.Close()
	s.active = nil
	if fi, err := os.Stat(seg.path); err == nil {
		s.total += fi.Size() - seg.onDisk
		seg.onDisk = fi.Size()
	}
}

// spoolPos is where a read ended: segment seq and offset, and how many
// records lie between the previous position and it.
type spoolPos struct {
	seq uint64
	off int64
	n   int
}

// read returns the payloads of up to max records from the head of the
// spool, and the position to commit once they are delivered. A damaged
// record ends its segment: the bytes from it on are counted as corrupt and
// skipped (see retire).
func (s *spool) read(max int) ([][]byte, spoolPos, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 {
		return nil, spoolPos{}, nil
	}
	seg := s.segs[0]
	pos := spoolPos{seq: seg.seq, off: s.readOff}
	if s.readF == nil {
		f, err := os.Open(seg.path)
		if err != nil {
			return nil, pos, fmt.Errorf("audit: spool: %w", err)
		}
		s.readF = f
	}
	if s.br == nil {
		s.br = bufio.NewReaderSize(nil, 64<<10)
	}
	s.br.Reset(io.NewSectionReader(s.readF, s.readOff, seg.size-s.readOff))
	var out [][]byte
	for pos.n < max && pos.off < seg.size {
		payload, err := s.nextRecord()
		if errors.Is(err, errBadRecord) {
			// Intact when written or scanned, damaged since (the disk):
			// the segment ends here and nothing more is appended to it.
			s.corrupt += seg.size - pos.off
			seg.size = pos.off
			if len(s.segs) == 1 && s.active != nil {
				_ = s.active.Close()
				s.active = nil
			}
			break
		}
		if err != nil {
			return nil, pos, fmt.Errorf("audit: spool: %w", err)
		}
		out = append(out, payload)
		pos.off += recordHeader + int64(len(payload))
		pos.n++
	}
	return out, pos, nil
}

// nextRecord reads one record from s.br and returns a copy of its payload.
func (s *spool) nextRecord() ([]byte, error) {
	var h [recordHeader]byte
	if _, err := io.ReadFull(s.br, h[:]); err != nil {
		return nil, readErr(err)
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n == 0 || n > maxRecordLen {
		return nil, errBadRecord
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(s.br, payload); err != nil {
		return nil, readErr(err)
	}
	crc := crc32.Update(crc32.Checksum(h[0:4], castagnoli), castagnoli, payload)
	if crc != binary.BigEndian.Uint32(h[4:8]) {
		return nil, errBadRecord
	}
	return payload, nil
}

// readErr: the section ends at the segment's last good record, so hitting
// its end inside a record means the bytes changed.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errBadRecord
	}
	return err
}

// commit marks everything before pos as delivered and removes segments
// that are wholly delivered.
func (s *spool) commit(pos spoolPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.segs) == 0 || s.segs[0].seq != pos.seq || pos.off < s.readOff ||
		(pos.off == s.readOff && pos.n > 0) { // already committed
		return
	}
	s.readOff = pos.off
	s.pending -= pos.n
	s.dropConsumedLocked()
}

// dropConsumedLocked removes head segments that hold nothing unconsumed.
// The active segment is removed too, once consumed: the next append starts a
// new one, and an empty spool has no segment files at all.
func (s *spool) dropConsumedLocked() {
	for len(s.segs) > 0 && s.readOff >= s.segs[0].size {
		seg := s.segs[0]
		if s.readF != nil {
			_ = s.readF.Close()
			s.readF = nil
		}
		if len(s.segs) == 1 && s.active != nil {
			_ = s.active.Close()
			s.active = nil
		}
		s.segs = s.segs[1:]
		s.total -= seg.onDisk
		s.readOff = headerLen
		s.retire(seg)
	}
}

// retire removes a delivered segment, or keeps it renamed to *.corrupt
// when part of it could not be read, for an operator to look at.
func (s *spool) retire(seg *segment) {
	if seg.onDisk > seg.size && seg.onDisk > headerLen {
		_ = os.Rename(seg.path, strings.TrimSuffix(seg.path, segmentSuffix)+corruptSuffix)
		return
	}
	_ = os.Remove(seg.path)
}

// reject appends payloads to the dead-letter file rejected.ndjson, one
// JSON event a line, fsynced. These are events the database refused: they
// are kept for an operator rather than retried forever ahead of every
// event behind them.
func (s *spool) reject(payloads [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectF == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, rejectedName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("audit: spool: %w", err)
		}
		s.rejectF = f
	}
	var b bytes.Buffer
	for _, p := range payloads {
		// A payload that is not JSON (a damaged record) is written as a
		// JSON string so every line stays parseable.
		if !json.Valid(p) {
			q, _ := json.Marshal(string(p))
			p = q
		}
		b.Write(p)
		b.WriteByte('\n')
	}
	if _, err := s.rejectF.Write(b.Bytes()); err != nil {
		return fmt.Errorf("audit: spool: %w", err)
	}
	return s.rejectF.Sync()
}

// spoolState is a snapshot for Stats.
type spoolState struct {
	bytes, corrupt int64
	events         int
}

func (s *spool) state() spoolState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return spoolState{bytes: s.total, corrupt: s.corrupt, events: s.pending}
}

func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segs) == 0
}

// close closes the files and releases the lock. Records stay on disk for
// the next openSpool.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range []*os.File{s.active, s.readF, s.rejectF} {
		if f != nil {
			_ = f.Close()
		}
	}
	s.active, s.readF, s.rejectF = nil, nil, nil
	return unlockDir(s.lock)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}
