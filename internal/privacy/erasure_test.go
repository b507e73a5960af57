package privacy_test

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
)

// TestErasureProof erases an account on SQLite in a data directory and
// proves it: the email and mobile appear in no file of the directory and
// no row, login fails, the devices are gone from the gateways' feed, the
// data key cannot be unwrapped, and the tombstone holds only the request
// id and date.
func TestErasureProof(t *testing.T) {
	dir := t.TempDir()
	st := storetest.OpenSQLiteAt(t, filepath.Join(dir, "nitronet.db"), storetest.DefaultPool())
	h := newHarness(t, st)
	ctx := t.Context()
	u := h.signup(t)
	keep := h.signup(t)
	d1 := h.addDevice(t, u, "laptop", 11)
	h.addDevice(t, u, "phone", 12)
	h.addDevice(t, keep, "other", 13)
	s := start().Truncate(time.Minute)
	if _, err := st.RecordIntervals(ctx, "eu", []store.Interval{{DeviceID: d1.ID, Start: s}}); err != nil {
		t.Fatal(err)
	}
	sess, _, err := h.acc.Login(ctx, u.email, pw)
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Account(ctx, u.id)
	if err != nil {
		t.Fatal(err)
	}
	_, version, _ := storetest.Snapshot(ctx, st)

	r := h.request(t, u, store.RequestErasure, "please forget me")
	rep, err := h.svc.ConfirmErasure(ctx, u.id, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DevicesRemoved != 2 || rep.SessionsDeleted != 1 {
		t.Fatalf("report: got %+v, want 2 devices, 1 session", rep)
	}
	if h.peers != 1 {
		t.Fatalf("OnPeerChange calls: got %d, want 1", h.peers)
	}

	// Login and the old session fail.
	if _, _, err := h.acc.Login(ctx, u.email, pw); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("login after erasure: got %v, want Unauthenticated", err)
	}
	if _, err := h.acc.Authenticate(ctx, sess.Token); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("old session after erasure: got %v, want Unauthenticated", err)
	}
	// Gateways are told to drop both peers; the snapshot lacks them.
	changes, err := st.PeerChanges(ctx, version, 100)
	if err != nil || len(changes) != 2 || !changes[0].Removed || !changes[1].Removed {
		t.Fatalf("feed: got %+v, %v, want two removals", changes, err)
	}
	peers, _, _ := storetest.Snapshot(ctx, st)
	if len(peers) != 1 {
		t.Fatalf("snapshot: got %d peers, want only the other account's", len(peers))
	}
	// The key is gone: the row holds no wrapped key, so nothing unwraps.
	after, err := st.Account(ctx, u.id)
	if err != nil {
		t.Fatal(err)
	}
	if after.WrappedKey != nil || after.EmailSealed != nil || after.MobileSealed != nil || after.EmailIndex != nil || after.MobileIndex != nil {
		t.Fatalf("account after erasure still holds key, sealed data or indexes: %+v", after)
	}
	if _, err := h.vault.Unwrap(u.id, after.WrappedKey); err == nil {
		t.Fatal("vault unwrapped a key after erasure")
	}
	if _, _, err := h.acc.Contacts(after); err == nil {
		t.Fatal("contacts decrypted after erasure")
	}
	if bytes.Equal(before.WrappedKey, after.WrappedKey) {
		t.Fatal("wrapped key unchanged")
	}
	// The tombstone: request id and date only.
	ts, err := st.Tombstone(ctx, r.ID)
	if err != nil || ts.RequestID != r.ID || !ts.ErasedAt.Equal(h.clk.Now().Truncate(time.Second)) {
		t.Fatalf("tombstone: got %+v, %v", ts, err)
	}
	got, _ := st.PrivacyRequest(ctx, r.ID)
	if got.AccountID != "" || got.Details != "" {
		t.Fatalf("request still names the account or keeps its text: %+v", got)
	}
	// The erasure email went out before the key was destroyed.
	if m := h.out.last(t, "privacy-erasure", u.email); !strings.Contains(m.Body, r.ID) {
		t.Fatalf("erasure notice: %q", m.Body)
	}
	// The other account is untouched.
	if _, _, err := h.acc.Login(ctx, keep.email, pw); err != nil {
		t.Fatalf("other account login: %v", err)
	}

	// No file in the data directory holds the email or mobile (the
	// database, its WAL and shared memory included).
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Nor any byte string that could lead back to them: the wrapped data
	// key, the sealed contacts and the blind indexes (SQLite zeroes freed
	// content with secure_delete, and erasure empties the WAL).
	needles := [][]byte{[]byte(u.email), []byte(u.mobile), []byte(strings.TrimPrefix(u.mobile, "+")), []byte("please forget me"),
		before.WrappedKey, before.EmailSealed, before.MobileSealed, before.EmailIndex, before.MobileIndex}
	err = filepath.WalkDir(dir, func(path string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds %.12q… after erasure", filepath.Base(path), n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestErasureHeld: a legal hold keeps the held data, the user is told
// what, why (without the confidential reason) and until when; once the
// hold is released the rest is erased.
func TestErasureHeld(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, b.Open(t))
			st := h.st
			ctx := t.Context()
			legal := principal(staff.RoleLegal)
			u := h.signup(t)
			d := h.addDevice(t, u, "laptop", 21)
			s := start().Truncate(time.Minute)
			if _, err := st.RecordIntervals(ctx, "eu", []store.Interval{{DeviceID: d.ID, Start: s}}); err != nil {
				t.Fatal(err)
			}
			until := h.clk.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
			hold, err := h.holds.Add(ctx, legal, u.id, "Case 4711 (confidential)", &until)
			if err != nil {
				t.Fatal(err)
			}
			r := h.request(t, u, store.RequestErasure, "")
			rep, err := h.svc.ConfirmErasure(ctx, u.id, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Status != store.RequestHeld || len(rep.Kept) == 0 || rep.KeptUntil == nil || !rep.KeptUntil.Equal(until) ||
				!strings.Contains(rep.KeptBecause, "legal obligation") || !rep.ServiceClosed || rep.DevicesRemoved != 1 {
				t.Fatalf("report: got %+v, want held data listed with the reason and %v", rep, until)
			}
			m := h.out.last(t, "privacy-erasure", u.email)
			if !strings.Contains(m.Body, "legal obligation") || !strings.Contains(m.Body, until.Format(time.DateOnly)) ||
				!strings.Contains(m.Body, "session intervals") {
				t.Fatalf("notice does not say what is kept, why and until when: %q", m.Body)
			}
			if strings.Contains(m.Body, "4711") {
				t.Fatalf("notice reveals the confidential hold reason: %q", m.Body)
			}
			// Closed: no login, no devices; held data still there.
			if _, _, err := h.acc.Login(ctx, u.email, pw); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("login under hold: got %v, want Unauthenticated", err)
			}
			if ds, _ := st.Devices(ctx, u.id); len(ds) != 0 {
				t.Fatalf("devices under hold: got %d, want 0", len(ds))
			}
			a, _ := st.Account(ctx, u.id)
			if email, _, err := h.acc.Contacts(a); err != nil || email != u.email {
				t.Fatalf("held contacts: got %q, %v, want still decryptable", email, err)
			}
			if ivs, _ := st.Usage(ctx, u.id, time.Unix(0, 0), 10); len(ivs) != 1 {
				t.Fatalf("held intervals: got %d, want 1", len(ivs))
			}
			// While the hold lasts, resuming changes nothing.
			if n, err := h.svc.ResumeErasures(ctx, staff.System()); err != nil || n != 0 {
				t.Fatalf("resume under hold: got %d, %v, want 0", n, err)
			}
			if err := h.holds.Release(ctx, legal, hold.ID); err != nil {
				t.Fatal(err)
			}
			if n, err := h.svc.ResumeErasures(ctx, staff.System()); err != nil || n != 1 {
				t.Fatalf("resume after release: got %d, %v, want 1", n, err)
			}
			a, _ = st.Account(ctx, u.id)
			if a.WrappedKey != nil || a.EmailSealed != nil {
				t.Fatalf("after release: account still holds its key or sealed data")
			}
			if ivs, _ := st.Usage(ctx, u.id, time.Unix(0, 0), 10); len(ivs) != 0 {
				t.Fatalf("after release: got %d intervals, want 0", len(ivs))
			}
			if got, _ := st.PrivacyRequest(ctx, r.ID); got.Status != store.RequestCompleted {
				t.Fatalf("after release: request status %q, want completed", got.Status)
			}
			if _, err := st.Tombstone(ctx, r.ID); err != nil {
				t.Fatalf("tombstone after release: %v", err)
			}
		})
	}
}

// TestErasureErrors covers refusals.
func TestErasureErrors(t *testing.T) {
	h := newHarness(t, storetest.SQLite(t, storetest.DefaultPool()))
	ctx := t.Context()
	u, other := h.signup(t), h.signup(t)
	p, _ := h.svc.Create(ctx, u.id, store.RequestErasure, "")
	_, err := h.svc.ConfirmErasure(ctx, u.id, p.ID)
	wantCode(t, "unverified", err, errs.Precondition)
	a := h.request(t, u, store.RequestAccess, "")
	_, err = h.svc.ConfirmErasure(ctx, u.id, a.ID)
	wantCode(t, "not an erasure", err, errs.Precondition)
	e := h.request(t, u, store.RequestErasure, "")
	_, err = h.svc.ConfirmErasure(ctx, other.id, e.ID)
	wantCode(t, "other account", err, errs.NotFound)
	_, err = h.svc.Complete(ctx, principal(staff.RolePrivacyOfficer), e.ID, "Erased.")
	wantCode(t, "staff completes an erasure", err, errs.Conflict)
}

// TestErasureInterrupted makes a statement of the erasure transaction
// fail midway (a trigger on the real database): nothing is half-erased,
// and ResumeErasures finishes the job. Then a child process is killed with
// SIGKILL in the middle of the transaction, and the erasure resumes after
// that too.
func TestErasureInterrupted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nitronet.db")
	st := storetest.OpenSQLiteAt(t, path, storetest.DefaultPool())
	h := newHarness(t, st)
	ctx := t.Context()
	u := h.signup(t)
	h.addDevice(t, u, "laptop", 31)
	r := h.request(t, u, store.RequestErasure, "")

	db := storetest.SQLiteDB(t, path)
	remove := storetest.InjectFault(t, "sqlite", db, storetest.Fault{Table: "accounts", Event: "UPDATE", When: "NEW.status = 'closed'"})
	if _, err := h.svc.ConfirmErasure(ctx, u.id, r.ID); !storetest.IsFault(err) {
		t.Fatalf("got %v, want the injected fault", err)
	}
	remove()
	intact := func(when string) {
		t.Helper()
		a, err := st.Account(ctx, u.id)
		if err != nil || a.Status != store.StatusActive || a.WrappedKey == nil || a.EmailIndex == nil {
			t.Fatalf("%s: account %+v, %v, want untouched", when, a, err)
		}
		if ds, _ := st.Devices(ctx, u.id); len(ds) != 1 {
			t.Fatalf("%s: got %d devices, want 1", when, len(ds))
		}
		got, _ := st.PrivacyRequest(ctx, r.ID)
		if got.Status != store.RequestVerified || got.ConfirmedAt == nil {
			t.Fatalf("%s: request %+v, want verified and confirmed", when, got)
		}
	}
	intact("after an error midway")

	// A real kill -9 of a process in the middle of the transaction: the
	// trigger calls a function that only the child process defines, which
	// kills it, once the devices are gone and before the commit.
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER kill_midway AFTER UPDATE ON accounts
		FOR EACH ROW WHEN NEW.status = 'closed' BEGIN SELECT `+killFunction+`(); END`); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestEraseChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NITRONET_ERASE_CHILD="+path, "NITRONET_ERASE_REQUEST="+r.ID, "NITRONET_ERASE_ACCOUNT="+u.id)
	out, err := cmd.CombinedOutput()
	if _, err := db.ExecContext(ctx, `DROP TRIGGER kill_midway`); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v (%s), want it killed by SIGKILL", err, out)
	}
	intact("after kill -9 midway")

	// On restart, the server resumes the confirmed erasure.
	if n, err := h.svc.ResumeErasures(ctx, staff.System()); err != nil || n != 1 {
		t.Fatalf("resume: got %d, %v, want 1", n, err)
	}
	a, _ := st.Account(ctx, u.id)
	if a.Status != store.StatusClosed || a.WrappedKey != nil {
		t.Fatalf("after resume: got %+v, want erased", a)
	}
	if _, err := st.Tombstone(ctx, r.ID); err != nil {
		t.Fatalf("tombstone after resume: %v", err)
	}
	if n, err := h.svc.ResumeErasures(ctx, staff.System()); err != nil || n != 0 {
		t.Fatalf("second resume: got %d, %v, want 0", n, err)
	}
}

// killFunction is the SQL function TestEraseChild defines: it kills the
// process.
const killFunction = "nitronet_test_kill"

// TestEraseChild is the child process of TestErasureInterrupted: it runs
// the erasure on the parent's database, where the parent's trigger calls
// killFunction, which SIGKILLs the process in the middle of the
// transaction.
func TestEraseChild(t *testing.T) {
	path := os.Getenv("NITRONET_ERASE_CHILD")
	if path == "" {
		t.Skip("child process of TestErasureInterrupted")
	}
	// Defined for every SQLite connection of this process (a child that
	// runs only this test), before the store opens any.
	sqlite.MustRegisterScalarFunction(killFunction, 0, func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // wait for the signal
	})
	st := storetest.OpenSQLiteAt(t, path, storetest.DefaultPool())
	_, err := st.EraseAccount(context.Background(), store.Erasure{
		RequestID: os.Getenv("NITRONET_ERASE_REQUEST"), AccountID: os.Getenv("NITRONET_ERASE_ACCOUNT"), At: time.Now(),
	})
	t.Fatalf("erasure returned %v; the process should have been killed", err)
}
