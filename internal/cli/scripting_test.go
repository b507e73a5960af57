package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/cli"
	"github.com/nitronet/nitronet/internal/clientstate"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// result is one run of the command line as a process would end it.
type result struct {
	stdout, stderr string
	status         int
	msg            string // the line main prints on stderr
}

// runCLI runs the command line with getenv and returns how the process
// would end.
func runCLI(getenv func(string) string, args ...string) result {
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), args, getenv, strings.NewReader(""), &out, &errb)
	status, msg := cli.Exit(err)
	return result{out.String(), errb.String(), status, msg}
}

// offline is an environment with an empty client state and a server that
// cannot be reached: a command that got as far as the network would fail
// with status 1, not 2.
func offline(t *testing.T) func(string) string {
	conf := t.TempDir()
	return func(k string) string {
		switch k {
		case "NITRONET_CONFIG_DIR":
			return conf
		case "NITRONET_SERVER":
			return "http://127.0.0.1:1"
		}
		return ""
	}
}

// result is the harness's run, returning how the process would end.
func (h *harness) result(stdin string, args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		switch k {
		case "NITRONET_CONFIG_DIR":
			return h.confDir
		case "NITRONET_SERVER":
			if v, ok := h.env[k]; ok {
				return v
			}
			return h.url
		}
		return h.env[k]
	}
	err := cli.Run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errb)
	status, msg := cli.Exit(err)
	return result{out.String(), errb.String(), status, msg}
}

// keys returns the sorted keys of the JSON object raw.
func keys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, raw)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// wantKeys fails t unless the JSON object raw has exactly the keys want
// (the documented ones, docs/cli.md).
func wantKeys(t *testing.T, what string, raw json.RawMessage, want ...string) {
	t.Helper()
	sort.Strings(want)
	if got := keys(t, raw); !slices.Equal(got, want) {
		t.Errorf("%s keys: got %v, want %v", what, got, want)
	}
}

// wantTime fails t unless raw is a JSON string in RFC 3339.
func wantTime(t *testing.T, what string, raw json.RawMessage) {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Errorf("%s: got %s, want an RFC 3339 string", what, raw)
		return
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		t.Errorf("%s: %q is not RFC 3339: %v", what, s, err)
	}
}

func decodeObject(t *testing.T, what, out string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%s: not a JSON object: %v\n%s", what, err, out)
	}
	return m
}

func TestVersion(t *testing.T) {
	full := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/nitronet/nitronet", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-05-01T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/nitronet/nitronet", Version: "(devel)"}}
	run := func(bi *debug.BuildInfo, args ...string) string {
		t.Helper()
		var out bytes.Buffer
		env := &cli.Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out,
			Clock: time.Now, Rand: rand.Reader, BuildInfo: bi}
		root := cli.NewRoot(env)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("nitronet %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}

	text := run(full, "version")
	for _, want := range []string{"nitronet v1.4.0\n", "0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)",
		"2026-05-01T12:00:00Z", "go1.26.8"} {
		if !strings.Contains(text, want) {
			t.Errorf("version: got %q, want it to contain %q", text, want)
		}
	}
	if got := run(full, "--version"); got != text {
		t.Errorf("--version: got %q, want the same as version: %q", got, text)
	}
	raw := run(full, "version", "--json")
	wantKeys(t, "version --json", json.RawMessage(raw), "version", "revision", "time", "modified", "go_version", "platform")
	m := decodeObject(t, "version --json", raw)
	wantTime(t, "version time", m["time"])
	if string(m["version"]) != `"v1.4.0"` || string(m["modified"]) != "true" || string(m["go_version"]) != `"go1.26.8"` ||
		string(m["revision"]) != `"0123456789abcdef0123456789abcdef01234567"` {
		t.Errorf("version --json: got %s", raw)
	}

	// A build without a module version or VCS information says so.
	for name, bi := range map[string]*debug.BuildInfo{"devel": devel, "no build info": nil} {
		text := run(bi, "version")
		if !strings.HasPrefix(text, "nitronet devel\n") || !strings.Contains(text, "commit:     unknown") {
			t.Errorf("%s: version: got %q", name, text)
		}
		m := decodeObject(t, name, run(bi, "version", "--json"))
		if string(m["version"]) != `"devel"` || string(m["revision"]) != `""` || string(m["time"]) != "null" {
			t.Errorf("%s: version --json: got %v", name, m)
		}
	}

	// Through Run, with the test binary's own build information.
	if r := runCLI(offline(t), "version"); r.status != 0 || !strings.HasPrefix(r.stdout, "nitronet ") {
		t.Errorf("version through Run: got %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string // in the message
	}{
		{[]string{"no-such-command"}, `nitronet: unknown command "no-such-command"; run 'nitronet --help'`},
		{[]string{"stauts"}, `did you mean "status"?`},
		{[]string{"device", "frob"}, `unknown command "frob" for "nitronet device"; run 'nitronet device --help'`},
		{[]string{"admin", "frob"}, `run 'nitronet admin --help'`},
		{[]string{"inbox", "frob"}, `unknown command "frob" for "nitronet inbox"`},
		{[]string{"help", "frob"}, `unknown help topic "frob"`},
		{[]string{"--frob"}, `unknown flag: --frob; run 'nitronet --help'`},
		{[]string{"device", "list", "--frob"}, `unknown flag: --frob; run 'nitronet device list --help'`},
		{[]string{"signup", "--email"}, `flag needs an argument: --email`},
		{[]string{"whoami", "extra"}, `run 'nitronet whoami --help'`},
		{[]string{"device", "rename", "laptop"}, `accepts 2 arg(s), received 1`},
		{[]string{"serve", "--server", "http://x"}, `unknown flag: --server`},
		{[]string{"version", "--server", "http://x"}, `unknown flag: --server`},
		{[]string{"status", "--server", "http://x"}, `unknown flag: --server`},
		{[]string{"down", "--server", "http://x"}, `unknown flag: --server`},
		{[]string{"transparency", "verify", "f.json", "--server", "http://x"}, `unknown flag: --server`},
		// The CLI checks its own inputs before calling the API, and names them.
		{[]string{"signup", "--email", "a@example.com"}, `--mobile is required`},
		{[]string{"login"}, `--email is required`},
		{[]string{"password", "forgot"}, `--email is required`},
		{[]string{"password", "reset"}, `--token is required`},
		{[]string{"verify", "phone", "123456"}, `the first argument must be "email" or "mobile"`},
		{[]string{"verify", "email"}, `give the code`},
		{[]string{"privacy", "request", "gossip"}, `TYPE must be one of access`},
		{[]string{"privacy", "download", "prq_x", "--format", "pdf"}, `--format must be "json" or "html"`},
		{[]string{"privacy", "erase", "prq_x"}, `--yes`},
		{[]string{"privacy", "contact", "fax", "x"}, `the first argument must be "email" or "mobile"`},
		{[]string{"gateway", "--mode", "userspace"}, `--token is required`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCLI(offline(t), c.args...)
			if r.status != cli.ExitUsage {
				t.Fatalf("status: got %d (%q), want %d", r.status, r.msg, cli.ExitUsage)
			}
			if !strings.Contains(r.msg, c.want) || strings.Contains(r.msg, "\n") ||
				!strings.HasPrefix(r.msg, "nitronet: ") || !strings.HasSuffix(r.msg, " --help'") {
				t.Errorf("message: got %q, want one line containing %q and ending with a hint to run --help", r.msg, c.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
		})
	}
}

// commands returns every command of the tree, root first.
func commands() []*cobra.Command {
	var all []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		all = append(all, c)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(cli.NewRoot(&cli.Env{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""),
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Clock: time.Now, Rand: rand.Reader}))
	return all
}

// TestEveryParentRefusesUnknownSubcommands walks the whole tree, so that
// a parent command added later is covered too.
func TestEveryParentRefusesUnknownSubcommands(t *testing.T) {
	n := 0
	for _, c := range commands() {
		if !c.HasSubCommands() {
			continue
		}
		n++
		path := strings.Fields(c.CommandPath())[1:]
		r := runCLI(offline(t), append(path, "no-such-subcommand")...)
		if r.status != cli.ExitUsage || !strings.Contains(r.msg, `unknown command "no-such-subcommand"`) {
			t.Errorf("%s no-such-subcommand: got status %d, %q", c.CommandPath(), r.status, r.msg)
		}
	}
	if n < 5 {
		t.Fatalf("only %d parent commands found", n)
	}
	// A parent alone prints its help and succeeds, as --help does.
	if r := runCLI(offline(t), "device"); r.status != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("device alone: got %+v", r)
	}
}

// TestFlagSpelling: one output flag, -o/--output, across the tree; and
// --server only on the commands that talk to a control server.
func TestFlagSpelling(t *testing.T) {
	talksToServer := map[string]bool{"signup": true, "login": true, "logout": true, "verify": true, "whoami": true,
		"password": true, "device": true, "up": true, "privacy": true, "inbox": true, "policy": true, "gateway": true}
	for _, c := range commands() {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			switch {
			case f.Name == "out":
				t.Errorf("%s has --out; the output flag is -o/--output", c.CommandPath())
			case f.Name == "output" && f.Shorthand != "o":
				t.Errorf("%s: --output without -o", c.CommandPath())
			case f.Name != "output" && f.Shorthand == "o":
				t.Errorf("%s: -o is --%s, not --output", c.CommandPath(), f.Name)
			}
		})
		has := c.LocalFlags().Lookup("server") != nil || c.InheritedFlags().Lookup("server") != nil
		words := strings.Fields(c.CommandPath())
		want := len(words) > 1 && talksToServer[words[1]]
		if has != want {
			t.Errorf("%s: has --server %v, want %v", c.CommandPath(), has, want)
		}
	}
}

// writeTunnelStatus makes the client state in conf look as if `up` were
// running (the pid is this test's process) with the given handshake.
func writeTunnelStatus(t *testing.T, conf string, handshake time.Time) {
	t.Helper()
	rd := filepath.Join(conf, "run")
	if err := os.MkdirAll(rd, 0o700); err != nil {
		t.Fatal(err)
	}
	st := map[string]any{"pid": os.Getpid(), "mode": "userspace", "device": "dev_aaaa", "device_name": "laptop",
		"gateway": "gw_bbbb", "region": "eu-west", "addresses": []string{"100.64.0.2/32"},
		"socks": "127.0.0.1:1080", "http": "127.0.0.1:8118", "last_handshake": handshake, "since": time.Now().Add(-time.Minute),
		"quantum_resistant": true}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(rd, "status.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rd, "pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStatusExitCodeAndJSON(t *testing.T) {
	getenv := offline(t)
	conf := getenv("NITRONET_CONFIG_DIR")

	r := runCLI(getenv, "status")
	if r.status != cli.ExitNotConnected || r.msg != "" || !strings.Contains(r.stdout, "Disconnected.") {
		t.Fatalf("status, no tunnel: got %+v, want status %d, no message", r, cli.ExitNotConnected)
	}
	r = runCLI(getenv, "status", "--json")
	m := decodeObject(t, "status --json", r.stdout)
	wantKeys(t, "status --json", json.RawMessage(r.stdout), "state", "connected", "tunnel")
	if r.status != cli.ExitNotConnected || string(m["state"]) != `"disconnected"` || string(m["tunnel"]) != "null" {
		t.Fatalf("status --json, no tunnel: got %+v", r)
	}

	// A tunnel whose gateway has not answered is not connected.
	writeTunnelStatus(t, conf, time.Time{})
	r = runCLI(getenv, "status", "--json")
	m = decodeObject(t, "status --json", r.stdout)
	if r.status != cli.ExitNotConnected || string(m["state"]) != `"no_handshake"` || string(m["connected"]) != "false" {
		t.Fatalf("status --json, no handshake: got %+v", r)
	}
	if r := runCLI(getenv, "status"); r.status != cli.ExitNotConnected || !strings.Contains(r.stdout, "no handshake yet") {
		t.Fatalf("status, no handshake: got %+v", r)
	}

	writeTunnelStatus(t, conf, time.Now().Add(-10*time.Second))
	r = runCLI(getenv, "status", "--json")
	if r.status != 0 {
		t.Fatalf("status --json, connected: got %+v, want status 0", r)
	}
	m = decodeObject(t, "status --json", r.stdout)
	if string(m["state"]) != `"connected"` || string(m["connected"]) != "true" {
		t.Fatalf("status --json, connected: got %s", r.stdout)
	}
	wantKeys(t, "status tunnel", m["tunnel"], "pid", "mode", "interface", "device_id", "device_name", "gateway_id", "region",
		"transport", "entry_gateway_id", "entry_region", "addresses", "socks_proxy", "http_proxy", "last_handshake", "since", "quantum_resistant")
	tun := decodeObject(t, "tunnel", string(m["tunnel"]))
	if string(tun["quantum_resistant"]) != "true" {
		t.Errorf("tunnel quantum_resistant: got %s, want true", tun["quantum_resistant"])
	}
	wantTime(t, "last_handshake", tun["last_handshake"])
	wantTime(t, "since", tun["since"])
	if string(tun["pid"]) != strconv.Itoa(os.Getpid()) || string(tun["device_name"]) != `"laptop"` {
		t.Errorf("tunnel: got %s", m["tunnel"])
	}
	if r := runCLI(getenv, "status"); r.status != 0 || !strings.Contains(r.stdout, "connected (userspace mode)") ||
		!strings.Contains(r.stdout, "laptop (dev_aaaa)") {
		t.Fatalf("status, connected: got %+v", r)
	}
}

// signedUp returns a harness with a verified, logged-in account.
func signedUp(t *testing.T, wrap func(http.Handler) http.Handler) *harness {
	h, _ := newHarness(t, wrap)
	h.must("correct horse battery\n", "signup", "--email", "script@example.com", "--mobile", "+447911100700")
	h.must("", "verify", "email", h.code("email"))
	h.must("", "verify", "mobile", h.code("sms"))
	return h
}

func TestClientJSON(t *testing.T) {
	h := signedUp(t, nil)

	out := h.must("", "whoami", "--json")
	wantKeys(t, "whoami --json", json.RawMessage(out), "account_id", "email", "email_verified", "mobile", "mobile_verified",
		"created_at", "server")
	m := decodeObject(t, "whoami", out)
	wantTime(t, "created_at", m["created_at"])
	if string(m["email"]) != `"script@example.com"` || string(m["email_verified"]) != "true" || string(m["server"]) != strconv.Quote(h.url) {
		t.Errorf("whoami --json: got %s", out)
	}

	if out := h.must("", "device", "list", "--json"); strings.TrimSpace(out) != "{\n  \"devices\": []\n}" {
		t.Errorf("device list --json with no device: got %q, want an empty list", out)
	}
	id := regexp.MustCompile(`dev_[a-z2-7]+`).FindString(h.must("", "device", "add", "laptop"))
	out = h.must("", "device", "list", "--json")
	var list struct {
		Devices []json.RawMessage `json:"devices"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Devices) != 1 {
		t.Fatalf("device list --json: got %s (%v)", out, err)
	}
	wantKeys(t, "device", list.Devices[0], "id", "name", "public_key", "addresses", "dns_blocking", "created_at", "key_here")
	dev := decodeObject(t, "device", string(list.Devices[0]))
	wantTime(t, "device created_at", dev["created_at"])
	var addrs []string
	if err := json.Unmarshal(dev["addresses"], &addrs); err != nil || len(addrs) == 0 {
		t.Errorf("device addresses: got %s, want a list of addresses", dev["addresses"])
	}
	if string(dev["id"]) != strconv.Quote(id) || string(dev["key_here"]) != "true" {
		t.Errorf("device: got %s", list.Devices[0])
	}

	// Privacy requests: the list and one request.
	reqID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(h.must("", "privacy", "request", "access"))
	requestKeys := []string{"id", "type", "status", "channel", "identity_check", "recipients", "details", "received_at", "due_at", "overdue", "identity_proof",
		"extension", "verified_at", "confirmed_at", "completed_at", "denied_reason", "outcome", "export_until", "fee"}
	out = h.must("", "privacy", "list", "--json")
	var reqs struct {
		Requests []json.RawMessage `json:"requests"`
	}
	if err := json.Unmarshal([]byte(out), &reqs); err != nil || len(reqs.Requests) != 1 {
		t.Fatalf("privacy list --json: got %s (%v)", out, err)
	}
	wantKeys(t, "privacy list request", reqs.Requests[0], requestKeys...)
	out = h.must("", "privacy", "show", reqID, "--json")
	wantKeys(t, "privacy show", json.RawMessage(out), requestKeys...)
	req := decodeObject(t, "privacy show", out)
	wantTime(t, "due_at", req["due_at"])
	if string(req["id"]) != strconv.Quote(reqID) || string(req["verified_at"]) != "null" ||
		!strings.Contains(string(req["identity_proof"]), `"mobile_code"`) {
		t.Errorf("privacy show --json: got %s", out)
	}

	// Inbox and policy with nothing in them still print their lists.
	out = h.must("", "inbox", "--json")
	wantKeys(t, "inbox --json", json.RawMessage(out), "unread", "messages")
	out = h.must("", "policy", "--json")
	wantKeys(t, "policy --json", json.RawMessage(out), "pending", "accepted")
	if m := decodeObject(t, "policy", out); string(m["pending"]) != "[]" {
		t.Errorf("policy --json: got %s, want no pending version", out)
	}

	// --server is taken from the command line before NITRONET_SERVER.
	h.env["NITRONET_SERVER"] = "http://127.0.0.1:1"
	if r := h.result("", "whoami"); r.status != cli.ExitError {
		t.Fatalf("whoami against an unreachable server: got %+v", r)
	}
	if out := h.must("", "device", "list", "--server", h.url, "--json"); !strings.Contains(out, id) {
		t.Errorf("device list --server: got %q", out)
	}
}

func TestDeviceByNameOrID(t *testing.T) {
	h := signedUp(t, nil)
	idRE := regexp.MustCompile(`dev_[a-z2-7]+`)
	laptop := idRE.FindString(h.must("", "device", "add", "laptop"))
	phone := idRE.FindString(h.must("", "device", "add", "phone"))
	dir := clientstate.Dir{Path: h.confDir}

	// Names are unique per account, compared case-insensitively: the
	// server refuses a second "Phone" and the CLI names the argument.
	if r := h.result("", "device", "add", "Phone"); r.status != cli.ExitError ||
		!strings.Contains(r.msg, `NAME: you already have a device named "Phone"`) {
		t.Errorf("add a second phone: got %+v, want the name refused", r)
	}
	if r := h.result("", "device", "rotate", "tablet"); r.status != cli.ExitError || !strings.Contains(r.msg, `no device with ID or name "tablet"`) {
		t.Errorf("rotate an unknown device: got %+v", r)
	}

	// By name.
	before, _ := dir.Key(phone)
	if out := h.must("", "device", "rotate", "phone"); !strings.Contains(out, phone) {
		t.Errorf("rotate phone: got %q, want it to name %s", out, phone)
	}
	if after, _ := dir.Key(phone); after == before {
		t.Error("rotate by name did not change the key of the device so named")
	}

	// An exact ID wins over a device whose name is that ID.
	decoy := idRE.FindString(h.must("", "device", "add", laptop))
	h.must("", "device", "rename", laptop, "work laptop")
	names := map[string]string{}
	var list struct {
		Devices []struct{ ID, Name string } `json:"devices"`
	}
	if err := json.Unmarshal([]byte(h.must("", "device", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	for _, d := range list.Devices {
		names[d.ID] = d.Name
	}
	if names[laptop] != "work laptop" || names[decoy] != laptop {
		t.Errorf("rename by ID: got %v, want %s renamed and %s unchanged", names, laptop, decoy)
	}

	h.must("", "device", "remove", "work laptop")
	if _, err := dir.Key(laptop); err == nil {
		t.Error("remove by name left the device's key")
	}
}

// TestErrorsNameInputs: the CLI names its flags, arguments and prompts,
// both when it checks its own inputs and when the API says which field it
// refused.
func TestErrorsNameInputs(t *testing.T) {
	var w wire
	h := signedUp(t, w.wrap)
	h.must("", "device", "add", "laptop")
	reqID := regexp.MustCompile(`prq_[a-z2-7]{26}`).FindString(h.must("", "privacy", "request", "access"))

	// The request says which codes prove identity; a missing one is named
	// by its flag before anything is sent.
	h.env["NITRONET_PASSWORD"] = "correct horse battery"
	r := h.result("", "privacy", "verify", reqID, "--email-code", "123456")
	if r.status != cli.ExitUsage || !strings.HasPrefix(r.msg, "nitronet: --mobile-code is required") {
		t.Fatalf("verify without --mobile-code: got %+v", r)
	}
	if strings.Contains(w.all(), reqID+"/verify") {
		t.Fatal("the CLI sent a verification it knew to be incomplete")
	}

	// The API names the field it refused: the CLI names the flag, argument
	// or prompt that set it.
	wrong := func(code string) string {
		if code == "000000" {
			return "111111"
		}
		return "000000"
	}
	long := strings.Repeat("x", 65)
	cases := []struct {
		stdin string
		args  []string
		want  string // the start of the message
	}{
		{"", []string{"privacy", "verify", reqID, "--email-code", wrong(h.codeOf("privacy-code", "email")),
			"--mobile-code", h.codeOf("privacy-code", "sms")}, "nitronet: --email-code: "},
		{"correct horse battery\n", []string{"signup", "--email", "new@example.com", "--mobile", "+1"}, "nitronet: --mobile: "},
		{"short\n", []string{"signup", "--email", "new@example.com", "--mobile", "+447911100701"}, "nitronet: password: "},
		{"", []string{"device", "add", long}, "nitronet: NAME: "},
		{"", []string{"device", "rename", "laptop", long}, "nitronet: NEW-NAME: "},
		{"", []string{"privacy", "show", "prq_nonsense"}, "nitronet: ID: "},
		{"", []string{"verify", "email", "12"}, "nitronet: CODE: "},
	}
	for _, c := range cases {
		r := h.result(c.stdin, c.args...)
		if r.status != cli.ExitError || !strings.HasPrefix(r.msg, c.want) || strings.Contains(r.msg, "(invalid") {
			t.Errorf("%v: got %+v, want status 1 and a message starting %q", c.args, r, c.want)
		}
	}
	h.env["NITRONET_PASSWORD"] = "not my password at all"
	r = h.result("", "privacy", "verify", reqID, "--email-code", "123456", "--mobile-code", "123456")
	if r.status != cli.ExitError || !strings.HasPrefix(r.msg, "nitronet: password: ") {
		t.Errorf("verify with a wrong password: got %+v", r)
	}
}
