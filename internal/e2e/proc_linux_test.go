package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
)

// requiredTools are the external programs the test runs besides ip(8).
var requiredTools = []string{"ip", "wg", "wg-quick", "wireguard-go"}

// requireTools skips t unless every tool in requiredTools is on PATH; with
// NITRONET_REQUIRE_NETNS=1 it fails instead.
func requireTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range requiredTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing tools %v (Debian packages iproute2, wireguard-tools, wireguard-go)", missing)
	if os.Getenv(netns.RequireEnv) == "1" {
		t.Fatalf("%s but %s=1", msg, netns.RequireEnv)
	}
	t.Skip(msg)
}

// buildBinary builds ./cmd/nitronet of this module into dir and returns the
// path of the binary.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: got %q, want the module's go.mod", gomod)
	}
	bin := filepath.Join(dir, "nitronet")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/nitronet")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nitronet: %v\n%s", err, b)
	}
	return bin
}

// proc is a long-running process started inside a namespace, with its
// stdout and stderr captured to files. The process leads its own process
// group, which stop signals as a whole.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr string // paths of the captured streams

	done chan struct{} // closed once the process has been waited for
	err  error         // the Wait result; valid after done is closed
}

// startProc starts args[0] with args[1:] inside ns with exactly the
// environment env, capturing its output to logDir/name.stdout and
// logDir/name.stderr. Failures to start fail t. A cleanup registered on
// owner (t or one of its parents, so the process can outlive t) stops it
// (SIGTERM, then SIGKILL) and waits for it, even when the test fails.
func startProc(t, owner *testing.T, ns *netns.NS, logDir, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{
		name:   name,
		stdout: filepath.Join(logDir, name+".stdout"),
		stderr: filepath.Join(logDir, name+".stderr"),
		done:   make(chan struct{}),
	}
	outF, err := os.OpenFile(p.stdout, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	defer outF.Close()
	errF, err := os.OpenFile(p.stderr, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	defer errF.Close()
	p.cmd = ns.Command(context.Background(), args[0], args[1:]...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = outF, errF
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	owner.Cleanup(func() {
		if err := p.stop(10 * time.Second); err != nil && !isSignalExit(err) {
			owner.Logf("cleanup: %s: %v", name, err)
		}
	})
	return p
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace for the
// process to exit, then sends SIGKILL and waits. It returns the process's
// Wait error (nil for a clean exit). It is idempotent.
func (p *proc) stop(grace time.Duration) error {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
		}
	}
	return p.err
}

// isSignalExit reports whether err says the process died of a signal.
func isSignalExit(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// output returns what the process has written to stdout and stderr so far.
func (p *proc) output() (stdout, stderr string) {
	o, _ := os.ReadFile(p.stdout)
	e, _ := os.ReadFile(p.stderr)
	return string(o), string(e)
}

// describe returns the process's captured output for a failure message.
func (p *proc) describe() string {
	o, e := p.output()
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Sprintf("%s (%s)\n--- stdout\n%s--- stderr\n%s", p.name, state, o, e)
}

// waitStdout polls until the process's stdout contains want and returns
// stdout. It fails t if the process exits first or timeout passes.
func (p *proc) waitStdout(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := p.exited() // read before the output, so nothing is missed
		o, _ := p.output()
		if strings.Contains(o, want) {
			return o
		}
		if exited {
			t.Fatalf("%s exited before printing %q: %s", p.name, want, p.describe())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q on stdout within %v: %s", p.name, want, timeout, p.describe())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStderr polls until the process's stderr contains want, failing t
// after timeout.
func (p *proc) waitStderr(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	waitUntil(t, timeout, fmt.Sprintf("%s to log %q", p.name, want), func() (bool, error) {
		_, e := p.output()
		return strings.Contains(e, want), nil
	})
}

// runCmd runs args in ns with env and stdin and returns its stdout. The
// error, if any, includes stderr. It gives up after 60 s.
func runCmd(ns *netns.NS, env []string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String(), nil
}

// waitUntil polls cond every 20 ms until it returns true, failing t with
// what and the last error if timeout passes first.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
