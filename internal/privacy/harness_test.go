package privacy_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/accounts"
	"github.com/nitronet/nitronet/internal/acctkey"
	"github.com/nitronet/nitronet/internal/audit"
	"github.com/nitronet/nitronet/internal/devices"
	"github.com/nitronet/nitronet/internal/holds"
	"github.com/nitronet/nitronet/internal/inventory"
	"github.com/nitronet/nitronet/internal/notify"
	"github.com/nitronet/nitronet/internal/password"
	"github.com/nitronet/nitronet/internal/privacy"
	"github.com/nitronet/nitronet/internal/processors"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/vault"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// outbox records outgoing messages: the notifier is the system boundary.
type outbox struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (o *outbox) Send(_ context.Context, m notify.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.msgs = append(o.msgs, m)
	return nil
}

// last returns the newest message of kind to recipient, or fails t.
func (o *outbox) last(t *testing.T, kind, to string) notify.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.msgs) - 1; i >= 0; i-- {
		if o.msgs[i].Kind == kind && o.msgs[i].To == to {
			return o.msgs[i]
		}
	}
	t.Fatalf("no %s message to %s", kind, to)
	return notify.Message{}
}

func (o *outbox) count(kind, to string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, m := range o.msgs {
		if m.Kind == kind && m.To == to {
			n++
		}
	}
	return n
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

func (o *outbox) code(t *testing.T, kind, to string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(o.last(t, kind, to).Body)
	if m == nil {
		t.Fatalf("no code in the %s message", kind)
	}
	return m[1]
}

// post is one inbox message.
type post struct{ account, kind, subject, body, request string }

// recInbox records inbox posts (the inbox package is another's boundary).
type recInbox struct {
	mu    sync.Mutex
	posts []post
}

func (r *recInbox) PostAbout(_ context.Context, accountID, requestID, kind, subject, body string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, post{accountID, kind, subject, body, requestID})
	return nil
}

// about returns the kinds of the posts about request id, in order.
func (r *recInbox) about(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.posts {
		if p.request == id {
			out = append(out, p.kind)
		}
	}
	return out
}

func (r *recInbox) find(account, kind string) (post, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.posts) - 1; i >= 0; i-- {
		if r.posts[i].account == account && r.posts[i].kind == kind {
			return r.posts[i], true
		}
	}
	return post{}, false
}

// section is a fake export source.
type section struct{}

func (section) ExportSection(_ context.Context, accountID string) (string, any, error) {
	return "test_section", map[string]string{"account": accountID}, nil
}

type harness struct {
	st     store.Store
	vault  *vault.Vault
	keys   *acctkey.Keys
	acc    *accounts.Service
	dev    *devices.Service
	svc    *privacy.Service
	holds  *holds.Service
	audit  *audit.Log
	procs  *processors.Service
	clk    *clock
	out    *outbox
	inbox  *recInbox
	peerMu sync.Mutex
	peers  int // OnPeerChange calls
	n      int
}

// start is the harness's initial time.
func start() time.Time { return time.Date(2025, 6, 10, 9, 30, 0, 0, time.UTC) }

// newHarness builds the service on st with the default inventory and no
// controller details; opts may change its configuration first.
func newHarness(t testing.TB, st store.Store, opts ...func(*privacy.Config)) *harness {
	t.Helper()
	kek := make([]byte, vault.KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(kek, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := password.NewHasher(password.DefaultParams(), 4, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{st: st, vault: v, clk: &clock{t: start()}, out: &outbox{}, inbox: &recInbox{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if h.audit, err = audit.New(audit.Config{Store: st, Clock: h.clk.Now}); err != nil {
		t.Fatal(err)
	}
	// Messages reach the outbox through the processor guard, as they
	// reach the relay and the webhook in a server: what passes is
	// recorded as the account's recipients.
	if h.procs, err = processors.New(processors.Config{Store: st, Audit: h.audit, Inventory: inventory.Default(),
		Clock: h.clk.Now, Rand: rand.Reader, Logger: log}); err != nil {
		t.Fatal(err)
	}
	guarded := processors.Guard(h.out, h.procs, log)
	h.acc, err = accounts.New(accounts.Config{Store: st, Vault: v, Hasher: hasher, Notifier: guarded, Audit: h.audit, Logger: log,
		Clock: h.clk.Now, Rand: rand.Reader, MobileRegion: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	h.keys = acctkey.New(v, st)
	h.dev, err = devices.New(devices.Config{Store: st, Keys: h.keys, Logger: log, Clock: h.clk.Now, Rand: rand.Reader, Limit: 5,
		Pool6: netip.MustParsePrefix("fd00:6e6e::/48")})
	if err != nil {
		t.Fatal(err)
	}
	if h.holds, err = holds.New(holds.Config{Store: st, Audit: h.audit, Clock: h.clk.Now, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	cfg := privacy.Config{Store: st, Accounts: h.acc, Keys: h.keys, Holds: h.holds, Audit: h.audit, Notifier: guarded,
		Inbox: h.inbox, Sources: []privacy.ExportSource{section{}}, UsageRecording: "intervals",
		Inventory:    inventory.Default(),
		OnPeerChange: func() { h.peerMu.Lock(); h.peers++; h.peerMu.Unlock() },
		Logger:       log, Clock: h.clk.Now, Rand: rand.Reader}
	for _, o := range opts {
		o(&cfg)
	}
	h.svc, err = privacy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

const pw = "correct horse battery staple"

// user is a signed-up account with both contacts verified.
type user struct {
	id, email, mobile string
}

// signup creates an account and verifies both contacts.
func (h *harness) signup(t testing.TB) user {
	t.Helper()
	h.n++
	var b [4]byte
	_, _ = rand.Read(b[:])
	r := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
	u := user{email: fmt.Sprintf("user%d-%x@example.com", h.n, b), mobile: fmt.Sprintf("+4479111%05d", r%100000)}
	ctx := context.Background()
	id, err := h.acc.Signup(ctx, u.email, u.mobile, pw)
	if err != nil {
		t.Fatalf("signup: %v", err)
	}
	u.id = id
	for _, c := range []struct {
		ch store.Channel
		to string
	}{{store.Email, u.email}, {store.Mobile, u.mobile}} {
		if err := h.acc.Verify(ctx, id, c.ch, h.code(t, "verify-code", c.to)); err != nil {
			t.Fatalf("verify %s: %v", c.ch, err)
		}
	}
	return u
}

func (h *harness) code(t testing.TB, kind, to string) string {
	t.Helper()
	tt, ok := t.(*testing.T)
	if !ok {
		// Benchmarks: same lookup without t.Fatalf formatting helpers.
		h.out.mu.Lock()
		defer h.out.mu.Unlock()
		for i := len(h.out.msgs) - 1; i >= 0; i-- {
			if h.out.msgs[i].Kind == kind && h.out.msgs[i].To == to {
				return codeRE.FindStringSubmatch(h.out.msgs[i].Body)[1]
			}
		}
		t.Fatalf("no %s message", kind)
	}
	return h.out.code(tt, kind, to)
}

// request creates a request and proves identity with both codes.
func (h *harness) request(t testing.TB, u user, typ, details string) *privacy.Request {
	t.Helper()
	ctx := context.Background()
	r, err := h.svc.Create(ctx, u.id, typ, details)
	if err != nil {
		t.Fatalf("create %s: %v", typ, err)
	}
	v, err := h.svc.Verify(ctx, u.id, r.ID, pw, h.code(t, "privacy-code", u.email), h.code(t, "privacy-code", u.mobile))
	if err != nil {
		t.Fatalf("verify %s: %v", typ, err)
	}
	return v
}

// addDevice registers a device with a fresh key.
func (h *harness) addDevice(t testing.TB, u user, name string, key int) *devices.Device {
	t.Helper()
	d, err := h.dev.Add(context.Background(), u.id, name, storetest.PublicKey(key))
	if err != nil {
		t.Fatalf("add device: %v", err)
	}
	return d
}

// principal returns a staff principal with role (staff accounts are not
// needed: Authorize looks at the role).
func principal(role string) staff.Principal {
	return staff.Principal{ID: "stf_" + strings.ReplaceAll(role, "_", ""), Role: role}
}
