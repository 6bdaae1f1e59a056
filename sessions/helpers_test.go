package sessions_test

import (
	"context"
	"testing"
	"time"

	"github.com/portero/portero/sessions/sessionstest"
)

// start is a fake-clock start for store-specific tests.
func start() *sessionstest.FakeClock {
	return sessionstest.NewFakeClock(time.Now().UTC().Truncate(time.Millisecond))
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
