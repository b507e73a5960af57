package rekey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/outbound"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/rekey"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
	"github.com/pquerna/otp/totp"
)

// totpCode returns the TOTP code of secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is wall-clock time shifted by an offset the test moves: the
// settle wait of a scheduled rotation is a real timer.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.off += d }

// discard is the notifier: the messages are not what is tested here.
type discard struct{}

func (discard) Send(context.Context, notify.Message) error { return nil }

// recorder is the outbound queue's delivery boundary: it records the
// bodies of the messages it is given.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, m.Body)
	return nil
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies)
}

// faultyStore fails RekeyAccounts from its failAt-th call on, as a crash
// midway would stop a rotation.
type faultyStore struct {
	store.Store
	mu     sync.Mutex
	calls  int
	failAt int // 0: never
}

func (f *faultyStore) RekeyAccounts(ctx context.Context, rs []store.AccountRekey) (int, error) {
	f.mu.Lock()
	f.calls++
	fail := f.failAt > 0 && f.calls >= f.failAt
	f.mu.Unlock()
	if fail {
		return 0, errs.E(errs.Unavailable, "injected crash")
	}
	return f.Store.RekeyAccounts(ctx, rs)
}

type harness struct {
	st    *faultyStore
	dir   string
	vault *vault.Vault
	acc   *accounts.Service
	stf   *staff.Service
	queue *outbound.Queue
	sent  *recorder // what queue delivered
	qlogs *bytes.Buffer
	svc   *rekey.Service
	clk   *clock
	admin staff.Principal
}

func newHarness(t *testing.T, b storetest.Backend, every time.Duration) *harness {
	t.Helper()
	h := &harness{st: &faultyStore{Store: b.Open(t)}, dir: filepath.Join(t.TempDir(), "keyring"), clk: &clock{}}
	var err error
	if h.vault, err = vault.Open(vault.Config{Dir: h.dir}); err != nil {
		t.Fatal(err)
	}
	hasher, err := password.NewHasher(password.DefaultParams(), 4, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	al, err := audit.New(audit.Config{Store: h.st, Clock: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	h.acc, err = accounts.New(accounts.Config{Store: h.st, Vault: h.vault, Hasher: hasher, Notifier: discard{}, Audit: al,
		Logger: log, Clock: h.clk.Now, Rand: rand.Reader, MobileRegion: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	h.stf, err = staff.New(staff.Config{Store: h.st, Hasher: hasher, Vault: h.vault, Audit: al, Logger: log, Clock: h.clk.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	h.sent, h.qlogs = &recorder{}, &bytes.Buffer{}
	h.queue, err = outbound.New(outbound.Config{Store: h.st, Vault: h.vault, Deliver: h.sent,
		Logger: slog.New(slog.NewTextHandler(h.qlogs, nil)), Clock: h.clk.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = rekey.New(rekey.Config{Store: h.st, Vault: h.vault, Accounts: h.acc, Staff: h.stf, Queue: h.queue, Audit: al, Logger: log,
		Clock: h.clk.Now, Rand: rand.Reader, Every: every, Settle: time.Minute, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	id, err := h.stf.Bootstrap(context.Background(), "admin@staff.example", staff.RoleAdmin, "staff password 1")
	if err != nil {
		t.Fatal(err)
	}
	h.admin = staff.Principal{ID: id, Email: "admin@staff.example", Role: staff.RoleAdmin}
	return h
}

const pw = "correct horse battery"

// signup creates n accounts and returns their emails.
func (h *harness) signup(t *testing.T, acc *accounts.Service, n int, tag string) []string {
	t.Helper()
	var out []string
	for i := range n {
		email := fmt.Sprintf("%s%d@example.com", tag, i)
		if _, err := acc.Signup(context.Background(), email, fmt.Sprintf("+447911%06d", len(tag)*1000+i), pw); err != nil {
			t.Fatalf("Signup %s: %v", email, err)
		}
		out = append(out, email)
	}
	return out
}

// check logs in as every email and reads its profile back.
func (h *harness) check(t *testing.T, emails []string) {
	t.Helper()
	for _, email := range emails {
		_, id, err := h.acc.Login(context.Background(), email, pw)
		if err != nil {
			t.Fatalf("Login %s: %v", email, err)
		}
		p, err := h.acc.Profile(context.Background(), id)
		if err != nil || p.Email != email {
			t.Fatalf("Profile of %s: %+v, %v", email, p, err)
		}
	}
}

// keks returns the ids of the KEK files in the keyring directory.
func (h *harness) keks(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(h.dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "kek-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestRotateResumesAfterCrash: a rotation that stops midway (its store
// fails) resumes from its last saved batch, without re-wrapping anything
// twice; once Settle has passed it verifies and destroys the old KEK; the
// accounts and a staff member's second factor keep working throughout.
func TestRotateResumesAfterCrash(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b, 0)
			ctx := context.Background()
			emails := h.signup(t, h.acc, 5, "user")
			enr, err := h.stf.BeginTOTP(ctx, h.admin)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.stf.ConfirmTOTP(ctx, h.admin, enr.Secret, totpCode(t, enr.Secret, h.clk.Now())); err != nil {
				t.Fatal(err)
			}

			h.st.failAt = 2 // the second batch fails
			if _, err := h.svc.Rotate(ctx, h.admin); !errs.Is(err, errs.Unavailable) {
				t.Fatalf("Rotate with a crash: got %v, want the injected error", err)
			}
			st, err := h.svc.Status(ctx, h.admin)
			if err != nil || st.Current == nil || st.Current.Rewrapped != 2 || st.Current.Phase != rekey.PhaseRewrapping {
				t.Fatalf("after the crash: %+v, %v; want 2 re-wrapped, still re-wrapping", st.Current, err)
			}
			// Midway, accounts on both KEKs work.
			h.check(t, emails)

			h.st.failAt = 0
			r, err := h.svc.Rotate(ctx, h.admin)
			if err != nil {
				t.Fatal(err)
			}
			if r.Phase != rekey.PhaseSettling || r.Rewrapped != 5 || r.Resealed != 1 || r.Target != 2 {
				t.Fatalf("resumed rotation: %+v; want 5 accounts and 1 secret moved to KEK 2, settling", r)
			}
			if got := h.keks(t); !slices.Equal(got, []string{"kek-1.key", "kek-2.key"}) {
				t.Fatalf("keyring while settling: %v", got)
			}
			h.clk.Add(time.Minute)
			if r, err = h.svc.Rotate(ctx, h.admin); err != nil || r.Phase != rekey.PhaseFinished || !slices.Equal(r.Destroyed, []uint32{1}) {
				t.Fatalf("after Settle: %+v, %v; want finished with KEK 1 destroyed", r, err)
			}
			if got := h.keks(t); !slices.Equal(got, []string{"kek-2.key"}) {
				t.Fatalf("keyring after rotation: %v", got)
			}
			h.check(t, emails)
			// The second factor was re-sealed: the admin logs in with a code.
			h.clk.Add(time.Minute)
			if _, err := h.stf.Check(ctx, staff.Credentials{Email: "admin@staff.example", Password: "staff password 1",
				Code: totpCode(t, enr.Secret, h.clk.Now())}); err != nil {
				t.Fatalf("staff login with two factors after rotation: %v", err)
			}
		})
	}
}

// TestRotateKeepsKEKOnConflict: an account a process with a stale view of
// the keyring created during the rotation, holding the same email as an
// account already re-indexed, cannot be re-indexed; the old KEK, which
// still wraps its key, is kept and the rotation says why.
func TestRotateKeepsKEKOnConflict(t *testing.T) {
	b := storetest.Backends()[0]
	h := newHarness(t, b, 0)
	ctx := context.Background()
	h.signup(t, h.acc, 1, "dup")
	kek1, err := os.ReadFile(filepath.Join(h.dir, "kek-1.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.svc.Rotate(ctx, h.admin); err != nil {
		t.Fatal(err)
	}
	// A process that still sees only KEK 1.
	stale, err := vault.New(kek1, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hasher, _ := password.NewHasher(password.DefaultParams(), 1, rand.Reader)
	log := slog.New(slog.DiscardHandler)
	al, err := audit.New(audit.Config{Store: h.st, Clock: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	staleAcc, err := accounts.New(accounts.Config{Store: h.st, Vault: stale, Hasher: hasher, Notifier: discard{},
		Audit: al, Logger: log, Clock: h.clk.Now, Rand: rand.Reader, MobileRegion: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := staleAcc.Signup(ctx, "dup0@example.com", "+447911888777", pw); err != nil {
		t.Fatalf("stale Signup: %v", err)
	}
	h.clk.Add(time.Minute)
	r, err := h.svc.Rotate(ctx, h.admin)
	if err != nil {
		t.Fatal(err)
	}
	if r.Phase != rekey.PhaseBlocked || !strings.Contains(r.Problem, "1 account(s) share an email or mobile number") {
		t.Fatalf("rotation with a conflict: %+v; want blocked, saying why", r)
	}
	if got := h.keks(t); !slices.Equal(got, []string{"kek-1.key", "kek-2.key"}) {
		t.Fatalf("keyring of a blocked rotation: %v; want KEK 1 kept", got)
	}
}

// TestScheduled: the job does nothing until the primary KEK is due,
// then rotates, waits out Settle and destroys the old KEK in one run, and
// is audited only when it did something.
func TestScheduled(t *testing.T) {
	b := storetest.Backends()[0]
	every := 30 * 24 * time.Hour
	h := newHarness(t, b, every)
	ctx := context.Background()
	emails := h.signup(t, h.acc, 3, "sched")
	if n, err := h.svc.Scheduled(ctx, staff.System()); err != nil || n != 0 {
		t.Fatalf("Scheduled before due: %d, %v; want nothing", n, err)
	}
	old := time.Now().Add(-every + rekey.Lead(every) - time.Second)
	if err := os.Chtimes(filepath.Join(h.dir, "kek-1.key"), old, old); err != nil {
		t.Fatal(err)
	}
	// The job waits Settle in real time: make it short.
	al, err := audit.New(audit.Config{Store: h.st, Clock: h.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := rekey.New(rekey.Config{Store: h.st, Vault: h.vault, Accounts: h.acc, Staff: h.stf, Audit: al,
		Logger: slog.New(slog.DiscardHandler), Clock: h.clk.Now, Rand: rand.Reader, Every: every, Settle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	n, err := svc.Scheduled(ctx, staff.System())
	if err != nil || n != 4 { // 3 accounts and KEK 1
		t.Fatalf("Scheduled when due: %d, %v; want 3 accounts moved and 1 KEK destroyed", n, err)
	}
	if got := h.keks(t); !slices.Equal(got, []string{"kek-2.key"}) {
		t.Fatalf("keyring after the scheduled rotation: %v", got)
	}
	h.check(t, emails)
	es, err := h.st.AuditEntriesFor(ctx, "kek", 10)
	if err != nil || len(es) != 1 || es[0].Actor != staff.SystemID || !strings.Contains(es[0].Detail, "destroyed KEK 1") {
		t.Fatalf("audit: %+v, %v; want one entry by the system", es, err)
	}
	if n, err := svc.Scheduled(ctx, staff.System()); err != nil || n != 0 {
		t.Fatalf("Scheduled again: %d, %v; want nothing (the new KEK is not due)", n, err)
	}
	if es, _ := h.st.AuditEntriesFor(ctx, "kek", 10); len(es) != 1 {
		t.Fatalf("an idle run was audited: %+v", es)
	}
}

// TestRotateResealsQueuedJobs: jobs of the outbound queue are sealed
// under the primary KEK of the process that queued them. A rotation
// re-seals them, including one a process still seeing only the old KEK
// queues while the rotation settles, so that destroying the old KEK loses
// nothing: after the rotation every queued message is delivered.
func TestRotateResealsQueuedJobs(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			h := newHarness(t, b, 0)
			ctx := context.Background()
			msg := func(body string) notify.Message {
				return notify.Message{Channel: notify.Email, To: "queued@example.com", Subject: "Your code", Body: body,
					Kind: "verify-code", Account: "acc_queued1"}
			}
			if err := h.queue.Send(ctx, msg("queued before the rotation")); err != nil {
				t.Fatal(err)
			}
			kek1, err := os.ReadFile(filepath.Join(h.dir, "kek-1.key"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := h.svc.Rotate(ctx, h.admin)
			if err != nil {
				t.Fatal(err)
			}
			if r.Phase != rekey.PhaseSettling || r.Resealed != 1 {
				t.Fatalf("rotation: %+v; want the queued job re-sealed, settling", r)
			}
			// A process that still sees only KEK 1 queues a message.
			stale, err := vault.New(kek1, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			staleQ, err := outbound.New(outbound.Config{Store: h.st, Vault: stale, Deliver: h.sent,
				Logger: slog.New(slog.DiscardHandler), Clock: h.clk.Now, Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			if err := staleQ.Send(ctx, msg("queued while settling")); err != nil {
				t.Fatal(err)
			}
			h.clk.Add(time.Minute)
			if r, err = h.svc.Rotate(ctx, h.admin); err != nil || r.Phase != rekey.PhaseFinished || r.Resealed != 2 {
				t.Fatalf("after Settle: %+v, %v; want finished, the stale process's job re-sealed too", r, err)
			}
			if got := h.keks(t); !slices.Equal(got, []string{"kek-2.key"}) {
				t.Fatalf("keyring after rotation: %v", got)
			}
			if _, err := h.queue.Drain(ctx); err != nil {
				t.Fatal(err)
			}
			got := h.sent.list()
			slices.Sort(got)
			if want := []string{"queued before the rotation", "queued while settling"}; !slices.Equal(got, want) {
				t.Fatalf("delivered after the rotation: %q, want %q\n%s", got, want, h.qlogs)
			}
		})
	}
}
