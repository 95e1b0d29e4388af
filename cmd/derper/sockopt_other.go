//go:build !linux

package main

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux-only.
func setUserTimeout(c syscall.RawConn, d time.Duration) error { return nil }
