//go:build !unix

package proxy

import "net"

// livenessPeek cannot peek here; a dead pooled connection is retried.
type livenessPeek struct{}

func newLivenessPeek(net.Conn) *livenessPeek { return nil }

func (*livenessPeek) idleConnClean() bool { return true }
