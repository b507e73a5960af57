package storetest

import (
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/store"
)

// testDeviceKeyAge checks that KeyCreatedAt is the creation time, that a
// key rotation moves it and that a rename does not.
func testDeviceKeyAge(t *testing.T, s store.Store) {
	ctx := t.Context()
	mkAccount(t, s, "acct-a")
	d := mkDevice(t, s, "acct-a", "dev-1", 1)
	if !d.KeyCreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("CreateDevice: KeyCreatedAt %v, want CreatedAt %v", d.KeyCreatedAt, d.CreatedAt)
	}
	got, err := s.UpdateDevice(ctx, "acct-a", "dev-1", store.DeviceUpdate{SealedName: []byte("another sealed name")}, t0().Add(time.Hour))
	must(t, "rename", err)
	if !got.KeyCreatedAt.Equal(d.CreatedAt) {
		t.Fatalf("after rename: KeyCreatedAt %v, want the creation time %v", got.KeyCreatedAt, d.CreatedAt)
	}
	key := PublicKey(5)
	at := t0().Add(48 * time.Hour)
	got, err = s.UpdateDevice(ctx, "acct-a", "dev-1", store.DeviceUpdate{PublicKey: &key}, at)
	must(t, "rotate", err)
	if !got.KeyCreatedAt.Equal(at) {
		t.Fatalf("after rotation: KeyCreatedAt %v, want %v", got.KeyCreatedAt, at)
	}
	got, err = s.Device(ctx, "acct-a", "dev-1")
	must(t, "Device", err)
	if !got.KeyCreatedAt.Equal(at) || got.PublicKey != key {
		t.Fatalf("stored after rotation: key %s at %v, want %s at %v", got.PublicKey, got.KeyCreatedAt, key, at)
	}
}
