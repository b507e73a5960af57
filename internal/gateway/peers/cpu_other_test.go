//go:build !unix

package peers

import "time"

// cpuTime is unknown here.
func cpuTime() time.Duration { return 0 }
