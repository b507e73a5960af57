package peerfeed_test

import (
	"context"
	"crypto/rand"
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
	d := &store.Device{ID: id, AccountID: accountID, Name: "d", PublicKey: k.Public().String(), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateDevice(context.Background(), d, 100); err != nil {
		t.Fatal(err)
	}
	return d
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
			acc := &store.Account{ID: "acc_x", EmailSealed: []byte{1}, MobileSealed: []byte{1}, WrappedKey: []byte{1},
				EmailIndex: []byte{1}, MobileIndex: []byte{2}, PasswordHash: "h", Status: store.StatusActive, CreatedAt: time.Now()}
			if err := st.CreateAccount(ctx, acc); err != nil {
				t.Fatal(err)
			}

			// An empty feed holds a snapshot poll until the timeout.
			u, err := h.Poll(ctx, 0, 50*time.Millisecond)
			if err != nil || !u.Full || u.Version != 0 || len(u.Peers) != 0 {
				t.Fatalf("empty feed: got %+v, %v; want an empty full snapshot at version 0", u, err)
			}

			// A held poll wakes as soon as a change is notified.
			type res struct {
				u   any
				err error
				at  time.Time
			}
			done := make(chan res, 1)
			go func() {
				u, err := h.Poll(ctx, 0, time.Minute)
				done <- res{u, err, time.Now()}
			}()
			d1 := addDevice(t, st, acc.ID)
			h.Notify()
			var r res
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("poll did not wake on Notify")
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if u, ok := r.u.(*gwproto.PeerUpdate); !ok || !u.Full || len(u.Peers) != 1 {
				t.Fatalf("woken poll: got %+v, want a snapshot with one peer", r.u)
			}
			full, err := h.Poll(ctx, 0, time.Second)
			if err != nil || !full.Full || len(full.Peers) != 1 || full.Peers[0].PublicKey != d1.PublicKey {
				t.Fatalf("got %+v, %v; want a snapshot with the new device", full, err)
			}
			v1 := full.Version
			if len(full.Peers[0].Addresses) != 2 {
				t.Fatalf("got addresses %v, want v4 and v6 host prefixes", full.Peers[0].Addresses)
			}

			// From the cursor: nothing new holds until timeout with the same version.
			u, err = h.Poll(ctx, v1, 50*time.Millisecond)
			if err != nil || u.Full || u.Version != v1 || len(u.Changes) != 0 {
				t.Fatalf("got %+v, %v; want no changes at version %d", u, err, v1)
			}
			// Removal is a change after the cursor.
			if err := st.DeleteDevice(ctx, acc.ID, d1.ID); err != nil {
				t.Fatal(err)
			}
			h.Notify()
			u, err = h.Poll(ctx, v1, time.Second)
			if err != nil || len(u.Changes) != 1 || !u.Changes[0].Removed || u.Changes[0].PublicKey != d1.PublicKey || u.Version <= v1 {
				t.Fatalf("got %+v, %v; want one removal after %d", u, err, v1)
			}
		})
	}
}
