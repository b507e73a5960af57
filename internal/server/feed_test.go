package server_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gateway/control"
	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/server"
	"github.com/nitronet/nitronet/internal/staff"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/sqlstore"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

// seed imports n devices spread over accounts of five.
func seed(t *testing.T, st *sqlstore.Store, n int) {
	t.Helper()
	accounts := func(yield func(store.Account) bool) {
		for a := range (n + 4) / 5 {
			id := fmt.Sprintf("acc_seed%d", a)
			if !yield(store.Account{ID: id, EmailIndex: []byte("e" + id), MobileIndex: []byte("m" + id), CreatedAt: time.Now()}) {
				return
			}
		}
	}
	devices := func(yield func(store.Device) bool) {
		for i := range n {
			if !yield(store.Device{ID: fmt.Sprintf("dev_seed%d", i), AccountID: fmt.Sprintf("acc_seed%d", i/5),
				SealedName: []byte("seed"), PublicKey: storetest.PublicKey(i), CreatedAt: time.Now()}) {
				return
			}
		}
	}
	if _, _, err := st.Import(t.Context(), accounts, devices); err != nil {
		t.Fatal(err)
	}
}

// feedEnv is a served control server on st with an enrolled gateway
// client.
type feedEnv struct {
	srv    *server.Server
	url    string
	cred   string
	client *control.Client
}

func newFeedEnv(t *testing.T, st store.Store) *feedEnv {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	srv, err := server.New(t.Context(), cfg, server.Deps{Logger: slog.New(slog.DiscardHandler),
		Clock: time.Now, Rand: rand.Reader, Stdout: io.Discard, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	_, token, err := srv.Gateways.Add(t.Context(), staff.System(), "eu-west", "198.18.0.1:51820")
	if err != nil {
		t.Fatal(err)
	}
	c, err := control.New(hs.URL, hs.Client())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := wgkey.Generate(rand.Reader)
	enr, err := c.Enroll(t.Context(), token, k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &feedEnv{srv: srv, url: hs.URL, cred: enr.Credential, client: c}
}

// TestGatewayFeedEncodings checks the peers route end to end on both
// engines: the gateway client gets the binary snapshot, a client that
// does not ask for it gets the same snapshot as the JSON document older
// gateways read, and changes come as JSON.
func TestGatewayFeedEncodings(t *testing.T) {
	const n = 1200
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			st := b.OpenSQL(t, storetest.DefaultPool())
			seed(t, st, n)
			want, version, err := storetest.Snapshot(t.Context(), st)
			if err != nil {
				t.Fatal(err)
			}
			e := newFeedEnv(t, st)

			var got []gwproto.PeerRecord
			expected := -1
			u, err := e.client.Peers(t.Context(), 0, time.Second, control.Snapshot{
				Begin: func(n int) { expected = n },
				Peer: func(r gwproto.PeerRecord) error {
					got = append(got, r)
					return nil
				},
			})
			if err != nil || !u.Full || u.Version != version || u.Peers != n || expected != n {
				t.Fatalf("binary snapshot: got %+v (%d expected), %v; want %d peers at version %d", u, expected, err, n, version)
			}
			for i, p := range want {
				if r := got[i]; r.DeviceID != p.DeviceID || r.Key.String() != p.PublicKey || r.IPv4 != p.IPv4 || r.IPv6 != p.IPv6 {
					t.Fatalf("peer %d: got %+v, want %+v", i, r, p)
				}
			}

			// An older gateway: no Accept header, the whole document at once.
			req, _ := http.NewRequest("GET", e.url+"/api/v1/gateway/peers?since=0&wait=1", nil)
			req.Header.Set("Authorization", "Bearer "+e.cred)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var doc gwproto.PeerUpdate
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
				doc.Version != version || !doc.Full || len(doc.Peers) != n {
				t.Fatalf("JSON snapshot: got %d peers at %d (%s), %v", len(doc.Peers), doc.Version, resp.Header.Get("Content-Type"), err)
			}
			for i, p := range doc.Peers {
				if !reflect.DeepEqual(p, got[i].Peer()) {
					t.Fatalf("JSON peer %d: got %+v, want %+v", i, p, got[i].Peer())
				}
			}

			// A change after the cursor comes as JSON changes, and the
			// callback is not called.
			if err := st.DeleteDevice(t.Context(), "acc_seed0", "dev_seed3"); err != nil {
				t.Fatal(err)
			}
			e.srv.Feed.Notify()
			u, err = e.client.Peers(t.Context(), version, 5*time.Second, control.Snapshot{
				Begin: func(int) { t.Error("Begin called for a change answer") },
				Peer: func(gwproto.PeerRecord) error {
					t.Error("Peer called for a change answer")
					return nil
				},
			})
			if err != nil || u.Full || len(u.Changes) != 1 || !u.Changes[0].Removed || u.Changes[0].DeviceID != "dev_seed3" {
				t.Fatalf("changes: got %+v, %v; want the removal of dev_seed3", u, err)
			}
		})
	}
}

// gatedStore holds PeerSnapshot at row gateAt until open is closed (or a
// deadline passes), to observe what the client has received meanwhile.
type gatedStore struct {
	store.Store
	gateAt int
	open   chan struct{}
	timely chan bool // receives whether open was closed before the deadline
}

func (g *gatedStore) PeerSnapshot(ctx context.Context, begin func(int64, int64) error, each func(store.Peer) error) error {
	n := 0
	return g.Store.PeerSnapshot(ctx, begin, func(p store.Peer) error {
		if n == g.gateAt {
			select {
			case <-g.open:
				g.timely <- true
			case <-time.After(10 * time.Second):
				g.timely <- false
			}
		}
		n++
		return each(p)
	})
}

// TestSnapshotStreams checks that the server does not buffer a snapshot:
// while the store is held before its last rows are read, the gateway
// client has already decoded the first peers. A server that built the
// answer before sending it would deliver nothing until the store finished.
func TestSnapshotStreams(t *testing.T) {
	const n, gateAt = 6000, 5000 // ~500 KB before the gate: more than every buffer on the way
	st := storetest.SQLite(t, storetest.DefaultPool())
	seed(t, st, n)
	g := &gatedStore{Store: st, gateAt: gateAt, open: make(chan struct{}), timely: make(chan bool, 1)}
	e := newFeedEnv(t, g)
	var once sync.Once
	got := 0
	u, err := e.client.Peers(t.Context(), 0, time.Second, control.Snapshot{Peer: func(gwproto.PeerRecord) error {
		got++
		once.Do(func() { close(g.open) })
		return nil
	}})
	if err != nil || u.Peers != n || got != n {
		t.Fatalf("got %+v (%d peers), %v; want %d peers", u, got, err, n)
	}
	if !<-g.timely {
		t.Fatalf("the client had no peer while the store was held at row %d of %d: the snapshot was buffered", gateAt, n)
	}
}
