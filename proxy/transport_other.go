//go:build !unix

package proxy

import "net"

// canPeek: without a non-blocking peek, bytes an upstream sends after an
// answer would be read as the next client's response, so the direct
// transport is not used here.
const canPeek = false

type livenessPeek struct{}

func newLivenessPeek(net.Conn) *livenessPeek { return nil }

func (*livenessPeek) idleConnClean() bool { return true }
