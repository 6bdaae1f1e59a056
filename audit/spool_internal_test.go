package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func openTestSpool(t testing.TB, dir string, maxBytes, segBytes int64) *spool {
	t.Helper()
	s, err := openSpool(dir, maxBytes, segBytes)
	if err != nil {
		t.Fatalf("openSpool: %v", err)
	}
	t.Cleanup(func() { _ = s.close() })
	return s
}

func nowForTest() time.Time { return time.Date(2025, 5, 6, 7, 8, 9, 10, time.UTC) }

func payload(i int) []byte { return fmt.Appendf(nil, `{"n":%d,"pad":"%0*d"}`, i, i%50, 0) }

func appendPayloads(t testing.TB, s *spool, from, to int) {
	t.Helper()
	var buf []byte
	for i := from; i < to; i++ {
		buf = appendRecord(buf, payload(i))
	}
	if err := s.append(buf, to-from); err != nil {
		t.Fatalf("append %d..%d: %v", from, to, err)
	}
}

// drainAll reads and commits everything, chunk records at a time.
func drainAll(t testing.TB, s *spool, chunk int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; !s.empty(); i++ {
		if i > 100000 {
			t.Fatal("spool never empties")
		}
		ps, pos, err := s.read(chunk)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, ps...)
		s.commit(pos)
	}
	return out
}

func segFiles(t testing.TB, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func wantPayloads(t testing.TB, got [][]byte, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("%d records, want %d", len(got), to-from)
	}
	for k, p := range got {
		if !bytes.Equal(p, payload(from+k)) {
			t.Fatalf("record %d = %s, want %s", k, p, payload(from+k))
		}
	}
}

func TestSpoolAppendReadCommit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestSpool(t, dir, 1<<20, 512)
	if !s.empty() {
		t.Fatal("new spool not empty")
	}
	for i := 0; i < 100; i += 5 {
		appendPayloads(t, s, i, i+5)
	}
	if n := len(segFiles(t, dir, "*.seg")); n < 3 {
		t.Errorf("%d segments, want several (segBytes 512)", n)
	}
	if st := s.state(); st.events != 100 || st.bytes == 0 {
		t.Errorf("state = %+v", st)
	}
	// Interleave reads and appends, as the drainer and flusher do.
	got := drainAll(t, s, 7)
	appendPayloads(t, s, 100, 110)
	got = append(got, drainAll(t, s, 3)...)
	wantPayloads(t, got, 0, 110)
	if st := s.state(); st.events != 0 || st.bytes != 0 {
		t.Errorf("drained spool state = %+v", st)
	}
	if m := segFiles(t, dir, "*.seg"); len(m) != 0 {
		t.Errorf("segments left: %v", m)
	}
	// A commit from a stale position changes nothing.
	appendPayloads(t, s, 0, 2)
	_, pos, _ := s.read(1)
	s.commit(pos)
	s.commit(pos)
	if st := s.state(); st.events != 1 {
		t.Errorf("after a repeated commit: %+v", st)
	}
}

func TestSpoolReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestSpool(t, dir, 1<<20, 300)
	appendPayloads(t, s, 0, 20)
	ps, pos, _ := s.read(4)
	wantPayloads(t, ps, 0, 4)
	s.commit(pos)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	// Reopened: consumed records of a segment still on disk come again
	// (delivery is at least once; event ids make it exactly once), and
	// new records follow in a new segment.
	s2 := openTestSpool(t, dir, 1<<20, 300)
	appendPayloads(t, s2, 20, 25)
	got := drainAll(t, s2, 6)
	if len(got) < 21 {
		t.Fatalf("%d records after reopening", len(got))
	}
	wantPayloads(t, got[len(got)-25+4:], 4, 25)
}

func TestSpoolCap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestSpool(t, dir, 2048, 512)
	n := 0
	var err error
	for ; n < 1000; n++ {
		buf := appendRecord(nil, payload(n))
		if err = s.append(buf, 1); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("append = %v, want ErrSpoolFull", err)
	}
	st := s.state()
	if st.bytes > 2048 || st.events != n {
		t.Errorf("full spool state = %+v (%d appended)", st, n)
	}
	// The refused append added nothing; draining makes room.
	wantPayloads(t, drainAll(t, s, 1000), 0, n)
	appendPayloads(t, s, n, n+1)
	wantPayloads(t, drainAll(t, s, 1), n, n+1)
}

func TestSpoolDamage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestSpool(t, dir, 1<<20, 1<<20)
	appendPayloads(t, s, 0, 10)
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir, "*.seg")
	if len(segs) != 1 {
		t.Fatalf("segments: %v", segs)
	}
	// A torn tail, as a crash in the middle of an append leaves it: half a
	// record header and some payload.
	f, err := os.OpenFile(segs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendRecord(nil, payload(10))
	if _, err := f.Write(torn[:len(torn)-3]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	// A segment whose creation was cut short, and one that is not ours.
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000007.seg"), []byte("PAU"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000008.seg"), []byte("something else entirely"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := openTestSpool(t, dir, 1<<20, 1<<20)
	if st := s2.state(); st.events != 10 || st.corrupt != int64(len(torn)-3)+int64(len("something else entirely"))-headerLen {
		t.Errorf("state after reopening = %+v", st)
	}
	wantPayloads(t, drainAll(t, s2, 4), 0, 10)
	if m := segFiles(t, dir, "*.seg"); len(m) != 0 {
		t.Errorf("segments left: %v", m)
	}
	if m := segFiles(t, dir, "*.corrupt"); len(m) != 2 {
		t.Errorf("corrupt files kept for inspection: %v, want the torn one and the foreign one", m)
	}

	// Damage after the scan (a flipped byte in the middle): the records
	// before it are delivered, the rest of the segment is skipped.
	appendPayloads(t, s2, 0, 10)
	seg := segFiles(t, dir, "*.seg")[0]
	data, _ := os.ReadFile(seg)
	off := int(headerLen) + 3*len(appendRecord(nil, payload(0)))
	data[off+recordHeader+2] ^= 0xff
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got := drainAll(t, s2, 100)
	if len(got) != 3 {
		t.Errorf("%d records before the damage, want 3", len(got))
	}
	// Appends continue in a new segment.
	appendPayloads(t, s2, 20, 22)
	wantPayloads(t, drainAll(t, s2, 100), 20, 22)
}

func TestSpoolLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_ = openTestSpool(t, dir, 1<<20, 1<<10)
	if _, err := openSpool(dir, 1<<20, 1<<10); !errors.Is(err, ErrSpoolLocked) {
		t.Fatalf("second openSpool = %v, want ErrSpoolLocked", err)
	}
}

func TestSpoolReject(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestSpool(t, dir, 1<<20, 1<<10)
	if err := s.reject([][]byte{[]byte(`{"id":"a"}`), []byte("not json\n")}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, rejectedName))
	if want := "{\"id\":\"a\"}\n\"not json\\n\"\n"; string(data) != want {
		t.Errorf("rejected file = %q, want %q", data, want)
	}
}

func TestSpoolEventRoundTrip(t *testing.T) {
	t.Parallel()
	ev, err := prepare(Event{
		UserID: "0b8f7a4e-0f43-4c8c-9c5e-111111111111", Action: ActionLoginFailed, Resource: "user",
		ResourceID: "7", IP: "::1", UserAgent: "ua", Details: map[string]any{"reason": "locked"},
	}, nowForTest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := encodeEvent(&ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ev.ID || got.UserID != ev.UserID || got.Action != ev.Action || got.Resource != ev.Resource ||
		got.ResourceID != ev.ResourceID || got.IP != ev.IP || got.UserAgent != ev.UserAgent ||
		!got.CreatedAt.Equal(ev.CreatedAt) || got.Details["reason"] != "locked" || !bytes.Equal(got.details, ev.details) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, ev)
	}
	for _, bad := range []string{`{}`, `{"id":"x","action":"a","created_at":"2025-01-01T00:00:00Z"}`, `[`, `{"id":"0b8f7a4e-0f43-4c8c-9c5e-111111111111","action":"a"}`} {
		if _, err := decodeEvent([]byte(bad)); err == nil {
			t.Errorf("decodeEvent(%s) succeeded", bad)
		}
	}
}

// FuzzSpoolSegment feeds arbitrary bytes to the spool as a segment left by
// an earlier run: opening never fails or panics, and exactly the intact
// records at the start are delivered, in order.
func FuzzSpoolSegment(f *testing.F) {
	var good []byte
	for i := range 3 {
		good = appendRecord(good, payload(i))
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Add(append(slices.Clone(good), 0, 0, 0, 1, 0, 0, 0, 0, 'x'))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		seg := append([]byte(segmentMagic), body...)
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		// What a careful independent reader finds intact.
		var want [][]byte
		for b := body; ; {
			p, n, err := decodeRecord(b)
			if err != nil {
				break
			}
			want = append(want, slices.Clone(p))
			b = b[n:]
		}
		s, err := openSpool(dir, 1<<30, 1<<20)
		if err != nil {
			t.Fatalf("openSpool: %v", err)
		}
		defer func() { _ = s.close() }()
		if st := s.state(); st.events != len(want) {
			t.Fatalf("state %+v, want %d events", st, len(want))
		}
		got := drainAll(t, s, 2)
		if len(got) != len(want) {
			t.Fatalf("%d records, want %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
		// The spool stays usable.
		appendPayloads(t, s, 0, 2)
		wantPayloads(t, drainAll(t, s, 5), 0, 2)
	})
}
