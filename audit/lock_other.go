//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package audit

import (
	"fmt"
	"os"
)

// lockDir only creates path where flock is not available: the spool
// directory must then not be shared by two processes.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: spool lock: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) error { return f.Close() }
