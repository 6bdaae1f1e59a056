package authn

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// An own-endpoint request whose deadline (server.own_timeout) runs out
// while it waits for a hashing worker or a store is answered 503 with
// Retry-After, like any other "busy", never 500.
func TestDeadlineExceededIsServiceUnavailable(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("authn: waiting for a hashing worker: %w", context.DeadlineExceeded)
	if ae := toAPIError(err); ae.Status != http.StatusServiceUnavailable || ae.RetryAfter == 0 {
		t.Errorf("deadline exceeded answers %d (Retry-After %d), want 503 with Retry-After", ae.Status, ae.RetryAfter)
	}
}
