//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// canPeek says the direct transport can check pooled connections here.
const canPeek = true

// livenessPeek tells whether a pooled connection is still open with
// nothing unread: one non-blocking MSG_PEEK, no deadline to arm. Its
// callback and buffer are made once per connection, so a check allocates
// nothing.
type livenessPeek struct {
	raw   syscall.RawConn
	fn    func(fd uintptr) bool
	buf   [1]byte
	clean bool
}

// newLivenessPeek returns nil for a connection that cannot be peeked at.
func newLivenessPeek(c net.Conn) *livenessPeek {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &livenessPeek{raw: raw}
	p.fn = p.peek
	return p
}

func (p *livenessPeek) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// Would block: open, with nothing to read. Data, EOF (0 bytes, no
	// error) or any error: not to be reused.
	p.clean = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
	return true
}

// idleConnClean reports whether the connection may carry a request. One
// that cannot be peeked at is taken as clean (a dead one is then retried).
func (p *livenessPeek) idleConnClean() bool {
	if p == nil {
		return true
	}
	p.clean = false
	return p.raw.Read(p.fn) == nil && p.clean
}
