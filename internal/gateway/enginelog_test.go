package gateway_test

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
	"time"

	glog "gvisor.dev/gvisor/pkg/log"

	"github.com/nitronet/nitronet/internal/gateway"
)

// engineLogChild, set in the environment, makes TestQuietEngineLogs act as
// the child process it starts: "quiet" calls QuietEngineLogs first,
// "loud" does not.
const engineLogChild = "NITRONET_TEST_ENGINE_LOG_CHILD"

// TestQuietEngineLogs runs gVisor logging in a child process, because
// QuietEngineLogs changes the whole process, and checks the child's
// standard error.
func TestQuietEngineLogs(t *testing.T) {
	if mode := os.Getenv(engineLogChild); mode != "" {
		engineLogChildMain(mode == "quiet")
		return
	}
	tests := []struct {
		mode      string
		wantQuiet bool
	}{
		{"loud", false}, // proves the check can see gVisor's output
		{"quiet", true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestQuietEngineLogs$", "-test.count=1")
			cmd.Env = append(os.Environ(), engineLogChild+"="+tt.mode)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
			}
			if quiet := stderr.Len() == 0; quiet != tt.wantQuiet {
				t.Errorf("child stderr quiet: got %v, want %v; stderr:\n%s", quiet, tt.wantQuiet, stderr.String())
			}
		})
	}
}

// engineLogChildMain logs through gVisor the ways its packages do: through
// a rate-limited logger made before QuietEngineLogs (as gVisor's package
// variables are, at init) and through the package functions.
func engineLogChildMain(quiet bool) {
	early := glog.BasicRateLimitedLogger(time.Nanosecond)
	if quiet {
		gateway.QuietEngineLogs()
	}
	early.Warningf("engine log test: early logger, warning")
	glog.Warningf("engine log test: global logger, warning")
	glog.Infof("engine log test: global logger, info")
	glog.Log().Warningf("engine log test: current logger, warning")
}
