package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
	"github.com/nitronet/nitronet/internal/store"
)

// testDeviceNameIndex checks that a device's name index is unique in its
// account (Conflict, field "name", on create, update and indexing), free
// across accounts, that devices without one are listed by account and
// indexed once, a rename included, and that a new sealed name without an
// index leaves the device unindexed; and that deferring an account's
// indexing leaves it out of the list until it has another unindexed
// device, and indexing still indexes its deferred devices.
func testDeviceNameIndex(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-a")
	mkAccount(t, s, "acct-b")
	mkAccount(t, s, "acct-c")
	dev := func(id, account string, key int, ix string) *store.Device {
		d := &store.Device{ID: id, AccountID: account, SealedName: []byte("sealed " + id), PublicKey: PublicKey(key), CreatedAt: t0()}
		if ix != "" {
			d.NameIndex = []byte(ix)
		}
		return d
	}
	wantName := func(what string, err error) {
		t.Helper()
		wantCode(t, what, err, errs.Conflict)
		if errs.FieldOf(err) != "name" {
			t.Fatalf("%s: field %q, want name (%v)", what, errs.FieldOf(err), err)
		}
	}
	must(t, "CreateDevice", s.CreateDevice(ctx, dev("dev-1", "acct-a", 1, "ix-1"), 10))
	wantName("CreateDevice with a name index in use", s.CreateDevice(ctx, dev("dev-2", "acct-a", 2, "ix-1"), 10))
	must(t, "CreateDevice with the index in another account", s.CreateDevice(ctx, dev("dev-3", "acct-b", 3, "ix-1"), 10))
	for i, id := range []string{"dev-4", "dev-5", "dev-6", "dev-7"} {
		must(t, "CreateDevice without an index", s.CreateDevice(ctx, dev(id, "acct-a", 4+i, ""), 10))
	}
	must(t, "CreateDevice without an index", s.CreateDevice(ctx, dev("dev-8", "acct-c", 8, ""), 10))
	got, err := s.Device(ctx, "acct-a", "dev-1")
	must(t, "Device", err)
	if !bytes.Equal(got.NameIndex, []byte("ix-1")) {
		t.Fatalf("Device: NameIndex %q, want ix-1", got.NameIndex)
	}

	_, err = s.UpdateDevice(ctx, "acct-a", "dev-4", store.DeviceUpdate{SealedName: []byte("x"), NameIndex: []byte("ix-1")}, t0())
	wantName("UpdateDevice to a name index in use", err)
	_, err = s.UpdateDevice(ctx, "acct-a", "dev-1", store.DeviceUpdate{SealedName: []byte("new"), NameIndex: []byte("ix-1")}, t0())
	must(t, "UpdateDevice keeping its own index", err)

	accts, err := s.UnindexedDeviceAccounts(ctx, "", 10)
	must(t, "UnindexedDeviceAccounts", err)
	if !slices.Equal(accts, []string{"acct-a", "acct-c"}) {
		t.Fatalf("UnindexedDeviceAccounts: %v, want [acct-a acct-c]", accts)
	}
	if accts, err := s.UnindexedDeviceAccounts(ctx, "acct-a", 1); err != nil || !slices.Equal(accts, []string{"acct-c"}) {
		t.Fatalf("UnindexedDeviceAccounts after acct-a: %v, %v, want [acct-c]", accts, err)
	}

	at := t0().Add(time.Hour)
	n, err := s.IndexDeviceNames(ctx, "acct-a", []store.DeviceNameIndexing{
		{DeviceID: "dev-4", NameIndex: []byte("ix-4")},
		{DeviceID: "dev-5", NameIndex: []byte("ix-5"), SealedName: []byte("renamed")},
		{DeviceID: "dev-8", NameIndex: []byte("ix-8")}, // another account's: left alone
	}, at)
	if err != nil || n != 2 {
		t.Fatalf("IndexDeviceNames: %d, %v, want 2", n, err)
	}
	got, err = s.Device(ctx, "acct-a", "dev-5")
	must(t, "Device", err)
	if string(got.SealedName) != "renamed" || got.Name != "" || string(got.NameIndex) != "ix-5" || !got.UpdatedAt.Equal(at) {
		t.Fatalf("renamed by indexing: %+v", got)
	}
	if n, err := s.IndexDeviceNames(ctx, "acct-a", []store.DeviceNameIndexing{{DeviceID: "dev-4", NameIndex: []byte("ix-other")}}, at); err != nil || n != 0 {
		t.Fatalf("IndexDeviceNames of an indexed device: %d, %v, want 0", n, err)
	}
	_, err = s.IndexDeviceNames(ctx, "acct-a", []store.DeviceNameIndexing{
		{DeviceID: "dev-7", NameIndex: []byte("ix-7")},
		{DeviceID: "dev-6", NameIndex: []byte("ix-1")},
	}, at)
	wantName("IndexDeviceNames with an index in use", err)
	got, err = s.Device(ctx, "acct-a", "dev-7")
	must(t, "Device", err)
	if got.NameIndex != nil {
		t.Fatalf("after a refused indexing: dev-7 has index %q, want none (one transaction)", got.NameIndex)
	}

	// A new sealed name without an index leaves the device unindexed.
	got, err = s.UpdateDevice(ctx, "acct-b", "dev-3", store.DeviceUpdate{SealedName: []byte("other")}, at)
	must(t, "UpdateDevice without an index", err)
	if got.NameIndex != nil {
		t.Fatalf("renamed without an index: NameIndex %q, want none", got.NameIndex)
	}
	if accts, err := s.UnindexedDeviceAccounts(ctx, "", 10); err != nil || !slices.Equal(accts, []string{"acct-a", "acct-b", "acct-c"}) {
		t.Fatalf("UnindexedDeviceAccounts: %v, %v, want [acct-a acct-b acct-c]", accts, err)
	}

	// Deferred: acct-a's unindexed devices (dev-6, dev-7), then none.
	if n, err := s.DeferDeviceNameIndexing(ctx, "acct-a", at); err != nil || n != 2 {
		t.Fatalf("DeferDeviceNameIndexing: %d, %v, want 2", n, err)
	}
	if n, err := s.DeferDeviceNameIndexing(ctx, "acct-a", at); err != nil || n != 0 {
		t.Fatalf("DeferDeviceNameIndexing again: %d, %v, want 0", n, err)
	}
	if accts, err := s.UnindexedDeviceAccounts(ctx, "", 10); err != nil || !slices.Equal(accts, []string{"acct-b", "acct-c"}) {
		t.Fatalf("UnindexedDeviceAccounts after deferring acct-a: %v, %v, want [acct-b acct-c]", accts, err)
	}
	got, err = s.Device(ctx, "acct-a", "dev-6")
	must(t, "Device", err)
	if string(got.SealedName) != "sealed dev-6" || got.NameIndex != nil {
		t.Fatalf("deferred device changed: %+v", got)
	}
	// A new unindexed device of the account is listed again; deferring
	// marks only it.
	must(t, "CreateDevice without an index", s.CreateDevice(ctx, dev("dev-9", "acct-a", 9, ""), 10))
	if accts, err := s.UnindexedDeviceAccounts(ctx, "", 1); err != nil || !slices.Equal(accts, []string{"acct-a"}) {
		t.Fatalf("UnindexedDeviceAccounts with a new device: %v, %v, want [acct-a]", accts, err)
	}
	if n, err := s.DeferDeviceNameIndexing(ctx, "acct-a", at); err != nil || n != 1 {
		t.Fatalf("DeferDeviceNameIndexing of the new device: %d, %v, want 1", n, err)
	}
	// Indexing indexes deferred devices (as a device add or rename of the
	// account does).
	if n, err := s.IndexDeviceNames(ctx, "acct-a", []store.DeviceNameIndexing{
		{DeviceID: "dev-6", NameIndex: []byte("ix-6")},
		{DeviceID: "dev-7", NameIndex: []byte("ix-7"), SealedName: []byte("renamed 7")},
		{DeviceID: "dev-9", NameIndex: []byte("ix-9")},
	}, at); err != nil || n != 3 {
		t.Fatalf("IndexDeviceNames of deferred devices: %d, %v, want 3", n, err)
	}
	if n, err := s.DeferDeviceNameIndexing(ctx, "acct-a", at); err != nil || n != 0 {
		t.Fatalf("DeferDeviceNameIndexing with every device indexed: %d, %v, want 0", n, err)
	}
}
