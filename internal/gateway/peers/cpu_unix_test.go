//go:build unix

package peers

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) this process has used.
// Benchmarks report it beside wall time because the machine they run on
// is shared.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
