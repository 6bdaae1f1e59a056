//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package audit

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// spoolLockWait bounds how long lockDir waits for a held lock. A lock can
// outlive its holder briefly: a process started with os/exec at that moment
// carries a copy of the descriptor from fork until its exec, and during a
// restart the old process may still be exiting.
const spoolLockWait = time.Second

// lockDir takes an exclusive flock on path (created if needed), waiting up
// to spoolLockWait for another holder to let go. The kernel releases it when
// the process dies, however it dies, so a crash never leaves the spool
// locked.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: spool lock: %w", err)
	}
	deadline := time.Now().Add(spoolLockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("audit: spool lock: %w", err)
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, fmt.Errorf("%w: %s", ErrSpoolLocked, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func unlockDir(f *os.File) error {
	// Closing the descriptor releases the flock.
	return f.Close()
}
