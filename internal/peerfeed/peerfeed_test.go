package peerfeed_test

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/gwproto"
	"github.com/nitronet/nitronet/internal/ident"
	"github.com/nitronet/nitronet/internal/peerfeed"
	"github.com/nitronet/nitronet/internal/store"
	"github.com/nitronet/nitronet/internal/store/storetest"
	"github.com/nitronet/nitronet/internal/wgkey"
)

func addDevice(t *testing.T, st store.Store, accountID string) *store.Device {
	t.Helper()
	k, _ := wgkey.Generate(rand.Reader)
	id, _ := ident.New(rand.Reader, "dev")
	now := time.Now()
	d := &store.Device{ID: id, AccountID: accountID, SealedName: []byte("d"), PublicKey: k.Public().String(), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateDevice(context.Background(), d, 100); err != nil {
		t.Fatal(err)
	}
	return d
}

func addAccount(t *testing.T, st store.Store, id string) {
	t.Helper()
	acc := &store.Account{ID: id, EmailSealed: []byte{1}, MobileSealed: []byte{1}, WrappedKey: []byte{1},
		EmailIndex: []byte(id + "e"), MobileIndex: []byte(id + "m"), PasswordHash: "h", Status: store.StatusActive, CreatedAt: time.Now()}
	if err := st.CreateAccount(context.Background(), acc); err != nil {
		t.Fatal(err)
	}
}

// newHub returns a Hub on st with a long recheck interval, so only
// Notify wakes a poll quickly.
func newHub(t *testing.T, st store.Store) *peerfeed.Hub {
	t.Helper()
	h, err := peerfeed.New(peerfeed.Config{Store: st, Recheck: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// recorder is a gwproto.SnapshotWriter that keeps what it is given and
// checks the call order.
type recorder struct {
	t        *testing.T
	began    bool
	ended    bool
	version  int64
	expected int64
	peers    []gwproto.PeerRecord
}

func (r *recorder) Begin(v, n int64) error {
	if r.began {
		r.t.Error("Begin called twice")
	}
	r.began, r.version, r.expected = true, v, n
	return nil
}

func (r *recorder) Peer(p gwproto.PeerRecord) error {
	if !r.began || r.ended {
		r.t.Error("Peer outside Begin and End")
	}
	r.peers = append(r.peers, p)
	return nil
}

func (r *recorder) End(n int64) error {
	if !r.began || r.ended || n != int64(len(r.peers)) || n != r.expected {
		r.t.Errorf("End(%d) after %d peers (began %v, ended %v)", n, len(r.peers), r.began, r.ended)
	}
	r.ended = true
	return nil
}

func TestPoll(t *testing.T) {
	for _, b := range storetest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			st := b.Open(t)
			// A long recheck interval, so only Notify can wake a poll quickly.
			h, err := peerfeed.New(peerfeed.Config{Store: st, Recheck: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			addAccount(t, st, "acc_x")

			// An empty feed holds a snapshot poll until the timeout, then
			// streams an empty snapshot at version 0.
			rec := &recorder{t: t}
			u, err := h.Poll(ctx, 0, 50*time.Millisecond, true, rec)
			if err != nil || !u.Full || u.Version != 0 || !rec.ended || rec.version != 0 || len(rec.peers) != 0 {
				t.Fatalf("empty feed: got %+v, %v, %+v; want an empty full snapshot at version 0", u, err, rec)
			}

			// A held poll wakes as soon as a change is notified.
			type res struct {
				u   *gwproto.PeerUpdate
				rec *recorder
				err error
			}
			done := make(chan res, 1)
			go func() {
				rec := &recorder{t: t}
				u, err := h.Poll(ctx, 0, time.Minute, true, rec)
				done <- res{u, rec, err}
			}()
			d1 := addDevice(t, st, "acc_x")
			h.Notify()
			var r res
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("poll did not wake on Notify")
			}
			if r.err != nil || !r.u.Full || len(r.rec.peers) != 1 || r.u.Version != r.rec.version {
				t.Fatalf("woken poll: got %+v, %+v, %v; want a snapshot with one peer", r.u, r.rec, r.err)
			}
			rec = &recorder{t: t}
			full, err := h.Poll(ctx, 0, time.Second, true, rec)
			if err != nil || !full.Full || len(rec.peers) != 1 || rec.peers[0].Key.String() != d1.PublicKey ||
				rec.peers[0].DeviceID != d1.ID {
				t.Fatalf("got %+v, %v, %+v; want a snapshot with the new device", full, err, rec)
			}
			if p := rec.peers[0]; !p.IPv4.IsValid() || !p.IPv6.IsValid() {
				t.Fatalf("got %+v, want v4 and v6 addresses", p)
			}
			v1 := full.Version

			// From the cursor: nothing new holds until timeout with the
			// same version, and never touches the snapshot writer.
			rec = &recorder{t: t}
			u, err = h.Poll(ctx, v1, 50*time.Millisecond, true, rec)
			if err != nil || u.Full || u.Version != v1 || len(u.Changes) != 0 || rec.began {
				t.Fatalf("got %+v, %v; want no changes at version %d", u, err, v1)
			}
			// Removal is a change after the cursor.
			if err := st.DeleteDevice(ctx, "acc_x", d1.ID); err != nil {
				t.Fatal(err)
			}
			h.Notify()
			u, err = h.Poll(ctx, v1, time.Second, true, rec)
			if err != nil || len(u.Changes) != 1 || !u.Changes[0].Removed || u.Changes[0].DeviceID != d1.ID || u.Version <= v1 || rec.began {
				t.Fatalf("got %+v, %v; want one removal of %s after %d", u, err, d1.ID, v1)
			}
			// It names only the device: the server keeps no key or
			// address of a removed device.
			if c := u.Changes[0]; c.PublicKey != "" || len(c.Addresses) != 0 {
				t.Fatalf("removal: got %+v, want only the device ID", c)
			}
			// A gateway that cannot drop a peer by device gets a snapshot
			// instead, without the device.
			d2 := addDevice(t, st, "acc_x")
			h.Notify()
			rec = &recorder{t: t}
			old, err := h.Poll(ctx, v1, time.Second, false, rec)
			if err != nil || !old.Full || !rec.ended || len(rec.peers) != 1 || rec.peers[0].DeviceID != d2.ID {
				t.Fatalf("older gateway: got %+v, %v, %+v; want a snapshot holding only %s", old, err, rec, d2.ID)
			}
			// Past the removal, changes come as changes again.
			rec = &recorder{t: t}
			u, err = h.Poll(ctx, u.Version, time.Second, false, rec)
			if err != nil || u.Full || len(u.Changes) != 1 || u.Changes[0].PublicKey != d2.PublicKey || rec.began {
				t.Fatalf("older gateway after the removal: got %+v, %v; want the addition of %s", u, err, d2.ID)
			}
			// A cursor from another database is answered with a snapshot.
			rec = &recorder{t: t}
			u, err = h.Poll(ctx, u.Version+100, time.Second, true, rec)
			if err != nil || !u.Full || !rec.ended || len(rec.peers) != 1 {
				t.Fatalf("unknown cursor: got %+v, %v, %+v; want a snapshot of %s", u, err, rec, d2.ID)
			}
		})
	}
}

// blockingWriter blocks in Begin until release is closed.
type blockingWriter struct {
	began   chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Begin(int64, int64) error {
	close(w.began)
	<-w.release
	return nil
}
func (w *blockingWriter) Peer(gwproto.PeerRecord) error { return nil }
func (w *blockingWriter) End(int64) error               { return nil }

// TestSnapshotSlots checks that at most MaxSnapshots snapshots stream at
// once and that a waiting one starts when a slot frees.
func TestSnapshotSlots(t *testing.T) {
	st := storetest.SQLite(t, storetest.DefaultPool())
	addAccount(t, st, "acc_y")
	addDevice(t, st, "acc_y")
	h := newHub(t, st)
	ws := make([]*blockingWriter, peerfeed.MaxSnapshots+1)
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &blockingWriter{began: make(chan struct{}), release: make(chan struct{})}
		wg.Go(func() {
			if _, err := h.Poll(t.Context(), 0, time.Second, true, ws[i]); err != nil {
				t.Errorf("poll %d: %v", i, err)
			}
		})
		if i < peerfeed.MaxSnapshots {
			<-ws[i].began
		}
	}
	last := ws[len(ws)-1]
	select {
	case <-last.began:
		t.Fatalf("snapshot %d began while %d were streaming", len(ws), peerfeed.MaxSnapshots)
	case <-time.After(200 * time.Millisecond):
	}
	close(ws[0].release)
	select {
	case <-last.began:
	case <-time.After(10 * time.Second):
		t.Fatal("waiting snapshot did not begin when a slot freed")
	}
	for _, w := range ws[1:] {
		close(w.release)
	}
	wg.Wait()
}

// TestSnapshotWriterError checks that a writer's error ends the poll and
// comes back as it is.
func TestSnapshotWriterError(t *testing.T) {
	st := storetest.SQLite(t, storetest.DefaultPool())
	addAccount(t, st, "acc_z")
	for range 3 {
		addDevice(t, st, "acc_z")
	}
	h := newHub(t, st)
	boom := errors.New("gateway went away")
	n := 0
	w := &funcWriter{peer: func(gwproto.PeerRecord) error {
		n++
		if n == 2 {
			return boom
		}
		return nil
	}}
	if _, err := h.Poll(t.Context(), 0, time.Second, true, w); err != boom || n != 2 || w.ended {
		t.Fatalf("got %v after %d peers (ended %v), want %v after 2 and no End", err, n, w.ended, boom)
	}
}

type funcWriter struct {
	peer  func(gwproto.PeerRecord) error
	ended bool
}

func (w *funcWriter) Begin(int64, int64) error        { return nil }
func (w *funcWriter) Peer(p gwproto.PeerRecord) error { return w.peer(p) }
func (w *funcWriter) End(int64) error                 { w.ended = true; return nil }

// TestWaiting checks that Waiting counts a poll while it waits for a
// change, and no longer once Notify has answered it.
func TestWaiting(t *testing.T) {
	st := storetest.SQLite(t, storetest.DefaultPool())
	h := newHub(t, st)
	addAccount(t, st, "acc")
	addDevice(t, st, "acc")
	r := &recorder{t: t}
	u, err := h.Poll(t.Context(), 0, time.Second, true, r)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *gwproto.PeerUpdate, 1)
	go func() {
		u, err := h.Poll(t.Context(), u.Version, time.Minute, true, &recorder{t: t})
		if err != nil {
			t.Error(err)
		}
		done <- u
	}()
	for deadline := time.Now().Add(10 * time.Second); h.Waiting() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Waiting() = %d, want 1", h.Waiting())
		}
	}
	addDevice(t, st, "acc")
	h.Notify()
	if got := <-done; len(got.Changes) != 1 {
		t.Errorf("poll answered with %d changes, want 1", len(got.Changes))
	}
	if n := h.Waiting(); n != 0 {
		t.Errorf("Waiting() = %d after the answer, want 0", n)
	}
}
