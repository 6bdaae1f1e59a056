//go:build !unix

package proxy

import "syscall"

// idleConnClean cannot peek here; a dead pooled connection is retried.
func idleConnClean(syscall.RawConn) bool { return true }
