//go:build !linux

package tunnel

import (
	"context"
	"errors"
	"log/slog"
)

func upTUN(context.Context, Options, string) (*Tunnel, error) {
	return nil, errors.New("tunnel: TUN mode is only supported on Linux; use userspace mode")
}

// Recover undoes what a crashed TUN-mode Up left behind. TUN mode exists
// only on Linux, so elsewhere there is never anything to undo.
func Recover(stateDir string, log *slog.Logger) error { return nil }
