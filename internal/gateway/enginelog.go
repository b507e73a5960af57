package gateway

import (
	"time"

	glog "gvisor.dev/gvisor/pkg/log"
)

// QuietEngineLogs stops gVisor, the netstack of userspace mode, from
// writing its own log lines (such as "Martian packet dropped ...") to
// standard error. Those lines bypass the gateway's logger and can describe
// client traffic, so a gateway process should call QuietEngineLogs once,
// from main, before it builds any network.
//
// The change is process-wide and permanent: gVisor's logger is a global of
// that package. QuietEngineLogs is not safe to call concurrently with gVisor
// logging, which is why it belongs at the start of main. Library code,
// including this package, never calls it.
func QuietEngineLogs() {
	// gVisor packages capture the default logger in package variables at
	// init (rate-limited loggers), so it is silenced in place as well as
	// replaced: level first (atomic), then its emitter.
	l := glog.Log()
	l.SetLevel(glog.Warning)
	l.Emitter = discardEmitter{}
	glog.SetTarget(discardEmitter{})
	glog.SetLevel(glog.Warning)
}

// discardEmitter is a gVisor log emitter that writes nothing.
type discardEmitter struct{}

// Emit discards the log line.
func (discardEmitter) Emit(int, glog.Level, time.Time, string, ...any) {}
