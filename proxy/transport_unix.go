//go:build unix

package proxy

import "syscall"

// idleConnClean reports whether a pooled connection is still open with
// nothing unread: one non-blocking peek, no deadline to arm. A connection
// that cannot be peeked at is taken as clean (a dead one is then retried).
func idleConnClean(raw syscall.RawConn) bool {
	if raw == nil {
		return true
	}
	var buf [1]byte
	clean := false
	err := raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		clean = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true
	})
	return err == nil && clean
}
