package server_test

import (
	"bufio"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/config"
	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// replica is one control server process serving HTTP on 127.0.0.1,
// sharing a PostgreSQL database and a keyring with the others: this test
// binary run as TestReplicaProcess, so that it can be killed (SIGKILL), as
// a crash would, with no chance to close its connections or release its
// locks.
type replica struct {
	*env
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
}

// replicaEnv is the environment variable that makes TestReplicaProcess a
// replica; it holds the replicaSpec as JSON.
const replicaEnv = "NITRONET_TEST_REPLICA"

// replicaSpec is what a replica process is given.
type replicaSpec struct {
	Database, Keyring, DataDir string
	Limits                     httpedge.Limits
}

// replicaMetricsToken is the replicas' --metrics-token: with it, /metrics is
// served on the main listener, where the test reads each replica's role.
const replicaMetricsToken = "replica-test-metrics-token"

// replicaConfig returns the settings of a replica of spec.
func replicaConfig(t *testing.T, spec replicaSpec) config.Settings {
	t.Helper()
	cfg := testConfig(t, spec.DataDir)
	cfg.Keyring = spec.Keyring
	cfg.DeviceLimit = 10
	cfg.Transport.MetricsToken = replicaMetricsToken
	return cfg
}

// TestReplicaProcess is not a test of its own: TestReplicas runs this test
// binary with replicaEnv set, and then it is one control replica, which
// prints its address and serves until it is killed.
func TestReplicaProcess(t *testing.T) {
	raw := os.Getenv(replicaEnv)
	if raw == "" {
		t.Skip("a replica process of TestReplicas")
	}
	var spec replicaSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := sqlstore.OpenPostgres(t.Context(), spec.Database, storetest.DefaultPool(), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(t.Context(), replicaConfig(t, spec), server.Deps{Logger: log, Clock: time.Now, Rand: rand.Reader,
		Stdout: io.Discard, Limits: &spec.Limits, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("listening %s\n", ln.Addr())
	if err := srv.Serve(t.Context(), ln); err != nil {
		t.Fatal(err)
	}
}

// startReplica starts a replica process of spec (with its own data
// directory), waits until it serves, and kills it when t ends unless it
// was killed before.
func startReplica(t *testing.T, spec replicaSpec) *replica {
	t.Helper()
	spec.DataDir = t.TempDir()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$", "-test.v")
	cmd.Env = append(os.Environ(), replicaEnv+"="+string(raw))
	logs := &lockedBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				addr <- a
			}
		}
		cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("replica %d's log:\n%s", cmd.Process.Pid, logs)
		}
	})
	select {
	case a := <-addr:
		r.env = &env{t: t, url: "http://" + a, dir: spec.DataDir, logs: logs}
	case <-r.done:
		t.Fatalf("the replica process ended before it served:\n%s", logs)
	case <-time.After(time.Minute):
		t.Fatal("the replica process did not serve within a minute")
	}
	return r
}

// kill kills the replica's process (SIGKILL) and waits for it to end.
func (r *replica) kill() {
	r.cmd.Process.Kill()
	<-r.done
}

// gauge returns the value of the replica's metric name (a gauge without
// labels), read from its /metrics, and whether it has one.
func (r *replica) gauge(name string) (float64, bool) {
	r.t.Helper()
	req, err := http.NewRequest("GET", r.url+"/metrics", nil)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+replicaMetricsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		r.t.Fatalf("metrics: %d, %v", resp.StatusCode, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				r.t.Fatalf("metric %s: %q", name, line)
			}
			return f, true
		}
	}
	return 0, false
}

// sweeps counts the scheduled retention sweeps recorded in db.
func sweeps(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM retention_runs WHERE cause = 'schedule'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// leader waits until every live replica of rs knows its part in the
// housekeeping and one runs it, and returns that one's index; it fails t
// if two do.
func leader(t *testing.T, rs []*replica, live []bool) int {
	t.Helper()
	l := -1
	waitUntil(t, 20*time.Second, "one replica to run the housekeeping, and the others to know it", func() bool {
		l = -1
		for i, r := range rs {
			if !live[i] {
				continue
			}
			v, known := r.gauge("nitronet_housekeeping_leader")
			switch {
			case !known:
				return false
			case v == 1 && l >= 0:
				t.Fatalf("replicas %d and %d both run the housekeeping", l, i)
			case v == 1:
				l = i
			}
		}
		return l >= 0
	})
	return l
}

// TestReplicas runs three control replica processes on one PostgreSQL
// database, kills one mid-run (SIGKILL: it closes nothing), and checks
// that gateway polls on one replica wake at once for a device added
// through another (before and after the kill), that the housekeeping runs
// on exactly one replica and is taken over when that one is killed, and
// that the rate limits and the slow-downs of failed logins are one budget
// for all three, not three.
func TestReplicas(t *testing.T) {
	url := storetest.PostgresURL(t)
	db := storetest.PostgresDB(t, url)
	keyring := filepath.Join(t.TempDir(), "keyring") // the vault creates it, mode 0700
	const resetBurst = 4
	lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
		VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 0.01, ResetBurst: resetBurst,
		SlowFree: 2, SlowBase: time.Hour, SlowMax: time.Hour}
	spec := replicaSpec{Database: url, Keyring: keyring, Limits: lim}
	var rs []*replica
	for range 3 {
		rs = append(rs, startReplica(t, spec))
	}
	// Any replica's queue worker may deliver a code another queued.
	for i := range rs {
		for j := range rs {
			if j != i {
				rs[i].env.also = append(rs[i].env.also, rs[j].env.dir)
			}
		}
	}
	live := []bool{true, true, true}
	// The operator's tools, as `nitronet admin` would use them: a server
	// on the same database and keyring that does not serve.
	spec.DataDir = t.TempDir()
	st, err := sqlstore.OpenPostgres(t.Context(), url, storetest.DefaultPool(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := server.New(t.Context(), replicaConfig(t, spec), server.Deps{Logger: slog.New(slog.DiscardHandler),
		Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })

	// Housekeeping: one replica sweeps, once.
	first := leader(t, rs, live)
	waitUntil(t, 20*time.Second, "the first scheduled sweep", func() bool { return sweeps(t, db) >= 1 })
	if n := sweeps(t, db); n != 1 {
		t.Fatalf("%d scheduled sweeps by three replicas, want 1", n)
	}

	// Gateway polls: a gateway polling one replica hears at once of a
	// device added through another.
	b := rs[(first+1)%3]
	_, tok := b.with(t).signup("replicas@example.com", "+447911100077")
	b.with(t).want("POST", "/api/v1/devices", tok, map[string]string{"name": "one", "public_key": newKey(t)}, 201)
	_, gwToken, err := admin.Gateways.Add(t.Context(), staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	gw := func(r *replica) *control.Client {
		c, err := control.New(r.url, &http.Client{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	k, _ := wgkey.Generate(rand.Reader)
	enr, err := gw(rs[first]).Enroll(t.Context(), gwToken, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pollAcross := func(on, via *replica) {
		t.Helper()
		c := gw(on)
		c.SetCredential(enr.Credential)
		u, err := c.Peers(t.Context(), 0, time.Second, control.Snapshot{})
		if err != nil || !u.Full {
			t.Fatalf("snapshot: %+v, %v", u, err)
		}
		type answer struct {
			u   control.Update
			err error
			in  time.Duration
		}
		done := make(chan answer, 1)
		go func() {
			start := time.Now()
			// The wait is shorter than the re-check on PostgreSQL (30 s):
			// only the notification can answer it with the change.
			u, err := c.Peers(t.Context(), u.Version, 20*time.Second, control.Snapshot{})
			done <- answer{u, err, time.Since(start)}
		}()
		waitUntil(t, 20*time.Second, "the gateway's poll to wait", func() bool {
			n, _ := on.gauge("nitronet_gateway_polls_waiting")
			return n == 1
		})
		key := newKey(t)
		added := time.Now()
		via.with(t).want("POST", "/api/v1/devices", tok, map[string]string{"name": "more " + key[:8], "public_key": key}, 201)
		a := <-done
		if a.err != nil || len(a.u.Changes) != 1 || a.u.Changes[0].PublicKey != key {
			t.Fatalf("poll answered %+v, %v; want the added device's key", a.u, a.err)
		}
		t.Logf("poll answered %v after the device was added through another replica (the wait was %v)",
			time.Since(added).Round(time.Microsecond), a.in.Round(time.Millisecond))
	}
	pollAcross(rs[first], b)

	// Rate limits: password-reset requests spread over the replicas spend
	// one budget.
	resets := func(who []int, n int) (allowed int) {
		t.Helper()
		for i := range n {
			st, _ := rs[who[i%len(who)]].with(t).call("POST", "/api/v1/password-reset", "", map[string]string{"email": "nobody@example.com"})
			if st != http.StatusTooManyRequests {
				allowed++
			}
		}
		return allowed
	}
	if got := resets([]int{0, 1, 2}, 3*resetBurst); got != resetBurst {
		t.Fatalf("%d of %d password-reset requests through three replicas allowed, want the one budget of %d", got, 3*resetBurst, resetBurst)
	}
	// Slow-downs: one failed login through each replica (two are free,
	// the third sets an hour's wait) slows the account down on all three.
	badLogin := map[string]string{"email": "replicas@example.com", "password": "not the password at all"}
	for _, r := range rs {
		r.with(t).want("POST", "/api/v1/sessions", "", badLogin, http.StatusUnauthorized)
	}
	for i, r := range rs {
		if st, _ := r.with(t).call("POST", "/api/v1/sessions", "", badLogin); st != http.StatusTooManyRequests {
			t.Errorf("a login through replica %d after three failures spread over the replicas: %d, want 429", i, st)
		}
	}

	// Kill the replica that runs the housekeeping.
	rs[first].kill()
	live[first] = false
	second := leader(t, rs, live)
	waitUntil(t, 20*time.Second, "the new leader's sweep", func() bool { return sweeps(t, db) >= 2 })
	if n := sweeps(t, db); n != 2 {
		t.Fatalf("%d scheduled sweeps after the takeover, want 2", n)
	}
	other := 3 - first - second
	pollAcross(rs[second], rs[other])
	pollAcross(rs[other], rs[second])
	if got := resets([]int{second, other}, 4); got != 0 {
		t.Errorf("%d password-reset requests allowed after the budget was spent, want 0", got)
	}
}
