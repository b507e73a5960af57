package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/netns"
)

// TestSingleMachine is the README's promise: one `nitronet serve --gateway
// userspace` gives a working VPN on one machine, with no root for the
// client. Everything runs in one namespace; the web server stands on a
// 198.18.x address there (a loopback destination would stay inside the
// client's own network stack).
func TestSingleMachine(t *testing.T) {
	requireTools(t)
	ns := netns.New(t)
	if err := ns.LinkUp("lo"); err != nil {
		t.Fatal(err)
	}
	web := netip.MustParsePrefix("198.18.99.1/32")
	if err := ns.AddAddr("lo", web); err != nil {
		t.Fatal(err)
	}
	page := netns.Serve(t, ns, "198.18.99.1:8099", nil, "http://198.18.99.1:8099/single-machine")

	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	data, logs, conf := filepath.Join(tmp, "data"), filepath.Join(tmp, "logs"), filepath.Join(tmp, "conf")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "LANG=C",
		"NITRONET_CONFIG_DIR=" + conf, "NITRONET_SERVER=http://127.0.0.1:18080"}
	serve := startProc(t, t, ns, logs, "serve", env, bin, "serve", "--data", data, "--listen", "127.0.0.1:18080",
		"--gateway", "userspace", "--gateway-listen-port", "51999", "--gateway-endpoint", "127.0.0.1:51999",
		"--gateway-dns-upstream", "127.0.0.1:53")
	serve.waitStdout(t, "running in this process", 30*time.Second)

	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := runCmd(ns, env, stdin, append([]string{bin}, args...)...)
		if err != nil {
			t.Fatalf("nitronet %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	// code waits for serve's outbound worker to write the code.
	code := func(channel string) string {
		t.Helper()
		var found string
		waitUntil(t, 10*time.Second, "a "+channel+" code in the outbox", func() (bool, error) {
			entries, err := os.ReadDir(filepath.Join(data, "outbox"))
			if err != nil {
				return false, nil
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			for i := len(names) - 1; i >= 0; i-- {
				b, _ := os.ReadFile(filepath.Join(data, "outbox", names[i]))
				if strings.Contains(names[i], "verify-code") && strings.Contains(string(b), "Channel: "+channel+"\n") {
					found = regexp.MustCompile(`\b\d{6}\b`).FindString(string(b))
					return true, nil
				}
			}
			return false, nil
		})
		return found
	}
	run("correct horse battery\n", "signup", "--email", "single@example.com", "--mobile", "+447911100777")
	run("", "verify", "email", code("email"))
	run("", "verify", "mobile", code("sms"))
	run("", "device", "add", "laptop")

	up := startProc(t, t, ns, logs, "up", env, bin, "up", "--userspace", "--socks", "127.0.0.1:11080", "--http-proxy", "127.0.0.1:18118")
	if out := up.waitStdout(t, "to disconnect", 30*time.Second); !strings.Contains(out, "Connected through local") {
		t.Fatalf("up: got %q, want a connection through the in-process gateway", out)
	}
	for _, proxy := range []string{"http://127.0.0.1:18118", "socks5://127.0.0.1:11080"} {
		var body string
		waitUntil(t, 15*time.Second, "a fetch through "+proxy, func() (bool, error) {
			var err error
			body, err = fetch(viaProxy(ns, proxy), page, "", 2*time.Second)
			return err == nil, err
		})
		if body == "" {
			t.Fatalf("through %s: empty answer", proxy)
		}
	}
	if out := run("", "status"); !strings.Contains(out, "connected (userspace mode)") {
		t.Fatalf("status: got %q", out)
	}

	// The server and its gateway wrote nothing about the destination.
	if err := up.stop(5 * time.Second); err != nil {
		t.Logf("stopping up: %v", err)
	}
	if err := serve.stop(10 * time.Second); err != nil {
		t.Logf("stopping serve: %v", err)
	}
	stdout, stderr := serve.output()
	files := map[string]string{"serve stdout": stdout, "serve stderr": stderr}
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			files[p] = string(b)
		}
		return nil
	})
	for name, content := range files {
		for _, needle := range []string{"198.18.99.1", ":8099", "single-machine"} {
			if strings.Contains(content, needle) {
				t.Errorf("%s holds %q", name, needle)
			}
		}
	}
	if stderr == "" || len(files) < 4 {
		t.Fatalf("searched %d files and %d bytes of logs; want the data directory and the logs", len(files), len(stderr))
	}
}
