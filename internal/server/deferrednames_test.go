package server_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestIndexNamesDeferredKey writes unindexed devices (one name sealed, one
// in plaintext) for an account whose wrapped data key is then damaged, and
// one for a healthy account, and checks that the seal plaintext job
// indexes the healthy one, logs the damaged account once with its ID and
// device count and stops reading its devices (a second run logs nothing
// about it), keeps both names exactly as they were (the plaintext one is
// still reported unsealed at every run), and that once the key opens
// again the account's next device add indexes them and the job then
// seals the plaintext name.
func TestIndexNamesDeferredKey(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) { testIndexNamesDeferredKey(t, b) })
	}
}

func testIndexNamesDeferredKey(t *testing.T, b storetest.Backend) {
	e := newDBEnv(t, b)
	ctx := t.Context()
	accOK, _ := e.signup("defer-ok@example.com", "+447911100951")
	accBad, tokBad := e.signup("defer-bad@example.com", "+447911100952")

	legacy := func(account, name string, plain bool) string {
		t.Helper()
		return writeLegacyDevice(t, e, account, name, plain, time.Unix(1_700_000_000, 0))
	}
	legacy(accOK, "Phone", false)
	badSealed := legacy(accBad, "Laptop", false)
	badPlain := legacy(accBad, "Tablet", true)

	type row struct {
		name     string
		sealed   []byte
		index    []byte
		deferred *int64
	}
	read := func(id string) row {
		t.Helper()
		var r row
		if err := e.db.QueryRowContext(ctx, `SELECT name, name_sealed, name_index, name_index_deferred FROM devices WHERE id = $1`, id).
			Scan(&r.name, &r.sealed, &r.index, &r.deferred); err != nil {
			t.Fatal(err)
		}
		return r
	}
	before := map[string]row{badSealed: read(badSealed), badPlain: read(badPlain)}

	var wrapped []byte
	if err := e.db.QueryRowContext(ctx, `SELECT wrapped_key FROM accounts WHERE id = $1`, accBad).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(wrapped)
	damaged[len(damaged)-1] ^= 0xff
	setKey := func(k []byte) {
		t.Helper()
		if _, err := e.db.ExecContext(ctx, `UPDATE accounts SET wrapped_key = $1 WHERE id = $2`, k, accBad); err != nil {
			t.Fatal(err)
		}
	}
	setKey(damaged)

	deferredLogs := func() int {
		n := 0
		for _, l := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(l, "device names not indexed") {
				if !strings.Contains(l, "deferred") || !strings.Contains(l, "account="+accBad) || !strings.Contains(l, "devices=2") {
					t.Fatalf("log line %q: want the deferral of %s with devices=2", l, accBad)
				}
				n++
			}
		}
		return n
	}
	unsealedLogs := func() int {
		return strings.Count(e.logs.String(), `msg="plaintext not sealed" what="device names" records=1`)
	}

	// First run: the healthy account's device indexed, the damaged one
	// logged once and deferred.
	if n, err := e.srv.SealPlaintext(ctx); err != nil || n != 1 {
		t.Fatalf("SealPlaintext: %d, %v; want 1 (the healthy account's device)", n, err)
	}
	if got := deferredLogs(); got != 1 {
		t.Fatalf("after the first run: %d deferral log lines, want 1:\n%s", got, e.logs.String())
	}
	for id, was := range before {
		now := read(id)
		if now.name != was.name || !bytes.Equal(now.sealed, was.sealed) || now.index != nil || now.deferred == nil {
			t.Fatalf("device %s after the first run: %+v, want its name as before (%+v), no index, deferred", id, now, was)
		}
	}
	// Second run: nothing indexed, the damaged account not read again;
	// its plaintext name still reported, not lost.
	if n, err := e.srv.SealPlaintext(ctx); err != nil || n != 0 {
		t.Fatalf("SealPlaintext again: %d, %v; want 0", n, err)
	}
	if got := deferredLogs(); got != 1 {
		t.Fatalf("after the second run: %d deferral log lines, want still 1:\n%s", got, e.logs.String())
	}
	if got := unsealedLogs(); got != 2 {
		t.Fatalf("plaintext not sealed reported %d times, want at each of the 2 runs:\n%s", got, e.logs.String())
	}
	if r := read(badPlain); r.name != "Tablet" {
		t.Fatalf("plaintext name after two runs: %q, want Tablet", r.name)
	}

	// The key opens again (say, the missing KEK is configured): the
	// account's next add indexes the deferred devices first.
	setKey(wrapped)
	e.want("POST", "/api/v1/devices", tokBad, map[string]string{"name": "LAPTOP", "public_key": newKey(t)}, 409)
	for id := range before {
		if r := read(id); r.index == nil || r.deferred != nil {
			t.Fatalf("device %s after an add: %+v, want indexed and no longer deferred", id, r)
		}
	}
	if n, err := e.srv.SealPlaintext(ctx); err != nil || n != 1 {
		t.Fatalf("SealPlaintext with the key restored: %d, %v; want 1 (the plaintext name sealed)", n, err)
	}
	if r := read(badPlain); r.name != "" || r.sealed == nil {
		t.Fatalf("plaintext device after the key was restored: %+v, want its name sealed", r)
	}
}
