package server_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/httpedge"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// replica is one control server serving HTTP on 127.0.0.1, sharing a
// PostgreSQL database and a keyring with the others.
type replica struct {
	*env
	stop func() // stops serving and closes the server
}

// startReplica assembles and serves a replica on the database at url with
// the keyring directory keyring, stopped when t ends unless stopped before.
func startReplica(t *testing.T, url, keyring string, lim *httpedge.Limits) *replica {
	t.Helper()
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Keyring = keyring
	cfg.DeviceLimit = 10
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := sqlstore.OpenPostgres(t.Context(), url, storetest.DefaultPool(), log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(t.Context(), cfg, server.Deps{Logger: log, Clock: time.Now, Rand: rand.Reader,
		Stdout: io.Discard, Limits: lim, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	r := &replica{env: &env{t: t, url: "http://" + ln.Addr().String(), dir: dir, logs: logs, srv: srv}}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
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
			switch {
			case !live[i]:
			case r.srv.Housekeeping() == server.RoleUnknown:
				return false
			case r.srv.Housekeeping() == server.RoleLeader && l >= 0:
				t.Fatalf("replicas %d and %d both run the housekeeping", l, i)
			case r.srv.Housekeeping() == server.RoleLeader:
				l = i
			}
		}
		return l >= 0
	})
	return l
}

// TestReplicas runs three control replicas on one PostgreSQL database,
// stops one mid-run, and checks that gateway polls on one replica wake at
// once for a device added through another (before and after), that the
// housekeeping runs on exactly one replica and is taken over when that
// one stops, and that the rate limits are one budget for all three, not
// three. A replica cut off by a crash or a network failure rather than
// stopped is sqlstore's TestLead and TestListenPeerFeed.
func TestReplicas(t *testing.T) {
	url := storetest.PostgresURL(t)
	db := storetest.PostgresDB(t, url)
	keyring := filepath.Join(t.TempDir(), "keyring") // the vault creates it, mode 0700
	const resetBurst = 4
	lim := httpedge.Limits{SignupPerHour: 1e6, SignupBurst: 1e4, LoginPerHour: 1e6, LoginBurst: 1e4,
		VerifyPerHour: 1e6, VerifyBurst: 1e4, ResetPerHour: 0.01, ResetBurst: resetBurst}
	var rs []*replica
	for range 3 {
		rs = append(rs, startReplica(t, url, keyring, &lim))
	}
	live := []bool{true, true, true}

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
	_, gwToken, err := rs[first].srv.Gateways.Add(t.Context(), staff.System(), "eu-west", "198.18.0.1:51820")
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
		waitUntil(t, 20*time.Second, "the gateway's poll to wait", func() bool { return on.srv.Feed.Waiting() == 1 })
		key := newKey(t)
		added := time.Now()
		via.with(t).want("POST", "/api/v1/devices", tok, map[string]string{"name": "more", "public_key": key}, 201)
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

	// Stop the replica that runs the housekeeping.
	rs[first].stop()
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
