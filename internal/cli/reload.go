package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// reloadSignals returns a channel that delivers once for each SIGHUP the
// process receives (signals that arrive while one is pending merge), until
// ctx ends; then it stops catching SIGHUP. A gateway reloads its DNS
// blocklists on it.
func reloadSignals(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
