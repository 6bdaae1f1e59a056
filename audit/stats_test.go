package audit_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/portero/portero/audit"
	"github.com/portero/portero/storage"
	"github.com/portero/portero/storage/storagetest"
)

// statsBase is when the stats tests' window starts.
var statsBase = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// at is an event of action at statsBase+offset, from ip, with reason (if
// any) in its details.
func at(offset time.Duration, action, ip, reason string) audit.Event {
	ev := audit.Event{ID: uuid.NewString(), Action: action, IP: ip, CreatedAt: statsBase.Add(offset)}
	if reason != "" {
		ev.Details = map[string]any{"reason": reason}
	}
	return ev
}

func TestStatsReader(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *storage.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		const (
			ok     = audit.ActionLoginSucceeded
			failed = audit.ActionLoginFailed
			locked = audit.ActionAccountLocked
		)
		hour := time.Hour
		events := []audit.Event{
			// Outside the window [statsBase, statsBase+1h): just before and
			// exactly at its end.
			at(-time.Microsecond, failed, "192.0.2.99", "bad_password"),
			at(hour, failed, "192.0.2.99", "bad_password"),
			at(hour, ok, "192.0.2.1", ""),
			// Inside, at both edges.
			at(0, ok, "192.0.2.1", ""),
			at(hour-time.Microsecond, ok, "192.0.2.1", ""),
			at(time.Minute, ok, "", ""),
			at(time.Minute, failed, "192.0.2.7", "bad_password"),
			at(2*time.Minute, failed, "192.0.2.7", "bad_password"),
			at(3*time.Minute, failed, "192.0.2.7", "locked"),
			at(4*time.Minute, failed, "192.0.2.5", "unknown_user"),
			at(5*time.Minute, failed, "192.0.2.5", "unknown_user"),
			at(6*time.Minute, failed, "192.0.2.3", "throttled_ip"),
			at(7*time.Minute, failed, "", ""), // no address, no reason
			at(8*time.Minute, locked, "192.0.2.7", ""),
			// Actions that only look alike are not counted.
			at(9*time.Minute, "auth.login.succeeded.extra", "192.0.2.7", ""),
			at(9*time.Minute, "auth.login", "192.0.2.7", ""),
			at(9*time.Minute, "AUTH.LOGIN.FAILED", "192.0.2.7", "bad_password"),
		}
		store := audit.NewStore(db)
		if err := store.Insert(ctx, events); err != nil {
			t.Fatal(err)
		}
		r := audit.NewStatsReader(db)
		since, until := statsBase, statsBase.Add(hour)

		counts, err := r.CountActions(ctx, since, until, ok, locked, audit.ActionLogout)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int64{ok: 3, locked: 1, audit.ActionLogout: 0}; !reflect.DeepEqual(counts, want) {
			t.Errorf("CountActions = %v, want %v", counts, want)
		}

		st, err := r.LoginStats(ctx, since, until, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := audit.LoginStats{
			Succeeded: 3, Failed: 7, Lockouts: 1,
			FailuresByReason: map[string]int64{"bad_password": 2, "locked": 1, "unknown_user": 2, "throttled_ip": 1, "unspecified": 1},
			TopFailingIPs:    []audit.IPCount{{IP: "192.0.2.7", Count: 3}, {IP: "192.0.2.5", Count: 2}},
		}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("LoginStats =\n %+v\nwant\n %+v", st, want)
		}

		// Ties are broken by address, the same way on both backends.
		st, err = r.LoginStats(ctx, since, until, 10)
		if err != nil {
			t.Fatal(err)
		}
		wantIPs := []audit.IPCount{{IP: "192.0.2.7", Count: 3}, {IP: "192.0.2.5", Count: 2}, {IP: "192.0.2.3", Count: 1}}
		if !reflect.DeepEqual(st.TopFailingIPs, wantIPs) {
			t.Errorf("TopFailingIPs = %v, want %v", st.TopFailingIPs, wantIPs)
		}

		// A window in another time zone is the same instant.
		cet := time.FixedZone("CET", 3600)
		st2, err := r.LoginStats(ctx, since.In(cet), until.In(cet), 10)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, st2) {
			t.Errorf("the same window in CET: %+v, want %+v", st2, st)
		}

		// An empty window has zeros and empty (not nil) collections.
		empty, err := r.LoginStats(ctx, since.Add(-48*hour), since.Add(-24*hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if empty.Succeeded != 0 || empty.Failed != 0 || empty.Lockouts != 0 || empty.FailuresByReason == nil ||
			len(empty.FailuresByReason) != 0 || empty.TopFailingIPs == nil || len(empty.TopFailingIPs) != 0 {
			t.Errorf("empty window: %+v", empty)
		}
	})
}
