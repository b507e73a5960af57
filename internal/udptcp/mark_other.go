//go:build !linux

package udptcp

import "syscall"

// markControl returns nil: marks are a Linux feature.
func markControl(uint32) func(network, address string, c syscall.RawConn) error { return nil }
